"""Audit trail: one record per transaction, with the content of an ATNA/DICOM audit message.

Records are appended to the ``audit_event`` table and never updated or deleted through any API
(the database refuses it too, migration 0005). A successful write's record is committed in the same
transaction as the data it describes; a failed or read transaction's record is written in a
transaction of its own. Two things ride on that same transaction: the DMP notifications the access
calls for (``carnet.dmp.notifications``), and, once it commits, the copy shipped by syslog when a
shipper is configured (``carnet.security.syslog``).
"""

from __future__ import annotations

import json
import logging
import weakref
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlalchemy import Engine, insert
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

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
EVENT_USER_AUTHENTICATION = "110114"

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
                    "reason": p.reason,
                    "specialty": p.specialty,
                    "token": p.token_id,
                    "issuer": p.attributes.get("issuer"),
                },
                sort_keys=True,
            ),
            "access_mode": p.access_mode,
            "source_address": self.source_address,
            "patient_id": self.patient_id,
            "objects": json.dumps(self.objects),
            "detail": self.detail,
        }


class Shipper(Protocol):
    """Where committed records are copied (syslog); must not block the request."""

    def ship(self, rows: list[dict[str, object]]) -> None: ...


# One shipper per database (keyed by its connection pool, which every engine option view shares).
_shippers: weakref.WeakKeyDictionary[Pool, Shipper] = weakref.WeakKeyDictionary()
_PENDING = "carnet.audit.pending"


def ship_to(engine: Engine, shipper: Shipper | None) -> None:
    """Copy every record committed on ``engine`` to ``shipper`` (None: stop shipping)."""
    if shipper is None:
        _shippers.pop(engine.pool, None)
    else:
        _shippers[engine.pool] = shipper


def _after_commit(session: Session) -> None:
    rows = session.info.pop(_PENDING, [])
    shipper = _shippers.get(session.get_bind().engine.pool)
    if rows and shipper is not None:
        shipper.ship(rows)


def record_in(session: Session, event: AuditEvent) -> None:
    """Append the record inside the caller's transaction (commits or rolls back with it)."""
    row = event.row()
    session.execute(insert(AuditEventRow), [row])
    # Imported here: the DMP layer builds on the registry schema, which imports this package.
    from carnet.dmp import notifications

    notifications.on_audit_event(session, event)
    if _shippers.get(session.get_bind().engine.pool) is not None:
        pending = session.info.setdefault(_PENDING, [])
        if not pending:
            # Shipped only once committed: a rolled-back transaction leaves no trace to copy
            # (sessions live for one transaction, so the listener dies with a rolled-back one).
            sa_event.listen(session, "after_commit", _after_commit, once=True)
        pending.append(row)


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
