"""Audit trail: one record per transaction, with the content of an ATNA/DICOM audit message.

Records are appended to the ``audit_event`` table and never updated or deleted through any API.
A successful write's record is committed in the same transaction as the data it describes; a
failed or read transaction's record is written in a transaction of its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from carnet.db import write_transaction
from carnet.registry.schema import AuditEventRow, now
from carnet.security.principal import Principal
from carnet.xds.errors import RegistryError

log = logging.getLogger(__name__)

# DICOM EventID codes (DCM 110100-series) used by the IHE transactions.
EVENT_IMPORT = "110107"
EVENT_EXPORT = "110106"
EVENT_QUERY = "110112"
EVENT_PATIENT_RECORD = "110110"
EVENT_DELETE = "110105"

# EventOutcomeIndicator
SUCCESS = 0
MINOR_FAILURE = 4
SERIOUS_FAILURE = 8


@dataclass
class AuditEvent:
    transaction: str  # ITI-41, ITI-42, ITI-18, ITI-43, ITI-8, ...
    event_id: str
    action: Literal["C", "R", "U", "D", "E"]
    principal: Principal
    outcome: int = SUCCESS
    source_address: str | None = None
    patient_id: str | None = None
    objects: list[dict[str, str]] = field(default_factory=list)
    detail: str | None = None

    def row(self) -> dict[str, object]:
        p = self.principal
        return {
            "recorded_at": now(),
            "transaction": self.transaction,
            "event_id": self.event_id,
            "action": self.action,
            "outcome": self.outcome,
            "principal": json.dumps(
                {
                    "kind": p.kind,
                    "id": p.id,
                    "name": p.name,
                    "role": p.role,
                    "structure": p.structure,
                    "purpose": p.purpose,
                    "token": p.token_id,
                },
                sort_keys=True,
            ),
            "access_mode": p.access_mode,
            "source_address": self.source_address,
            "patient_id": self.patient_id,
            "objects": json.dumps(self.objects),
            "detail": self.detail,
        }


def record_in(session: Session, event: AuditEvent) -> None:
    """Append the record inside the caller's transaction (commits or rolls back with it)."""
    session.execute(insert(AuditEventRow), [event.row()])


def record(engine: Engine, event: AuditEvent) -> None:
    """Append the record in a transaction of its own (reads, and failures whose data rolled back)."""
    try:
        with write_transaction(engine) as session:
            record_in(session, event)
    except Exception:  # an audit failure must be loud, but must not hide the caller's answer
        log.exception("could not write audit event for %s", event.transaction)
        raise


def record_failure(engine: Engine, event: AuditEvent, errors: list[RegistryError]) -> None:
    """Record a refused or failed transaction, with the errors its answer carried."""
    event.outcome = SERIOUS_FAILURE if any(not e.warning for e in errors) else MINOR_FAILURE
    event.detail = "; ".join(f"{e.code}: {e.context}" for e in errors)[:4000]
    record(engine, event)
