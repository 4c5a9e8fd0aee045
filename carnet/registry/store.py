"""Writing and reading registry objects: model <-> rows, in the caller's transaction.

The stored ebRIM fragment is the full truth of an object; the columns index it. A change of
status or of a folder's lastUpdateTime re-renders the fragment, so queries never patch text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from carnet.registry.schema import (
    AssociationRow,
    AuthorRow,
    CodeRow,
    DocumentEntryRow,
    FolderRow,
    ReferenceIdRow,
    RegistryObjectRow,
    SubmissionSetRow,
    UniqueIdRow,
)
from carnet.registry.validate.datatypes import dtm_to_key
from carnet.xds import ebrim
from carnet.xds.model import Association, DocumentEntry, Folder, RegistryObject, SubmissionSet

KIND_DE = "DocumentEntry"
KIND_SS = "SubmissionSet"
KIND_FOLDER = "Folder"
KIND_ASSOC = "Association"

TABLES: dict[str, Any] = {
    KIND_DE: DocumentEntryRow,
    KIND_SS: SubmissionSetRow,
    KIND_FOLDER: FolderRow,
    KIND_ASSOC: AssociationRow,
}


def kind_of(obj: RegistryObject) -> str:
    if isinstance(obj, DocumentEntry):
        return KIND_DE
    if isinstance(obj, SubmissionSet):
        return KIND_SS
    if isinstance(obj, Folder):
        return KIND_FOLDER
    return KIND_ASSOC


def _key(value: str | None) -> str | None:
    return dtm_to_key(value) if value else None


def _version(obj: RegistryObject) -> int:
    try:
        return int(obj.version)
    except ValueError:
        return 1


@dataclass
class Existing:
    """A registry object already stored, as the submission rules need to see it."""

    id: str
    kind: str
    status: str
    patient_id: str | None
    row: Any


def lookup(session: Session, ids: set[str]) -> dict[str, Existing]:
    """Stored objects among ``ids``, with kind, status and patient."""
    if not ids:
        return {}
    kinds = dict(
        session.execute(
            select(RegistryObjectRow.id, RegistryObjectRow.kind).where(RegistryObjectRow.id.in_(ids))
        ).all()
    )
    out: dict[str, Existing] = {}
    by_kind: dict[str, list[str]] = {}
    for i, k in kinds.items():
        by_kind.setdefault(k, []).append(i)
    for kind, kids in by_kind.items():
        table = TABLES[kind]
        for row in session.scalars(select(table).where(table.entry_uuid.in_(kids))):
            out[row.entry_uuid] = Existing(
                row.entry_uuid, kind, row.status, getattr(row, "patient_id", None), row
            )
    return out


def insert_unique_id(
    session: Session, value: str, kind: str, hash_: str | None, size: int | None
) -> UniqueIdRow | None:
    """Claim ``value``; return the row that already held it if another object did (race-safe)."""
    table: Table = UniqueIdRow.__table__  # type: ignore[assignment]
    dialect = session.get_bind().dialect.name
    values = {"value": value, "kind": kind, "hash": hash_, "size": size}
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=["value"])
    else:
        stmt = sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=["value"])
    # RETURNING tells reliably whether this statement inserted the row (rowcount does not, with
    # every driver); if it did not, the row another submission committed is what we compare to.
    if session.execute(stmt.returning(table.c.value)).first() is not None:
        return None
    return session.get(UniqueIdRow, value)


def row_values(obj: RegistryObject, fragment: str) -> dict[str, Any]:
    if isinstance(obj, DocumentEntry):

        def code(c: Any) -> tuple[str | None, str | None]:
            return (c.code, c.scheme) if c is not None else (None, None)

        cc, cs = code(obj.class_code)
        tc, ts = code(obj.type_code)
        fc, fs = code(obj.format_code)
        hc, hs = code(obj.healthcare_facility_type_code)
        pc, ps = code(obj.practice_setting_code)
        return {
            "entry_uuid": obj.entry_uuid,
            "logical_id": obj.logical_id or obj.entry_uuid,
            "version": _version(obj),
            "unique_id": obj.unique_id,
            "patient_id": obj.patient_id,
            "status": obj.status,
            "object_type": obj.object_type,
            "creation_time": _key(obj.creation_time),
            "service_start_time": _key(obj.service_start_time),
            "service_stop_time": _key(obj.service_stop_time),
            "class_code": cc,
            "class_scheme": cs,
            "type_code": tc,
            "type_scheme": ts,
            "format_code": fc,
            "format_scheme": fs,
            "hcft_code": hc,
            "hcft_scheme": hs,
            "practice_code": pc,
            "practice_scheme": ps,
            "mime_type": obj.mime_type,
            "hash": obj.hash,
            "size": obj.size,
            "repository_unique_id": obj.repository_unique_id,
            "fragment": fragment,
        }
    if isinstance(obj, SubmissionSet):
        ct = obj.content_type_code
        return {
            "entry_uuid": obj.entry_uuid,
            "unique_id": obj.unique_id,
            "patient_id": obj.patient_id,
            "status": obj.status,
            "submission_time": _key(obj.submission_time),
            "source_id": obj.source_id,
            "content_type_code": ct.code if ct else None,
            "content_type_scheme": ct.scheme if ct else None,
            "fragment": fragment,
        }
    if isinstance(obj, Folder):
        return {
            "entry_uuid": obj.entry_uuid,
            "logical_id": obj.logical_id or obj.entry_uuid,
            "version": _version(obj),
            "unique_id": obj.unique_id,
            "patient_id": obj.patient_id,
            "status": obj.status,
            "last_update_time": _key(obj.last_update_time),
            "fragment": fragment,
        }
    assert isinstance(obj, Association)
    return {
        "entry_uuid": obj.entry_uuid,
        "association_type": obj.association_type,
        "source": obj.source,
        "target": obj.target,
        "status": obj.status,
        "fragment": fragment,
    }


def insert_objects(
    session: Session, objects: list[RegistryObject], submission_set_uuid: str | None = None
) -> None:
    """Insert new objects with their child rows, batched per table."""
    directory: list[dict[str, Any]] = []
    rows: dict[str, list[dict[str, Any]]] = {}
    codes: list[dict[str, Any]] = []
    authors: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    for obj in objects:
        kind = kind_of(obj)
        directory.append({"id": obj.entry_uuid, "kind": kind})
        values = row_values(obj, ebrim.to_fragment(obj))
        if kind == KIND_DE:
            values["submission_set_uuid"] = submission_set_uuid
        rows.setdefault(kind, []).append(values)
        if isinstance(obj, DocumentEntry):
            codes += [
                {"object_uuid": obj.entry_uuid, "kind": "event", "code": c.code, "scheme": c.scheme}
                for c in obj.event_codes
            ]
            codes += [
                {"object_uuid": obj.entry_uuid, "kind": "conf", "code": c.code, "scheme": c.scheme}
                for c in obj.confidentiality_codes
            ]
            refs += [{"entry_uuid": obj.entry_uuid, "value": r} for r in obj.reference_ids]
        if isinstance(obj, DocumentEntry | SubmissionSet):
            authors += [{"object_uuid": obj.entry_uuid, "person": a.person} for a in obj.authors if a.person]
        if isinstance(obj, Folder):
            codes += [
                {"object_uuid": obj.entry_uuid, "kind": "folder", "code": c.code, "scheme": c.scheme}
                for c in obj.codes
            ]
    # Core inserts (executemany on the tables), not ORM bulk inserts: a third of the CPU cost.
    session.execute(insert(_table(RegistryObjectRow)), directory)
    for kind in (KIND_SS, KIND_DE, KIND_FOLDER, KIND_ASSOC):
        if rows.get(kind):
            session.execute(insert(_table(TABLES[kind])), rows[kind])
    for model, batch in ((CodeRow, codes), (AuthorRow, authors), (ReferenceIdRow, refs)):
        if batch:
            session.execute(insert(_table(model)), batch)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def load(existing: Existing) -> RegistryObject:
    return ebrim.from_fragment(existing.row.fragment)


def save(session: Session, obj: RegistryObject) -> None:
    """Rewrite an existing object's row and fragment after a change of status or time."""
    kind = kind_of(obj)
    table = TABLES[kind]
    values = row_values(obj, ebrim.to_fragment(obj))
    values.pop("entry_uuid")
    session.execute(update(table).where(table.entry_uuid == obj.entry_uuid).values(**values))
