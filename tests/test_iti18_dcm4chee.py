"""ITI-18 against the dcm4chee-xds2 stored-query expectations (NIST 12346 seed ported to ebRIM 3.0).

Every test method recorded in ../shared/fixtures/dcm4chee-sq/expected_results.json is replayed:
the seed is registered by ITI-42 over SOAP, then each query is sent and its answer compared with
the recorded status, counts, ids and names. Where dcm4chee reads ``...TimeTo`` as inclusive, ITI TF
and NIST read it as exclusive; we follow the TF and state the corrected expectation below.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from carnet.db import write_transaction
from carnet.registry import patients
from carnet.registry.validate.datatypes import normalize_cx
from tests.conftest import DCM4CHEE, DCM4CHEE_WS, needs_fixtures
from tests.xds import QueryAnswer, query, register, response_status

PATIENT = "test1234_1^^^&1.2.3.45.4.3.2.1&ISO"


def _expectations() -> list[dict]:
    path = DCM4CHEE / "expected_results.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())["tests"]


EXPECTATIONS = _expectations()

# dcm4chee treats ...TimeTo as inclusive; ITI TF-2a 3.18.4.1.2.3.6.1 and NIST make it exclusive.
TF_OVERRIDES = {
    # dcm4chee sends From=To=2005 and counts 2005 as included; under the TF that range is empty.
    ("findDocumentsServiceStartTime", 0): {"document_entries": {"count": 0}},
    ("findDocumentsServiceStopTime", 0): {"document_entries": {"count": 0}},
    # To=20041226235050 excludes SS_F, submitted exactly at 20041226235050.
    ("findSubmissionSetSubmissionTimeEdge", 0): {"submission_sets": {"count": 4}},
    # To=20041224 excludes DocB, created 20041224.
    ("findDocumentsCreationTimeRightEdge", 1): {"document_entries": {"count": 0}},
}


@pytest.mark.parametrize(
    ("param", "lo", "hi", "names"),
    [
        # The NIST 11897 forms of the queries dcm4chee rewrote: To is exclusive, From inclusive.
        ("ServiceStartTime", "2005", "2006", {"DocC", "DocD"}),
        ("ServiceStopTime", "2005", "2006", {"DocC", "DocD"}),
        ("CreationTime", "20041224", "20050101", {"DocB"}),
        ("CreationTime", "20041124", "20041225", {"DocB"}),
        ("CreationTime", "20041124", "20041224", set()),
    ],
)
def test_time_ranges_follow_the_tf(seeded, param, lo, hi, names) -> None:  # type: ignore[no-untyped-def]
    ans = query(
        seeded,
        "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        [
            ("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"]),
            ("$XDSDocumentEntryStatus", ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"]),
            (f"$XDSDocumentEntry{param}From", [lo]),
            (f"$XDSDocumentEntry{param}To", [hi]),
        ],
    )
    assert ans.status == "Success"
    assert {QueryAnswer.name(d) for d in ans.documents} == names


@pytest.fixture
def seeded(client, engine):  # type: ignore[no-untyped-def]
    needs_fixtures("dcm4chee-sq")
    with write_transaction(engine) as session:
        for pid in ("test1234_1^^^&1.2.3.45.4.3.2.1&ISO", "test1234_2^^^&1.2.3.45.4.3.2.1&ISO"):
            patients.upsert(session, pid)
    for name in json.loads((DCM4CHEE / "expected_results.json").read_text())["seed"]["load_order"]:
        xml = (DCM4CHEE_WS / name).read_text()
        # ITI TF-3 requires a SubmissionSet uniqueId to be an OID; dcm4chee's second seed uses a
        # placeholder string there. No expectation reads it, so an OID stands in for it.
        xml = xml.replace('value="SubmissionSet01_uniqueid"', 'value="1.20.3.4.1.2.2.99"')
        status, errors = response_status(register(client, xml))
        assert status == "Success", (name, errors)
    return client


def _resolve(values: list[str]) -> list[str]:
    now = datetime.now(UTC)
    out = []
    for val in values:
        val = val.replace(
            "<now minus 1 year, yyyyMMddHHmmss>", (now - timedelta(days=366)).strftime("%Y%m%d%H%M%S")
        )
        val = val.replace("<now, yyyyMMddHHmmss>", (now + timedelta(seconds=5)).strftime("%Y%m%d%H%M%S"))
        out.append(val)
    return out


def _check(ans: QueryAnswer, expect: dict, where: str) -> None:
    status = expect["status"].rsplit(":", 1)[-1]
    assert ans.status == status, f"{where}: status {ans.status} {ans.errors}"
    if "error_code" in expect:
        assert [e[0] for e in ans.errors] == [expect["error_code"]], where
    for kind in ("document_entries", "submission_sets", "folders", "associations", "object_refs"):
        if kind not in expect:
            continue
        attr = {"document_entries": "documents"}.get(kind, kind)
        got = getattr(ans, attr)
        assert len(got) == expect[kind]["count"], f"{where}: {kind} {len(got)} != {expect[kind]['count']}"
        if kind == "object_refs":
            continue
        for oid in expect[kind].get("ids", []):
            assert oid in [o.get("id") for o in got], f"{where}: {kind} lacks {oid}"
        for name in expect[kind].get("names", []):
            assert name in [QueryAnswer.name(o) for o in got], f"{where}: {kind} lacks {name}"
        for item in expect[kind].get("items", []) if kind == "associations" else []:
            assert any(
                a.get("associationType") == item["type"]
                and a.get("sourceObject") == item["source"]
                and a.get("targetObject") == item["target"]
                for a in got
            ), (where, item)


@pytest.mark.parametrize("case", EXPECTATIONS, ids=[f"{t['class']}.{t['method']}" for t in EXPECTATIONS])
def test_dcm4chee_expectation(seeded, engine, case) -> None:  # type: ignore[no-untyped-def]
    steps = case.get("steps") or [case]
    merged = case.get("pre_action", "").startswith("Register patient")
    if merged:
        ids = re.findall(r"'([^']+)'", case["pre_action"])
        with write_transaction(engine) as session:
            patients.merge(session, normalize_cx(ids[0]), normalize_cx(ids[1]))
    for i, step in enumerate(steps):
        expect = dict(step["expect"])
        expect.update(TF_OVERRIDES.get((case["method"], i), {}))
        params = [(p["name"], _resolve(p["values"])) for p in step["params"]]
        ans = query(seeded, case["query_id"], params, case.get("return_type", "LeafClass"))
        _check(ans, expect, f"{case['method']} step {i}")
