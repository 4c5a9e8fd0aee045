"""The one policy decision point every read and write passes before data is touched.

For now the registry applies an open policy (any authenticated principal may submit, query and
retrieve); the DMP's rules (consent, profession x document-type matrix, masking, break-glass)
plug in here without touching the transactions. Callers name the action and the patient so the
decision and its audit record see the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from carnet.security.principal import Principal

if TYPE_CHECKING:
    from carnet.registry.storedquery.queries import Hit
from carnet.xds.errors import ErrorCode, RegistryError, XDSError

Action = Literal["submit", "query", "retrieve", "update", "remove", "admin"]


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


def denial_errors(exc: AccessDenied) -> list[RegistryError]:
    """A refusal as XDS responses carry it (DMP: LocalPolicyRestrictionError)."""
    return [RegistryError(ErrorCode.LOCAL_POLICY_RESTRICTION, exc.decision.reason)]


def errors_of(exc: Exception) -> list[RegistryError]:
    if isinstance(exc, AccessDenied):
        return denial_errors(exc)
    if isinstance(exc, XDSError):
        return exc.errors
    raise TypeError(type(exc))
