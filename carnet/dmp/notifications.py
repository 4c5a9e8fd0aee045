"""Patient notifications: written to an outbox in the transaction that causes them, delivered by
SMTP afterwards with retries.

What is notified (EX_1.1-1200 and the break-glass rule): the creation of the DMP, the first access
of each professional, and every break-glass or centre-15 access (once per token, not once per
query). ``on_audit_event`` is called by ``carnet.security.audit.record_in`` for every audited
transaction, so a notification exists exactly when its access was recorded, and never when the
transaction rolled back. ``deliver_due`` claims due rows under a lease (so concurrent workers never
send one twice and no database lock is held while talking SMTP), sends them, and schedules failures
again with exponential back-off until ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from carnet.db import write_transaction
from carnet.dmp.models import Dossier, Notification
from carnet.registry.schema import now as utcnow
from carnet.security.principal import Principal
from carnet.security.vihf import PROFESSION_LABELS

if TYPE_CHECKING:
    from carnet.config import Settings
    from carnet.security.audit import AuditEvent

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)
# DICOM event ids of accesses to the record's content (query, export, import).
ACCESS_EVENTS = frozenset({"110112", "110106", "110107"})


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min ... capped at one hour."""
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), timedelta(hours=1))


def _when(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%d/%m/%Y à %H:%M UTC")


def _actor(p: Principal) -> str:
    label = PROFESSION_LABELS.get(p.role or "", f"profession {p.role}" if p.role else "professionnel")
    name = p.name or p.id
    structure = f", structure {p.structure}" if p.structure else ""
    return f"{name} ({label}, identifiant {p.id}{structure})"


def enqueue(
    session: Session,
    dossier: Dossier,
    kind: str,
    subject: str,
    body: str,
    dedupe_key: str | None = None,
) -> bool:
    """Write one notification in the caller's transaction; False when its dedupe key was taken."""
    values = {
        "patient_id": dossier.patient_id,
        "kind": kind,
        "recipient": dossier.contact_email,
        "subject": subject,
        "body": body,
        "created_at": utcnow(),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": utcnow(),
        "dedupe_key": dedupe_key,
    }
    dialect = session.get_bind().dialect.name
    # The unique (patient, kind, dedupe_key) constraint decides "first": never check-then-insert.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Notification).values(values).on_conflict_do_nothing().returning(Notification.id)
    return session.execute(stmt).first() is not None


def on_creation(session: Session, dossier: Dossier) -> None:
    enqueue(
        session,
        dossier,
        "creation",
        "Votre Dossier Médical Partagé a été créé",
        f"Votre Dossier Médical Partagé (DMP) a été créé le {_when(dossier.created_at)}, avec votre "
        "consentement. Vous pouvez y autoriser ou en retirer l'accès des professionnels de santé, "
        "vous opposer aux accès en urgence et consulter la liste des accès à votre dossier.",
    )


def on_audit_event(session: Session, event: AuditEvent) -> None:
    """Notifications an audited access calls for, in the audit record's own transaction."""
    p = event.principal
    if (
        event.outcome != 0
        or not event.patient_id
        or p.kind not in ("professional", "structure")
        or event.event_id not in ACCESS_EVENTS
    ):
        return
    dossier = session.get(Dossier, event.patient_id)
    if dossier is None or dossier.status != "active":
        return
    at = _when(utcnow())
    if p.access_mode in ("bris_de_glace", "centre_15"):
        how = (
            "en mode « bris de glace » (accès d'urgence)"
            if p.access_mode == "bris_de_glace"
            else "par un centre de régulation médicale (SAMU - centre 15)"
        )
        enqueue(
            session,
            dossier,
            p.access_mode,
            "Accès d'urgence à votre Dossier Médical Partagé",
            f"{_actor(p)} a accédé à votre DMP {how} le {at}. Motif déclaré : {p.reason or 'non précisé'}.",
            dedupe_key=f"{p.id}:{p.token_id or at}",
        )
    enqueue(
        session,
        dossier,
        "first_access",
        "Premier accès d'un professionnel à votre Dossier Médical Partagé",
        f"{_actor(p)} a accédé pour la première fois à votre DMP le {at}.",
        dedupe_key=p.id,
    )


# ---------------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Notification.status == "pending", Notification.next_attempt_at <= now),
        # A worker that died while sending: its lease ran out, the row is due again.
        and_(Notification.status == "sending", Notification.next_attempt_at <= now),
    )


def claim(engine: Engine, now: datetime, limit: int = 50) -> list[Notification]:
    """Take up to ``limit`` due notifications under a lease; other workers skip them."""
    with write_transaction(engine) as session:
        ids = list(
            session.scalars(
                select(Notification.id).where(_due(now)).order_by(Notification.next_attempt_at).limit(limit)
            )
        )
        if not ids:
            return []
        # The UPDATE re-checks the due condition: of two racing workers only one gets each row.
        claimed = list(
            session.scalars(
                update(Notification)
                .where(Notification.id.in_(ids), _due(now))
                .values(status="sending", next_attempt_at=now + LEASE)
                .returning(Notification.id)
            )
        )
        return list(session.scalars(select(Notification).where(Notification.id.in_(claimed))))


Sender = Callable[[list[EmailMessage]], list[Exception | None]]


def smtp_sender(settings: Settings) -> Sender:
    """Send messages over one SMTP connection; one result per message (None: accepted)."""
    url = urlsplit(settings.smtp_url or "")
    host, port = url.hostname or "localhost", url.port or 25

    def send(messages: list[EmailMessage]) -> list[Exception | None]:
        results: list[Exception | None] = []
        try:
            with smtplib.SMTP(host, port, timeout=10) as smtp:
                if url.scheme == "smtp+starttls":
                    context = ssl.create_default_context(
                        cafile=str(settings.smtp_ca) if settings.smtp_ca else None
                    )
                    smtp.starttls(context=context)
                for message in messages:
                    try:
                        smtp.send_message(message)
                        results.append(None)
                    except smtplib.SMTPException as exc:
                        results.append(exc)
        except (OSError, smtplib.SMTPException) as exc:
            results += [exc] * (len(messages) - len(results))
        return results

    return send


def _message(n: Notification, sender_address: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender_address
    msg["To"] = n.recipient
    msg["Subject"] = n.subject
    msg["Message-ID"] = f"<dmp-notification-{n.id}@carnet>"
    msg.set_content(n.body)
    return msg


def deliver_due(
    engine: Engine, settings: Settings, now: datetime | None = None, sender: Sender | None = None
) -> DeliveryReport:
    """One delivery pass: claim what is due, send it, record each outcome."""
    now = now or utcnow()
    report = DeliveryReport()
    if not settings.smtp_url and sender is None:
        return report
    batch = claim(engine, now)
    if not batch:
        return report
    results = (sender or smtp_sender(settings))([_message(n, settings.smtp_from) for n in batch])
    with write_transaction(engine) as session:
        for n, error in zip(batch, results, strict=True):
            row = session.get(Notification, n.id)
            assert row is not None
            row.attempts += 1
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", utcnow(), None
                report.sent += 1
            elif row.attempts >= MAX_ATTEMPTS:
                row.status, row.last_error = "failed", str(error)[:2000]
                report.failed += 1
                log.error("notification %s to %s failed for good: %s", row.id, row.recipient, error)
            else:
                row.status, row.last_error = "pending", str(error)[:2000]
                row.next_attempt_at = now + backoff(row.attempts)
                report.retried += 1
    return report


def start_worker(engine: Engine, settings: Settings, interval: float = 15.0) -> Callable[[], None]:
    """Deliver in a background thread every ``interval`` seconds; returns the function that stops it."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                deliver_due(engine, settings)
            except Exception:  # keep delivering: one bad pass must not end notifications
                log.exception("notification delivery pass failed")
            stop.wait(interval)

    thread = threading.Thread(target=run, name="carnet-notifications", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=interval + 5)

    return halt
