"""Who accessed the record: the audit trail of one patient, as the patient and the médecin traitant
see it (``carnet audit list``, FHIR AuditEvent search).

Read-only by construction: this module only selects; audit rows are never updated or deleted
through any API, and the database refuses it (migration 0005).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.registry.schema import AuditEventRow


@dataclass(frozen=True)
class Trace:
    id: int
    recorded_at: datetime
    transaction: str
    event_id: str
    action: str
    outcome: int
    principal: dict[str, str | None]
    access_mode: str | None
    source_address: str | None
    patient_id: str | None
    objects: list[dict[str, str]]
    detail: str | None

    @property
    def reason(self) -> str | None:
        return self.principal.get("reason")

    @classmethod
    def of(cls, row: AuditEventRow) -> Trace:
        return cls(
            row.id,
            row.recorded_at,
            row.transaction,
            row.event_id,
            row.action,
            row.outcome,
            json.loads(row.principal),
            row.access_mode,
            row.source_address,
            row.patient_id,
            json.loads(row.objects or "[]"),
            row.detail,
        )


def for_patient(
    session: Session,
    patient_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[Trace]:
    """The patient's audit records, newest first."""
    stmt = select(AuditEventRow).where(AuditEventRow.patient_id == patient_id)
    if since is not None:
        stmt = stmt.where(AuditEventRow.recorded_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEventRow.recorded_at < until)
    stmt = stmt.order_by(AuditEventRow.recorded_at.desc(), AuditEventRow.id.desc()).limit(limit)
    return [Trace.of(r) for r in session.scalars(stmt)]
