"""Known defects of the NIST test plans themselves, and what the runner does about them.

A defect in a plan must not count against the system under test, nor be silently passed: each
entry names the test, section and step, the check it concerns (or the whole step), and why. An
entry on a whole step makes it "excluded"; an entry on one check waives that check only, and the
report says so next to the step. docs/conformance.md lists the same entries for readers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exclusion:
    test: str
    section: str | None
    step: str | None
    check: str | None  # None: the whole step; "ReferenceDocument": only that comparison
    reason: str

    def matches(self, test: str, section: str, step: str) -> bool:
        return (
            self.test == test
            and (self.section is None or self.section == section)
            and (self.step is None or self.step == step)
        )


_PDF_NOT_SENT = (
    "plan defect: the submit section sends readme.txt as the document, but ReferenceDocument "
    "compares the retrieved bytes with submit/my_document.pdf, a file that was never submitted; "
    "the retrieved document is still checked against the submitted readme.txt size and hash "
    "reported by the registry (ReferenceMetadata)"
)

KNOWN_DEFECTS: tuple[Exclusion, ...] = (
    Exclusion("12029", "retrieve", None, "ReferenceDocument", _PDF_NOT_SENT),
    Exclusion("50000", "retrieve", None, "ReferenceDocument", _PDF_NOT_SENT),
    Exclusion("50002", "retrieve", None, "ReferenceDocument", _PDF_NOT_SENT),
    Exclusion("50003", "retrieve", None, "ReferenceDocument", _PDF_NOT_SENT),
)


def waived(test: str, section: str, step: str, check: str) -> Exclusion | None:
    return next(
        (e for e in KNOWN_DEFECTS if e.check == check and e.matches(test, section, step)),
        None,
    )


def excluded_step(test: str, section: str, step: str) -> Exclusion | None:
    return next((e for e in KNOWN_DEFECTS if e.check is None and e.matches(test, section, step)), None)
