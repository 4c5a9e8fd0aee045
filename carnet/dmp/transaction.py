"""One DMP management operation = one policy decision, one database transaction, one audit record.

Every dossier, consent and authorisation change goes through ``perform``: the decision point is
asked first, the change and its audit record commit together, and a refusal or a rejected request
is audited in a transaction of its own before the error reaches the caller (SOAP, FHIR or CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from carnet.db import write_transaction
from carnet.security import audit
from carnet.security.policy import AccessDenied, Action, Decision, PolicyDecisionPoint, enforce
from carnet.security.principal import Principal

T = TypeVar("T")


class DossierError(ValueError):
    """The request cannot be applied to the dossier as it stands; the message says why."""

    def __init__(self, reason: str, status: int = 409):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def require(decision: Decision) -> None:
    """Turn a refusal of a finer-grained rule (``dmp_policy.may_*``) into ``AccessDenied``."""
    if not decision.permit:
        raise AccessDenied(decision)


def perform(
    engine: Engine,
    pdp: PolicyDecisionPoint,
    principal: Principal,
    action: Action,
    patient_id: str,
    transaction: str,
    op: Callable[[Session], T],
    event_action: Literal["C", "R", "U", "D", "E"] = "U",
    source_address: str | None = None,
    objects: list[dict[str, str]] | None = None,
) -> T:
    event = audit.AuditEvent(
        transaction,
        audit.EVENT_PATIENT_RECORD,
        event_action,
        principal,
        source_address=source_address,
        patient_id=patient_id,
        objects=objects or [],
    )
    try:
        enforce(pdp, principal, action, patient_id)
        with write_transaction(engine) as session:
            result = op(session)
            audit.record_in(session, event)
        return result
    except (AccessDenied, DossierError) as exc:
        event.outcome = audit.SERIOUS_FAILURE
        event.detail = str(exc)[:4000]
        audit.record(engine, event)
        raise
