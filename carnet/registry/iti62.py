"""ITI-62 Remove Metadata: ``lcm:RemoveObjectsRequest`` deletes registry objects, all or none.

The request lists the entryUUIDs to delete in ``rim:ObjectRefList`` (ITI TF-2b 3.62.4.1.3).
Removal must leave the metadata model whole:

* every id must name a registered object — else ``UnresolvedReferenceException``;
* no association that stays may reference a removed object (a DocumentEntry still in a
  SubmissionSet, an association still counted by another one) — else ``ReferencesExistException``;
* an object that stays must not lose its last association (a SubmissionSet emptied of its
  contents, a DocumentEntry taken out of its only SubmissionSet) — else
  ``XDSUnreferencedObjectException``.

Rows go with their child rows (codes, authors, referenceIdList) and directory entries; a uniqueId
is released once no remaining version holds it. Documents in a repository are not touched: that
is ITI-86.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from carnet.registry import store
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
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, ErrorCollector, XDSError
from carnet.xml import qname


@dataclass
class RemoveRequest:
    ids: list[str]


def parse_request(el: etree._Element) -> RemoveRequest:
    if el.tag != qname(v.LCM, "RemoveObjectsRequest"):
        raise XDSError.of(ErrorCode.REGISTRY_ERROR, f"expected lcm:RemoveObjectsRequest, got {el.tag}")
    refs = el.find(qname(v.RIM, "ObjectRefList"))
    ids = [ref.get("id") or "" for ref in (refs.iter(qname(v.RIM, "ObjectRef")) if refs is not None else [])]
    if not ids:
        raise XDSError.of(ErrorCode.REGISTRY_ERROR, "RemoveObjectsRequest lists no ObjectRef to remove")
    if el.find(qname(v.RIM, "AdhocQuery")) is not None:
        # ebRS allows selecting by query; ITI-62 restricts the request to an ObjectRefList.
        raise XDSError.of(
            ErrorCode.REGISTRY_ERROR, "ITI-62 removes objects named by ObjectRef, not by AdhocQuery"
        )
    return RemoveRequest(list(dict.fromkeys(ids)))


def named(session: Session, request: RemoveRequest) -> dict[str, store.Existing]:
    """The stored objects the request names (read once: the decision, the audit and the removal
    all work from them)."""
    return store.lookup(session, set(request.ids))


def patients_of(found: dict[str, store.Existing]) -> set[str]:
    """The patients whose metadata the request would remove (for the policy decision and audit)."""
    return {e.patient_id for e in found.values() if e.patient_id}


def documents_of(found: dict[str, store.Existing]) -> list[tuple[str | None, str]]:
    """(patient, uniqueId) of the DocumentEntries the request names: removing a document's metadata
    is decided per document too (the DMP: only its author deletes it)."""
    return [(e.patient_id, e.row.unique_id) for e in found.values() if e.kind == store.KIND_DE]


def remove(
    session: Session, request: RemoveRequest, found: dict[str, store.Existing]
) -> dict[str, store.Existing]:
    """Check and delete the objects ``named`` found; returns them (for the audit record)."""
    errors = ErrorCollector()
    ids = set(request.ids)
    for i in request.ids:
        if i not in found:
            errors.add(ErrorCode.UNRESOLVED_REFERENCE, f"ObjectRef {i} names no object of this registry")
    errors.raise_if_any()

    links = session.scalars(
        select(AssociationRow).where(or_(AssociationRow.source.in_(ids), AssociationRow.target.in_(ids)))
    ).all()
    removed_links = [a for a in links if a.entry_uuid in ids]
    for a in links:
        if a.entry_uuid in ids:
            continue
        for end in (a.source, a.target):
            if end in ids:
                errors.add(
                    ErrorCode.REFERENCES_EXIST,
                    f"{found[end].kind} {end} is still referenced by Association {a.entry_uuid} "
                    f"({a.association_type.rsplit(':', 1)[-1]}), which this request does not remove",
                )
    survivors = {end for a in removed_links for end in (a.source, a.target) if end not in ids}
    if survivors:
        still = {
            end
            for row in session.execute(
                select(AssociationRow.source, AssociationRow.target).where(
                    or_(AssociationRow.source.in_(survivors), AssociationRow.target.in_(survivors)),
                    AssociationRow.entry_uuid.not_in(ids),
                )
            )
            for end in row
        }
        for end in sorted(survivors - still):
            errors.add(
                ErrorCode.UNREFERENCED_OBJECT,
                f"object {end} would be left with no association: remove it too, or keep its associations",
            )
    errors.raise_if_any()
    _delete(session, found)
    return found


def _delete(session: Session, found: dict[str, store.Existing]) -> None:
    by_kind: dict[str, list[str]] = {}
    for i, existing in found.items():
        by_kind.setdefault(existing.kind, []).append(i)
    tables: dict[str, Any] = {
        store.KIND_DE: DocumentEntryRow,
        store.KIND_SS: SubmissionSetRow,
        store.KIND_FOLDER: FolderRow,
        store.KIND_ASSOC: AssociationRow,
    }
    unique_ids = {
        found[i].row.unique_id
        for k in (store.KIND_DE, store.KIND_SS, store.KIND_FOLDER)
        for i in by_kind.get(k, [])
    }
    ids = list(found)
    session.execute(delete(CodeRow).where(CodeRow.object_uuid.in_(ids)))
    session.execute(delete(AuthorRow).where(AuthorRow.object_uuid.in_(ids)))
    session.execute(delete(ReferenceIdRow).where(ReferenceIdRow.entry_uuid.in_(ids)))
    for kind, kids in by_kind.items():
        table = tables[kind]
        session.execute(delete(table).where(table.entry_uuid.in_(kids)))
    session.execute(delete(RegistryObjectRow).where(RegistryObjectRow.id.in_(ids)))
    # A uniqueId stays claimed while any version of its object remains (Metadata Update).
    held = set()
    for table in (DocumentEntryRow, SubmissionSetRow, FolderRow):
        held |= set(session.scalars(select(table.unique_id).where(table.unique_id.in_(unique_ids))))
    free = unique_ids - held
    if free:
        session.execute(delete(UniqueIdRow).where(UniqueIdRow.value.in_(free)))
