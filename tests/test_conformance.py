"""The NIST testkit runner (``carnet conformance run``) against a live Carnet, over HTTP and MLLP.

A small subset of the collections runs end to end: register and query (11990), provide and
retrieve (12029, with its known plan defect waived), a metadata update (15800), remove metadata
(30001) and remove documents (50000); the PIF tests they read run first as dependencies. Then
the runner's own rules: a step it cannot interpret is not run, a wrong answer fails, and the
reports say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from carnet.app import Carnet
from carnet.cli import main
from carnet.conformance import report
from carnet.conformance.results import Verdict
from carnet.conformance.runner import RunOptions, plan_order, run
from carnet.conformance.testkit import Testkit
from carnet.pix.mllp import serve_mllp
from tests.conftest import FIXTURES, needs_fixtures

TESTKIT = FIXTURES / "nist-testkit/xdstools2/src/main/webapp/toolkitx/testkit"


@pytest.fixture
def mllp(carnet: Carnet) -> Iterator[str]:
    service = serve_mllp(carnet.engine, "127.0.0.1", 0, carnet.settings)
    yield f"127.0.0.1:{service.port}"
    service.shutdown()


def options(url: str, mllp: str | None, tests: list[str], testkits: list[Path] | None = None) -> RunOptions:
    return RunOptions(
        registry_url=f"{url}/xds/registry",
        repository_url=f"{url}/xds/repository",
        testkits=testkits or [TESTKIT],
        tests=tests,
        mllp=mllp,
    )


def test_subset_of_the_collections_passes(live_server: str, mllp: str, tmp_path: Path) -> None:
    needs_fixtures("nist-testkit")
    result = run(options(live_server, mllp, ["11990", "12029", "15800", "30001", "50000"]))
    failures = [(s.name, s.reasons) for s in result.steps() if s.verdict != Verdict.PASSED]
    assert failures == []
    by_test = {t.test_id: t for t in result.tests}
    assert by_test["15817"].dependency and not by_test["11990"].dependency
    assert [t.test_id for t in result.tests][:2] == ["15817", "11990"]  # what 11990 reads runs first
    # The waived ReferenceDocument comparison of 12029 is said, not silently passed.
    (retrieve,) = [s for s in by_test["12029"].steps if s.section == "retrieve"]
    assert any("waived" in note for note in retrieve.notes)
    assert result.summary_line() == f"{len(result.steps())} passed, 0 failed"

    junit, page = report.write(result, tmp_path / "report")
    suites = etree.parse(str(junit)).getroot()
    assert suites.get("failures") == "0" and int(suites.get("tests") or 0) == len(result.steps())
    assert "30001" in page.read_text()


def test_without_a_feed_the_pif_steps_are_not_run(live_server: str) -> None:
    needs_fixtures("nist-testkit")
    result = run(options(live_server, None, ["15817"]))
    (step,) = result.steps()
    assert step.verdict == Verdict.NOT_RUN and "--target-mllp" in step.reasons[0]
    assert result.summary_line() == "0 passed, 0 failed, 1 skipped"


def _testkit(root: Path, plan: str, files: dict[str, str] | None = None) -> Path:
    section = root / "tests" / "T1" / "s1"
    section.mkdir(parents=True)
    (root / "tests" / "T1" / "index.idx").write_text("s1\n")
    (root / "tests" / "T1" / "collections.txt").write_text("mine\n")
    (section / "testplan.xml").write_text(plan)
    for name, text in (files or {}).items():
        (section / name).write_text(text)
    return root


QUERY = """<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
 xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><query:ResponseOption returnType="LeafClass"/>
 <rim:AdhocQuery id="urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4">
 <rim:Slot name="$XDSDocumentEntryEntryUUID">
 <rim:ValueList><rim:Value>('urn:uuid:0b8b4b22-5a2e-4b5a-8c38-6a1b0c6b2e11')</rim:Value></rim:ValueList></rim:Slot>
 </rim:AdhocQuery></query:AdhocQueryRequest>"""


def test_an_instruction_it_cannot_interpret_is_not_run(live_server: str, tmp_path: Path) -> None:
    plan = """<TestPlan><TestStep id="a"><ExpectedStatus>Success</ExpectedStatus>
      <StoredQueryTransaction><XDSb/><UseXPath symbol="$x$">//x</UseXPath>
      <MetadataFile>query.xml</MetadataFile>
      </StoredQueryTransaction></TestStep></TestPlan>"""
    kit = _testkit(tmp_path / "kit", plan, {"query.xml": QUERY})
    (step,) = run(options(live_server, None, ["T1"], [kit])).steps()
    assert step.verdict == Verdict.NOT_RUN
    assert step.reasons == ["instruction(s) not understood by this runner: <UseXPath>"]
    assert step.request == ""  # never sent


def test_a_wrong_answer_fails_with_the_reason(live_server: str, tmp_path: Path) -> None:
    plan = """<TestPlan><TestStep id="a"><ExpectedStatus>Success</ExpectedStatus>
      <StoredQueryTransaction><XDSb/><MetadataFile>query.xml</MetadataFile>
      <ExpectedContents><Documents count="1"/></ExpectedContents></StoredQueryTransaction></TestStep>
      <TestStep id="b"><ExpectedStatus>Failure</ExpectedStatus>
      <StoredQueryTransaction><XDSb/><MetadataFile>query.xml</MetadataFile></StoredQueryTransaction></TestStep>
      </TestPlan>"""
    kit = _testkit(tmp_path / "kit", plan, {"query.xml": QUERY})
    a, b = run(options(live_server, None, ["T1"], [kit])).steps()
    assert (a.verdict, a.reasons) == (Verdict.FAILED, ["ExpectedContents: Found 0 Documents instead of 1"])
    assert b.verdict == Verdict.FAILED and b.reasons == ["status is Success, expected Failure"]


def test_dependencies_run_first() -> None:
    needs_fixtures("nist-testkit")
    order = plan_order(Testkit([TESTKIT]), ["11897"])
    assert order == [("15818", True), ("12346", True), ("11897", False)]


def test_cli_prints_the_counts_last(live_server: str, mllp: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    needs_fixtures("nist-testkit")
    code = main(
        [
            "conformance",
            "run",
            "--target-registry",
            f"{live_server}/xds/registry",
            "--target-repository",
            f"{live_server}/xds/repository",
            "--testkit",
            str(TESTKIT),
            "--target-mllp",
            mllp,
            "--collections",
            "reg",
            "--tests",
            "11991",
            "--report",
            str(tmp_path / "r"),
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert lines[-1] == "3 passed, 0 failed"  # 15817/pif, then 11991 submit and eval
    assert (tmp_path / "r" / "junit.xml").is_file() and (tmp_path / "r" / "index.html").is_file()


def test_now_falls_after_the_last_exchange_second() -> None:
    """$now$ never shares a second with the previous request (stored-query To is exclusive)."""
    import math
    import time as _time

    from lxml import etree as _etree

    from carnet.conformance import prepare as _prepare

    _prepare.note_exchange()
    stamped = math.floor(_time.time())
    now = _prepare.standard_symbols(_etree.fromstring("<v>$now$</v>"))["$now$"]
    assert now > _time.strftime("%Y%m%d%H%M%S", _time.gmtime(stamped))
