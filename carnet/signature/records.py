"""The record of verified signatures and of the documents each covers; what the registry and FHIR read.

One ``signature`` row per signature DocumentEntry whose signature Carnet verified on intake (or
produced, when it sealed a submission): signer, verification time, status, form. One
``signature_coverage`` row per document whose digest that signature proved: a submission-set
signature covers every document of its manifest, a detached one the documents it references, an
enveloping one itself. The rows are written in the submission's own transaction, so a refused
submission leaves none; invalid signatures are refused, never recorded, so every row says
``valid`` at the time in ``verified_at``.

These rows, not extra metadata slots, are the source of truth: slots on the signature
DocumentEntry could be written by any ITI-42 source or ITI-57 update, these only by the
repository that checked the bytes.

For the FHIR facade (MHD): ``covering(session, document_uuids)`` gives, per DocumentReference
id (entryUUID), the verified signatures covering it; ``by_signature(session, uuids)`` gives, for
a signature DocumentReference, what it covers: the facade can write ``relatesTo`` (code
``signs``) from the signature to each covered DocumentReference, also for the DMP form whose
only ``signs`` association points at the SubmissionSet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, String, Text, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from carnet.registry.schema import ID, PID, UID, Base

STATUS_VALID = "valid"


class SignatureRow(Base):
    __tablename__ = "signature"
    # The signature DocumentEntry's entryUUID.
    signature_uuid: Mapped[str] = mapped_column(ID, primary_key=True)
    unique_id: Mapped[str] = mapped_column(UID, index=True)
    patient_id: Mapped[str] = mapped_column(PID, index=True)
    submission_set_uuid: Mapped[str | None] = mapped_column(ID)
    form: Mapped[str] = mapped_column(String(16))  # submission-set | detached | enveloping
    status: Mapped[str] = mapped_column(String(16))
    # XAdES 1.1.1 form with SHA-1 allowed: worth knowing when SHA-1 is phased out.
    legacy: Mapped[bool] = mapped_column(Boolean)
    # Produced by this repository's seal (CARNET_SEAL_CERT), not by the submitter.
    sealed: Mapped[bool] = mapped_column(Boolean)
    signer_subject: Mapped[str] = mapped_column(Text)
    signer_issuer: Mapped[str] = mapped_column(Text)
    signer_serial: Mapped[str] = mapped_column(String(64))
    signer_sha256: Mapped[str] = mapped_column(String(64))
    # The signer's claimed xades:SigningTime, as written (not proof of time: no timestamp yet).
    signing_time: Mapped[str | None] = mapped_column(String(40))
    purposes: Mapped[str | None] = mapped_column(Text)  # ASTM E1762 OIDs, space-separated
    verified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignatureCoverageRow(Base):
    __tablename__ = "signature_coverage"
    signature_uuid: Mapped[str] = mapped_column(ID, primary_key=True)
    document_uuid: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    document_unique_id: Mapped[str] = mapped_column(UID, index=True)
    patient_id: Mapped[str] = mapped_column(PID)


@dataclass(frozen=True)
class SignatureRecord:
    """A verified signature as the registry answers about it."""

    signature_uuid: str
    unique_id: str
    patient_id: str
    form: str
    status: str
    legacy: bool
    sealed: bool
    signer: str
    issuer: str
    serial: str
    signing_time: str | None
    purposes: tuple[str, ...]
    verified_at: datetime  # UTC
    covers: tuple[str, ...]  # entryUUIDs of the covered DocumentEntries


def insert_records(
    session: Session, signatures: list[dict[str, object]], coverage: list[dict[str, object]]
) -> None:
    if signatures:
        session.execute(insert(SignatureRow), signatures)
    if coverage:
        session.execute(insert(SignatureCoverageRow), coverage)


def _records(session: Session, signature_uuids: set[str]) -> dict[str, SignatureRecord]:
    if not signature_uuids:
        return {}
    covers: dict[str, list[str]] = {}
    for sig, doc in session.execute(
        select(SignatureCoverageRow.signature_uuid, SignatureCoverageRow.document_uuid)
        .where(SignatureCoverageRow.signature_uuid.in_(signature_uuids))
        .order_by(SignatureCoverageRow.document_uuid)
    ):
        covers.setdefault(sig, []).append(doc)
    out = {}
    for row in session.scalars(select(SignatureRow).where(SignatureRow.signature_uuid.in_(signature_uuids))):
        out[row.signature_uuid] = SignatureRecord(
            row.signature_uuid,
            row.unique_id,
            row.patient_id,
            row.form,
            row.status,
            row.legacy,
            row.sealed,
            row.signer_subject,
            row.signer_issuer,
            row.signer_serial,
            row.signing_time,
            tuple((row.purposes or "").split()),
            _utc(row.verified_at),
            tuple(covers.get(row.signature_uuid, ())),
        )
    return out


def by_signature(session: Session, signature_uuids: Iterable[str]) -> dict[str, SignatureRecord]:
    """The verified signatures among ``signature_uuids`` (signature DocumentEntry entryUUIDs)."""
    return _records(session, set(signature_uuids))


def covering(session: Session, document_uuids: Iterable[str]) -> dict[str, list[SignatureRecord]]:
    """For each DocumentEntry entryUUID, the verified signatures that cover it (oldest first)."""
    wanted = set(document_uuids)
    if not wanted:
        return {}
    pairs = session.execute(
        select(SignatureCoverageRow.document_uuid, SignatureCoverageRow.signature_uuid).where(
            SignatureCoverageRow.document_uuid.in_(wanted)
        )
    ).all()
    records = _records(session, {sig for _, sig in pairs})
    out: dict[str, list[SignatureRecord]] = {}
    for doc, sig in pairs:
        if sig in records and records[sig].status == STATUS_VALID:
            out.setdefault(doc, []).append(records[sig])
    for sigs in out.values():
        sigs.sort(key=lambda r: (r.verified_at, r.signature_uuid))
    return out


def _utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
