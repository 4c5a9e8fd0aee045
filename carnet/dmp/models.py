"""DMP tables: the dossier, the authorisations given to professionals and structures, and the
notification outbox.

Patient ids are stored in the registry's canonical CX form (``ID^^^&OID&ISO``, see
``carnet.dmp.ids``) so the policy compares them with DocumentEntry patient ids by equality. Imported
by ``carnet.registry.schema`` so the one metadata (and Alembic) sees these tables too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carnet.registry.schema import PID, Base, now

ACTOR = String(128)  # PS_IdNat / Struct_IdNat, e.g. 810000000001 or 1750000000001


class Dossier(Base):
    """One patient's DMP: status, consent to its creation, médecin traitant, oppositions."""

    __tablename__ = "dmp_dossier"
    patient_id: Mapped[str] = mapped_column(PID, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # active | closed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    created_by: Mapped[str] = mapped_column(String(256))
    # The patient's consent to the creation (who collected it, when, how).
    consent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consent_collected_by: Mapped[str] = mapped_column(String(256))
    consent_note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_reason: Mapped[str | None] = mapped_column(Text)
    medecin_traitant: Mapped[str | None] = mapped_column(ACTOR)
    opposes_bris_de_glace: Mapped[bool] = mapped_column(Boolean, default=False)
    opposes_centre_15: Mapped[bool] = mapped_column(Boolean, default=False)
    # The channel notifications go to (the DMP requires one at creation, EX_1.1-1200).
    contact_email: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)


class Authorization(Base):
    """The patient's authorisation for a professional or a structure to consult the DMP (TD0.3).

    One row per (patient, grantee): granting again after a revocation reactivates the same row;
    the history is in the audit trail.
    """

    __tablename__ = "dmp_authorization"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(PID)
    grantee_kind: Mapped[str] = mapped_column(String(16))  # professional | structure
    grantee_id: Mapped[str] = mapped_column(ACTOR)
    status: Mapped[str] = mapped_column(String(16))  # granted | revoked
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    granted_by: Mapped[str] = mapped_column(String(256))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(256))
    __table_args__ = (
        UniqueConstraint("patient_id", "grantee_kind", "grantee_id", name="uq_dmp_authorization_grantee"),
    )


class Notification(Base):
    """Outbox: written in the transaction that caused it, delivered by SMTP afterwards.

    ``dedupe_key`` makes the unique constraint decide "first": the first access of a professional
    is the notification row keyed by their id, one break-glass notice per token (not per query).
    """

    __tablename__ = "dmp_notification"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(PID, index=True)
    kind: Mapped[str] = mapped_column(String(32))  # creation | first_access | bris_de_glace | centre_15
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(256))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(256))
    __table_args__ = (
        Index("ix_dmp_notification_due", "status", "next_attempt_at"),
        UniqueConstraint("patient_id", "kind", "dedupe_key", name="uq_dmp_notification_dedupe"),
    )
