"""Registry tables: flattened objects, child tables for multi-valued codes, stored ebRIM fragments.

One row per DocumentEntry with its single-valued attributes as columns (the FindDocuments path
is one index range scan on (patient_id, status, creation_time)); event and confidentiality codes,
authors and referenceIdList live in child tables keyed by the object's entryUUID; the ebRIM
fragment is what LeafClass queries concatenate. Every patient-scoped row carries patient_id so the
tables can be distributed by patient. Uniqueness is the database's job: UNIQUE/PK constraints on
uniqueId and entryUUID, never check-then-insert.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(64)  # urn:uuid:... is 45 characters
PID = String(256)  # CX patient id
UID = String(256)  # uniqueId: OID^extension, at most 128 by ITI TF-3; leave room
CODE = String(256)
DTM = String(14)  # DTM padded to 14 digits: sortable as text

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Patient(Base):
    """A patient known through ITI-8 (or the CLI): the registry refuses documents for others."""

    __tablename__ = "patient"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(PID, unique=True)
    # ITI-8 A40: a merged (subsumed) id answers nothing and accepts nothing; queries on the
    # surviving id also find what was filed under the ids merged into it.
    merged_into: Mapped[str | None] = mapped_column(PID, index=True)
    family_name: Mapped[str | None] = mapped_column(String(256))
    given_name: Mapped[str | None] = mapped_column(String(256))
    birth_date: Mapped[str | None] = mapped_column(String(16))
    sex: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)


class RegistryObjectRow(Base):
    """Directory of every top-level object's id: entryUUIDs are unique across kinds."""

    __tablename__ = "registry_object"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))


class UniqueIdRow(Base):
    """Every uniqueId ever registered, across kinds. The PK decides races between submissions.

    A DocumentEntry uniqueId may be registered again with the same hash and size (the same
    document submitted twice, NIST 12004) and, with Metadata Update, by later versions.
    """

    __tablename__ = "unique_id"
    value: Mapped[str] = mapped_column(UID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str | None] = mapped_column(String(40))
    size: Mapped[int | None] = mapped_column(BigInteger)


class SubmissionSetRow(Base):
    __tablename__ = "submission_set"
    entry_uuid: Mapped[str] = mapped_column(ID, primary_key=True)
    unique_id: Mapped[str] = mapped_column(UID, index=True)
    patient_id: Mapped[str] = mapped_column(PID)
    status: Mapped[str] = mapped_column(String(64))
    submission_time: Mapped[str | None] = mapped_column(DTM)
    source_id: Mapped[str | None] = mapped_column(UID)
    content_type_code: Mapped[str | None] = mapped_column(CODE)
    content_type_scheme: Mapped[str | None] = mapped_column(CODE)
    fragment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    __table_args__ = (Index("ix_submission_set_patient", "patient_id", "status", "submission_time"),)


class DocumentEntryRow(Base):
    __tablename__ = "document_entry"
    entry_uuid: Mapped[str] = mapped_column(ID, primary_key=True)
    logical_id: Mapped[str] = mapped_column(ID)
    version: Mapped[int] = mapped_column(Integer, default=1)
    unique_id: Mapped[str] = mapped_column(UID, index=True)
    patient_id: Mapped[str] = mapped_column(PID)
    status: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(ID)
    creation_time: Mapped[str | None] = mapped_column(DTM)
    service_start_time: Mapped[str | None] = mapped_column(DTM)
    service_stop_time: Mapped[str | None] = mapped_column(DTM)
    class_code: Mapped[str | None] = mapped_column(CODE)
    class_scheme: Mapped[str | None] = mapped_column(CODE)
    type_code: Mapped[str | None] = mapped_column(CODE)
    type_scheme: Mapped[str | None] = mapped_column(CODE)
    format_code: Mapped[str | None] = mapped_column(CODE)
    format_scheme: Mapped[str | None] = mapped_column(CODE)
    hcft_code: Mapped[str | None] = mapped_column(CODE)
    hcft_scheme: Mapped[str | None] = mapped_column(CODE)
    practice_code: Mapped[str | None] = mapped_column(CODE)
    practice_scheme: Mapped[str | None] = mapped_column(CODE)
    mime_type: Mapped[str | None] = mapped_column(String(128))
    hash: Mapped[str | None] = mapped_column(String(40))
    size: Mapped[int | None] = mapped_column(BigInteger)
    repository_unique_id: Mapped[str | None] = mapped_column(UID)
    submission_set_uuid: Mapped[str | None] = mapped_column(ID)
    fragment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    # Last change of the row (status change, re-render): FHIR meta.lastUpdated and _lastUpdated.
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)
    __table_args__ = (
        Index("ix_document_entry_patient", "patient_id", "status", "creation_time"),
        Index("uq_document_entry_version", "logical_id", "version", unique=True),
    )


class FolderRow(Base):
    __tablename__ = "folder"
    entry_uuid: Mapped[str] = mapped_column(ID, primary_key=True)
    logical_id: Mapped[str] = mapped_column(ID)
    version: Mapped[int] = mapped_column(Integer, default=1)
    unique_id: Mapped[str] = mapped_column(UID, index=True)
    patient_id: Mapped[str] = mapped_column(PID)
    status: Mapped[str] = mapped_column(String(64))
    last_update_time: Mapped[str | None] = mapped_column(DTM)
    fragment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    __table_args__ = (
        Index("ix_folder_patient", "patient_id", "status", "last_update_time"),
        Index("uq_folder_version", "logical_id", "version", unique=True),
    )


class AssociationRow(Base):
    __tablename__ = "association"
    entry_uuid: Mapped[str] = mapped_column(ID, primary_key=True)
    association_type: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(ID)
    target: Mapped[str] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(64))
    fragment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    __table_args__ = (
        Index("ix_association_source", "source", "association_type"),
        Index("ix_association_target", "target", "association_type"),
    )


class CodeRow(Base):
    """Multi-valued codes: DocumentEntry eventCodeList ('event') and confidentialityCode ('conf'),
    Folder codeList ('folder')."""

    __tablename__ = "object_code"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    object_uuid: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(8))
    code: Mapped[str] = mapped_column(CODE)
    scheme: Mapped[str] = mapped_column(CODE)
    __table_args__ = (Index("ix_object_code_object", "object_uuid", "kind"),)


class AuthorRow(Base):
    """authorPerson of DocumentEntries and SubmissionSets, for AuthorPerson (LIKE) parameters."""

    __tablename__ = "object_author"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    object_uuid: Mapped[str] = mapped_column(ID, index=True)
    person: Mapped[str] = mapped_column(String(512))


class ReferenceIdRow(Base):
    """DocumentEntry referenceIdList values (CXi), for FindDocumentsByReferenceId."""

    __tablename__ = "reference_id"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_uuid: Mapped[str] = mapped_column(ID, index=True)
    value: Mapped[str] = mapped_column(String(512), index=True)


class StoredDocumentRow(Base):
    """Repository side: a stored payload, by document uniqueId; bytes live in the blob store."""

    __tablename__ = "stored_document"
    unique_id: Mapped[str] = mapped_column(UID, primary_key=True)
    repository_unique_id: Mapped[str] = mapped_column(UID)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    sha1: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class AuditEventRow(Base):
    """One audit record per transaction (ATNA content); the API never updates or deletes them."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)
    transaction: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(1))
    outcome: Mapped[int] = mapped_column(Integer)
    principal: Mapped[str] = mapped_column(Text)
    access_mode: Mapped[str | None] = mapped_column(String(32))
    source_address: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(PID, index=True)
    objects: Mapped[str] = mapped_column(Text, default="[]")
    detail: Mapped[str | None] = mapped_column(Text)


# The DMP's own tables share this metadata (one Alembic environment); imported last because they
# build on Base and the column types above.
from carnet.dmp import models as _dmp_models  # noqa: E402,F401
from carnet.security import replay as _xua_replay  # noqa: E402,F401 - the XUA replay cache
from carnet.signature import records as _signature_records  # noqa: E402,F401 - verified signatures
