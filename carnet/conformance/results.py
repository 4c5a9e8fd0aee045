"""What a run produced: a verdict and its reasons for every step, grouped by section and test."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not run"
    EXCLUDED = "excluded"


@dataclass
class StepResult:
    test_id: str
    section: str
    step_id: str
    transaction: str
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    endpoint: str = ""
    request: str = ""
    response: str = ""
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return (
            f"{self.test_id}/{self.section}/{self.step_id}"
            if self.section
            else f"{self.test_id}/{self.step_id}"
        )


@dataclass
class TestResult:
    test_id: str
    collections: frozenset[str]
    readme: str = ""
    # Pulled in because a selected test reads its results (12346 for the stored-query tests).
    dependency: bool = False
    steps: list[StepResult] = field(default_factory=list)
    problem: str | None = None

    def count(self, verdict: Verdict) -> int:
        return sum(1 for s in self.steps if s.verdict == verdict)

    @property
    def verdict(self) -> Verdict:
        if self.count(Verdict.FAILED):
            return Verdict.FAILED
        if self.steps and all(s.verdict == Verdict.EXCLUDED for s in self.steps):
            return Verdict.EXCLUDED
        if self.problem or self.count(Verdict.NOT_RUN):
            return Verdict.NOT_RUN
        return Verdict.PASSED


@dataclass
class RunResult:
    tests: list[TestResult] = field(default_factory=list)
    collections: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def steps(self) -> list[StepResult]:
        return [s for t in self.tests for s in t.steps]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for s in self.steps() if s.verdict == verdict)

    def per_collection(self) -> dict[str, dict[Verdict, int]]:
        """Step verdicts per requested collection (a test in two collections counts in both)."""
        out: dict[str, dict[Verdict, int]] = {}
        for collection in self.collections:
            counts = dict.fromkeys(Verdict, 0)
            for test in self.tests:
                if collection in test.collections:
                    for verdict in Verdict:
                        counts[verdict] += test.count(verdict)
            out[collection] = counts
        return out

    def summary_line(self) -> str:
        line = f"{self.count(Verdict.PASSED)} passed, {self.count(Verdict.FAILED)} failed"
        skipped = self.count(Verdict.NOT_RUN) + self.count(Verdict.EXCLUDED)
        return line + (f", {skipped} skipped" if skipped else "")
