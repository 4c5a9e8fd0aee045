"""OperationOutcome: how the FHIR facade reports errors and warnings.

Every failure is an HTTP 4xx/5xx with an OperationOutcome. When the failure is an XDS rule (most
ITI-65 failures are raised by the same registry code as ITI-41), the XDS error code travels in
``issue.details.coding.code`` and its codeContext in ``issue.details.text``, as the MHD Document
Recipients in the field do (MobileAccessGateway ``BaseResponseConverter``); a sender can fix its
bundle from the OperationOutcome alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fhir.resources.R4B.operationoutcome import OperationOutcome

from carnet.security.policy import AccessDenied
from carnet.xds.errors import ErrorCode, RegistryError, XDSError

# The code system of the XDS error codes (ITI TF-3 Table 4.2.4.1-2) has no canonical URL; the
# codes are written without a system, as MobileAccessGateway and IPF do.
Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: FHIR issue type, the XDS code if any, and the reason."""

    code: str  # FHIR IssueType: invalid, required, not-found, forbidden, ...
    text: str
    xds_code: str | None = None
    severity: Severity = "error"
    expression: tuple[str, ...] = ()


@dataclass
class FHIRError(Exception):
    """Raised anywhere in the facade; the endpoint answers ``status`` with the issues."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__("; ".join(i.text for i in self.issues))

    @classmethod
    def of(
        cls,
        status: int,
        code: str,
        text: str,
        xds_code: str | None = None,
        expression: str | None = None,
    ) -> FHIRError:
        return cls(status, [Issue(code, text, xds_code, expression=(expression,) if expression else ())])


# XDS codes whose failure is not the sender's fault, and codes that say "not found".
_STATUS: dict[str, int] = {
    ErrorCode.REGISTRY_BUSY: 503,
    ErrorCode.REPOSITORY_BUSY: 503,
    ErrorCode.REGISTRY_NOT_AVAILABLE: 503,
    ErrorCode.REGISTRY_OUT_OF_RESOURCES: 503,
    ErrorCode.REPOSITORY_OUT_OF_RESOURCES: 503,
    ErrorCode.REGISTRY_ERROR: 500,
    ErrorCode.REPOSITORY_ERROR: 500,
    ErrorCode.LOCAL_POLICY_RESTRICTION: 403,
}
_ISSUE_TYPE: dict[str, str] = {
    ErrorCode.REGISTRY_BUSY: "transient",
    ErrorCode.REPOSITORY_BUSY: "transient",
    ErrorCode.REGISTRY_NOT_AVAILABLE: "transient",
    ErrorCode.REGISTRY_ERROR: "exception",
    ErrorCode.REPOSITORY_ERROR: "exception",
    ErrorCode.LOCAL_POLICY_RESTRICTION: "forbidden",
    ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY: "duplicate",
    ErrorCode.REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE: "duplicate",
    ErrorCode.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE: "duplicate",
    ErrorCode.NON_IDENTICAL_HASH: "conflict",
    ErrorCode.NON_IDENTICAL_SIZE: "conflict",
    ErrorCode.UNKNOWN_PATIENT_ID: "not-found",
    ErrorCode.MISSING_DOCUMENT: "required",
    ErrorCode.MISSING_DOCUMENT_METADATA: "required",
    ErrorCode.TOO_MANY_RESULTS: "too-costly",
}


def issue_of(error: RegistryError) -> Issue:
    code = str(error.code)
    return Issue(
        _ISSUE_TYPE.get(code, "invalid"),
        error.context,
        code,
        "warning" if error.warning else "error",
        (error.location,) if error.location else (),
    )


def from_xds(exc: XDSError) -> FHIRError:
    """An XDSError as the HTTP answer: the most serious error decides the status."""
    errors = [e for e in exc.errors if not e.warning] or exc.errors
    status = max((_STATUS.get(str(e.code), 400) for e in errors), default=400)
    return FHIRError(status, [issue_of(e) for e in exc.errors])


def from_denial(exc: AccessDenied) -> FHIRError:
    return FHIRError.of(
        403, "forbidden", exc.decision.reason or "access denied", str(ErrorCode.LOCAL_POLICY_RESTRICTION)
    )


def to_errors(exc: FHIRError) -> list[RegistryError]:
    """The failure as the audit trail records every transaction's errors."""
    return [
        RegistryError(i.xds_code or f"HTTP {exc.status} {i.code}", i.text, warning=i.severity == "warning")
        for i in exc.issues
    ]


def operation_outcome(issues: list[Issue]) -> OperationOutcome:
    out = []
    for i in issues:
        item: dict[str, object] = {"severity": i.severity, "code": i.code, "diagnostics": i.text}
        details: dict[str, object] = {"text": i.text}
        if i.xds_code:
            details["coding"] = [{"code": i.xds_code}]
        item["details"] = details
        if i.expression:
            item["expression"] = list(i.expression)
        out.append(item)
    if not out:
        out = [{"severity": "information", "code": "informational", "diagnostics": "ok"}]
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": out})
