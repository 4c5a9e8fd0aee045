"""The one policy decision point every read and write passes before data is touched.

``PolicyDecisionPoint`` is the seam: ``decide`` before data is read or written, ``visible`` to
filter query results. Carnet runs the DMP's rules (``carnet.security.dmp_policy.DMPPolicy``:
consent, profession x document-type matrix, masking, break-glass); ``OpenPolicy`` remains for
embedding and tests that want no rules. Callers name the action and the patient so the decision
and its audit record see the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from carnet.security.principal import Principal

if TYPE_CHECKING:
    from carnet.registry.storedquery.queries import Hit
from carnet.xds.errors import ErrorCode, RegistryError, XDSError

# The XDS actions, then the DMP's own: "status" (TD0.2 existence test), "dossier" (create or
# reactivate a DMP), "close", "authorize" (TD0.3 authorisations, médecin traitant), "consent"
# (oppositions to break-glass / centre 15) and "audit" (read the access trail).
Action = Literal[
    "submit",
    "query",
    "retrieve",
    "update",
    "remove",
    "admin",
    "status",
    "dossier",
    "close",
    "authorize",
    "consent",
    "audit",
]


@dataclass(frozen=True)
class Decision:
    permit: bool
    reason: str = ""


class PolicyDecisionPoint(Protocol):
    def decide(
        self,
        principal: Principal,
        action: Action,
        patient_id: str | None = None,
        documents: tuple[str, ...] = (),
    ) -> Decision: ...

    def visible(self, principal: Principal, action: Action, hits: list[Hit]) -> list[Hit]:
        """The query results the principal may see; what it may not see is left out silently."""
        ...


class AccessDenied(Exception):
    def __init__(self, decision: Decision):
        super().__init__(decision.reason)
        self.decision = decision


class OpenPolicy:
    """Permit every identified principal; refuse the anonymous one unless allowed by configuration."""

    def __init__(self, allow_anonymous: bool = False):
        self.allow_anonymous = allow_anonymous

    def decide(
        self,
        principal: Principal,
        action: Action,
        patient_id: str | None = None,
        documents: tuple[str, ...] = (),
    ) -> Decision:
        if principal.kind == "anonymous" and not self.allow_anonymous:
            return Decision(
                False, "anonymous access is disabled (set CARNET_ALLOW_ANONYMOUS=1 for development)"
            )
        return Decision(True, "open policy")

    def visible(self, principal: Principal, action: Action, hits: list[Hit]) -> list[Hit]:
        return hits



def enforce(
    pdp: PolicyDecisionPoint,
    principal: Principal,
    action: Action,
    patient_id: str | None = None,
    documents: tuple[str, ...] = (),
) -> Decision:
    decision = pdp.decide(principal, action, patient_id, documents)
    if not decision.permit:
        raise AccessDenied(decision)
    return decision


def document_refusals(
    pdp: PolicyDecisionPoint,
    principal: Principal,
    action: Action,
    documents: list[tuple[str | None, str]],
) -> list[RegistryError]:
    """One RegistryError per document (patient id, uniqueId) the principal may not have.

    A retrieve is decided document by document: a refused document is answered with its own
    error (location = its uniqueId) and the others are still served, as XDS answers a missing one.
    """
    errors: list[RegistryError] = []
    by_patient: dict[str | None, list[str]] = {}
    for patient, uid in documents:
        by_patient.setdefault(patient, []).append(uid)
    for patient, uids in by_patient.items():
        decision = pdp.decide(principal, action, patient)
        for uid in uids:
            d = pdp.decide(principal, action, patient, (uid,)) if decision.permit else decision
            if not d.permit:
                errors.append(RegistryError(ErrorCode.LOCAL_POLICY_RESTRICTION, d.reason, uid))
    return errors


def denial_errors(exc: AccessDenied) -> list[RegistryError]:
    """A refusal as XDS responses carry it (DMP: LocalPolicyRestrictionError)."""
    return [RegistryError(ErrorCode.LOCAL_POLICY_RESTRICTION, exc.decision.reason)]


def errors_of(exc: Exception) -> list[RegistryError]:
    if isinstance(exc, AccessDenied):
        return denial_errors(exc)
    if isinstance(exc, XDSError):
        return exc.errors
    raise TypeError(type(exc))
