"""Replay of NIST XDS Toolkit tests against any XDS.b registry and repository, over HTTP.

The selected tests (collections and/or ids) run in natural order, each after the tests it reads
results from (``UseId testdir="../../12346/..."``, ``UseReport test="15817"``), which are pulled
in and reported as dependencies. Sections run in ``index.idx`` order and steps in plan order;
a failed step does not stop its section, and a step whose inputs an earlier failure left missing
is reported as not run. Nothing is shared with the server in process: the target is reached only
through its endpoints (and its ITI-8 MLLP listener, when given).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from carnet.conformance import pif
from carnet.conformance.linkage import RunLog, target_section
from carnet.conformance.results import RunResult, StepResult, TestResult, Verdict
from carnet.conformance.testkit import TestDefinition, Testkit, natural_key
from carnet.conformance.testplan import read_plan
from carnet.conformance.transactions import (
    PIF_ROLES,
    Context,
    Patients,
    StepRunner,
    TestState,
    load_schema,
)
from carnet.xml import UnsafeXMLError

DEFAULT_COLLECTIONS = ("reg", "rep", "reg_mu", "reg_rm", "rep_rd", "reg_catfolder", "reg_catlifecycle")
# The assigning authority of the patient ids the runner allocates (NIST's default domain).
DEFAULT_AUTHORITY = "1.3.6.1.4.1.21367.13.20.1000"
# The project's own additions to the testkit search path (plans the stored snapshot lacks).
SUPPLEMENT = Path(__file__).resolve().parents[2] / "conformance" / "nist-supplement"


@dataclass
class RunOptions:
    registry_url: str
    repository_url: str
    testkits: list[Path]
    collections: list[str] = field(default_factory=lambda: list(DEFAULT_COLLECTIONS))
    tests: list[str] = field(default_factory=list)
    mllp: str | None = None
    patient_authority: str = DEFAULT_AUTHORITY


def dependencies(testkit: Testkit, test: TestDefinition) -> list[str]:
    """Other tests whose logs the plans of ``test`` read."""
    found: list[str] = []
    for section in test.sections:
        try:
            steps = read_plan(section) if section.plan.is_file() else []
        except UnsafeXMLError:
            continue
        for step in steps:
            ins = step.instruction
            if ins is None:
                continue
            names = [u.test for u in ins.use_reports if u.test]
            dirs = [u.testdir for u in ins.use_ids if u.testdir]
            if ins.reference_metadata:
                dirs.append(ins.reference_metadata[0])
            for d in dirs:
                target = target_section(testkit, section, d)
                if target is not None:
                    names.append(target.test_id)
            for name in names:
                if name and name != test.id and name not in found:
                    found.append(name)
    return found


def plan_order(testkit: Testkit, selected: list[str]) -> list[tuple[str, bool]]:
    """(test id, pulled in as a dependency) in run order: each test after what it reads."""
    order: list[tuple[str, bool]] = []
    seen: set[str] = set()
    chosen = set(selected)

    def visit(test_id: str, stack: tuple[str, ...]) -> None:
        if test_id in seen or test_id in stack:
            return
        definition = testkit.test(test_id)
        if definition is not None:
            for dep in dependencies(testkit, definition):
                visit(dep, (*stack, test_id))
        seen.add(test_id)
        order.append((test_id, test_id not in chosen))

    for test_id in selected:
        visit(test_id, ())
    return order


def select(testkit: Testkit, collections: list[str], tests: list[str]) -> list[str]:
    if tests:
        return tests
    ids: set[str] = set()
    for collection in collections:
        ids.update(testkit.in_collection(collection))
    return sorted(ids, key=natural_key)


def run(options: RunOptions, progress: Callable[[str], None] | None = None) -> RunResult:
    testkit = Testkit([*options.testkits, *([SUPPLEMENT] if SUPPLEMENT.is_dir() else [])])
    feed = pif.FeedAddress.parse(options.mllp) if options.mllp else None
    schema_dir = testkit.schema_dir()
    ctx = Context(
        testkit=testkit,
        log=RunLog(),
        patients=Patients(options.patient_authority, feed),
        registry_url=options.registry_url,
        repository_url=options.repository_url,
        schema=load_schema(schema_dir),
    )
    result = RunResult(
        collections=list(options.collections),
        settings={
            "registry": options.registry_url,
            "repository": options.repository_url,
            "testkit": " ".join(str(t) for t in testkit.roots),
            "patient feed": f"ITI-8 MLLP {options.mllp}"
            if options.mllp
            else "none (target must accept the ids)",
            "response schemas": str(schema_dir)
            if ctx.schema is not None
            else "not found: answers not validated",
            "collections": ",".join(options.collections),
            "tests": ",".join(options.tests) or "all of the collections",
        },
    )
    started = time.monotonic()
    for test_id, is_dependency in plan_order(testkit, select(testkit, options.collections, options.tests)):
        test = run_test(ctx, test_id, is_dependency)
        result.tests.append(test)
        if progress is not None:
            progress(
                f"{test_id:<28} {test.verdict.value:<8} "
                f"({test.count(Verdict.PASSED)} passed, {test.count(Verdict.FAILED)} failed, "
                f"{test.count(Verdict.NOT_RUN) + test.count(Verdict.EXCLUDED)} skipped)"
            )
    result.seconds = time.monotonic() - started
    return result


def run_test(ctx: Context, test_id: str, is_dependency: bool) -> TestResult:
    definition = ctx.testkit.test(test_id)
    if definition is None:
        return TestResult(test_id, frozenset(), dependency=is_dependency, problem="not in the testkit")
    result = TestResult(test_id, definition.collections, definition.readme, is_dependency)
    if not definition.sections:
        result.problem = "the test has neither index.idx nor testplan.xml"
    referenced = dependencies(ctx.testkit, definition)
    role = next((PIF_ROLES[t] for t in ("15818", "15817") if t in referenced), None)
    state = TestState(test_id, pif_role=role)
    for section in definition.sections:
        if not section.plan.is_file():
            result.steps.append(_not_run(test_id, section.name, "-", f"{section.label}: no testplan.xml"))
            continue
        try:
            steps = read_plan(section)
        except UnsafeXMLError as exc:
            result.steps.append(_not_run(test_id, section.name, "-", f"testplan.xml does not parse: {exc}"))
            continue
        for step in steps:
            result.steps.append(StepRunner(ctx, step, state).run())
    return result


def _not_run(test_id: str, section: str, step: str, reason: str) -> StepResult:
    return StepResult(test_id, section, step, "-", Verdict.NOT_RUN, [reason])


def print_progress(line: str) -> None:
    print(line, file=sys.stdout, flush=True)
