"""ITI-57 Update Document Set: metadata versioning, availability status, associations (XDS MU).

One SubmitObjectsRequest carries a SubmissionSet and any number of update operations
(ITI TF-2b 3.57.4.1.3), all applied in the caller's transaction or none:

* **Update DocumentEntry / Folder metadata**: the new version has a new entryUUID, the ``lid``
  and uniqueId of the object it updates, and is a member of the SubmissionSet by a HasMember
  whose ``PreviousVersion`` slot names the version it replaces. The registry gives it version
  previous+1, deprecates the previous version and, unless ``AssociationPropagation`` is ``no``,
  re-creates the previous version's folder memberships and relationships for it. Its patient may
  change only when the previous version is linked to nothing (XDSPatientIDReconciliationError).
* **UpdateAvailabilityStatus**: an association from the SubmissionSet to a DocumentEntry (the
  most recent version) or to a relationship / folder-membership association, with
  ``OriginalStatus`` and ``NewStatus``. DocumentEntries also take the DMP statuses
  ``urn:asip:ci-sis:2010:StatusType:Archived`` and ``…:Deleted`` (CI-SIS, TRE_R270).
* **SubmitAssociation**: an association from the SubmissionSet to a new association between two
  registered, non-deprecated objects of the same patient.

Errors: XDSMetadataUpdateError (not an update, unknown target, wrong status...),
XDSMetadataVersionError (no such logical object, PreviousVersion is not the latest),
XDSMetadataUpdateOperationError (malformed operation slots, two updates of one logical object),
XDSPatientIDReconciliationError, plus the ITI-42 metadata codes for the objects themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from carnet.registry import store
from carnet.registry.iti42 import RegisterOptions, assign_uuids, check_metadata, check_patient, dtm_now
from carnet.registry.schema import AssociationRow, DocumentEntryRow, FolderRow, UniqueIdRow
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, ErrorCollector, RegistryError, XDSError
from carnet.xds.model import Association, DocumentEntry, Folder, RegistryObject, Submission

UPDATE = ErrorCode.METADATA_UPDATE_ERROR
OPERATION = ErrorCode.METADATA_UPDATE_OPERATION_ERROR
VERSION = ErrorCode.METADATA_VERSION_ERROR
RECONCILE = ErrorCode.PATIENT_ID_RECONCILIATION_ERROR

# Statuses a DocumentEntry may be given by UpdateAvailabilityStatus (the DMP adds two).
DOCUMENT_STATUSES = frozenset({v.APPROVED, v.DEPRECATED, v.DMP_ARCHIVED, v.DMP_DELETED})
ASSOCIATION_STATUSES = frozenset({v.APPROVED, v.DEPRECATED})
# A version that may still be updated: current (Approved), or current and archived (DMP).
UPDATABLE = frozenset({v.APPROVED, v.DMP_ARCHIVED})


@dataclass
class UpdateResult:
    submission: Submission
    warnings: list[RegistryError]
    id_map: dict[str, str]


@dataclass
class _Plan:
    """Everything the update will write, decided before the first write."""

    insert: list[RegistryObject] = field(default_factory=list)
    resave: dict[str, RegistryObject] = field(default_factory=dict)
    touched_folders: set[str] = field(default_factory=set)
    unique_ids: dict[str, DocumentEntry] = field(default_factory=dict)


def update(session: Session, sub: Submission, options: RegisterOptions) -> UpdateResult:
    check_metadata(sub, options, require_repository_attrs=True)
    errors = ErrorCollector()
    ss = sub.submission_set
    assert ss is not None
    id_map = assign_uuids(sub)
    ss.status, ss.version, ss.logical_id = v.APPROVED, "1", ss.logical_id or ss.entry_uuid
    check_patient(session, ss.patient_id, options, errors)
    if store.lookup(session, {o.entry_uuid for o in sub.objects()}):
        errors.add(ErrorCode.REGISTRY_METADATA_ERROR, "an id of this update is already registered")
    errors.raise_if_any()

    plan = _Plan()
    versions = {o.entry_uuid for o in [*sub.documents, *sub.folders]}
    members = {
        a.target: a
        for a in sub.associations
        if a.association_type == v.HAS_MEMBER and a.source == ss.entry_uuid and a.target in versions
    }
    submitted = {a.target for a in sub.associations if a.association_type == v.SUBMIT_ASSOCIATION}
    lids: set[str] = set()
    new_versions: list[DocumentEntry | Folder] = [*sub.documents, *sub.folders]
    for obj in new_versions:
        _new_version(session, obj, members[obj.entry_uuid], lids, plan, errors)
    for a in sub.associations:
        if a.association_type == v.UPDATE_AVAILABILITY_STATUS:
            _status_update(session, a, ss.entry_uuid, ss.patient_id, plan, errors)
        elif a.association_type == v.SUBMIT_ASSOCIATION:
            _submit_association(session, a, sub, ss.entry_uuid, plan, errors)
        elif a.entry_uuid in submitted or (a.target in members and members[a.target] is a):
            continue
        else:
            errors.add(
                UPDATE,
                f"Association {a.entry_uuid} ({a.short_type}) is part of no update operation: an update "
                f"holds new versions (SubmissionSet HasMember with PreviousVersion), "
                f"UpdateAvailabilityStatus and SubmitAssociation associations",
            )
    if not (
        sub.documents
        or sub.folders
        or any(
            a.association_type in (v.UPDATE_AVAILABILITY_STATUS, v.SUBMIT_ASSOCIATION)
            for a in sub.associations
        )
    ):
        errors.add(UPDATE, "the request holds no update operation, only a SubmissionSet")
    errors.raise_if_any()

    held = store.insert_unique_id(session, ss.unique_id, store.KIND_SS, None, None)
    if held is not None:
        raise XDSError.of(
            ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
            f"SubmissionSet {ss.entry_uuid}: uniqueId '{ss.unique_id}' is already registered "
            f"(by a {held.kind})",
        )
    now = dtm_now()
    for created in plan.insert:
        if isinstance(created, Folder):
            created.last_update_time = now
    for a in sub.associations:
        a.status, a.version = v.APPROVED, "1"
    store.insert_objects(session, [ss, *plan.insert, *sub.associations], submission_set_uuid=ss.entry_uuid)
    for fid in plan.touched_folders:
        if fid not in plan.resave:
            found = store.lookup(session, {fid}).get(fid)
            if found is not None:
                plan.resave[fid] = store.load(found)
    for changed in plan.resave.values():
        if isinstance(changed, Folder) and changed.entry_uuid in plan.touched_folders:
            changed.last_update_time = now
        store.save(session, changed)
    # The uniqueId now stands for the newest version's content (a later resubmission compares to it).
    for uid, de in plan.unique_ids.items():
        session.execute(
            sql_update(UniqueIdRow).where(UniqueIdRow.value == uid).values(hash=de.hash, size=de.size)
        )
    sub.associations.extend(a for a in plan.insert if isinstance(a, Association))
    return UpdateResult(sub, [], id_map)


# --- new versions -----------------------------------------------------------------------------


def latest_version(session: Session, table: Any, logical_id: str) -> Any:
    return session.scalars(
        select(table).where(table.logical_id == logical_id).order_by(table.version.desc()).limit(1)
    ).first()


def _slot(a: Association, name: str) -> list[str] | None:
    return a.extra_slots.get(name)


def _new_version(
    session: Session,
    obj: DocumentEntry | Folder,
    member: Association,
    lids: set[str],
    plan: _Plan,
    errors: ErrorCollector,
) -> None:
    kind = "DocumentEntry" if isinstance(obj, DocumentEntry) else "Folder"
    owner = f"{kind} {obj.entry_uuid}"
    lid = obj.logical_id
    previous_version = _slot(member, "PreviousVersion")
    if not lid or lid == obj.entry_uuid or not lid.startswith("urn:uuid:"):
        errors.add(
            UPDATE,
            f"{owner}: not an update: its lid '{lid or ''}' must be the logicalId (a UUID) of a registered "
            f"{kind}, different from its own id; a first version is submitted by ITI-42",
        )
        return
    if previous_version is None:
        errors.add(
            UPDATE, f"{owner}: the SubmissionSet HasMember {member.entry_uuid} has no PreviousVersion slot"
        )
        return
    if len(previous_version) != 1 or not previous_version[0].isdigit():
        errors.add(
            OPERATION, f"{owner}: PreviousVersion must hold one version number, has {previous_version}"
        )
        return
    propagation = _slot(member, "AssociationPropagation")
    if propagation is not None and propagation not in (["yes"], ["no"]):
        errors.add(OPERATION, f"{owner}: AssociationPropagation must be 'yes' or 'no', is {propagation}")
        return
    if lid in lids:
        errors.add(OPERATION, f"{owner}: the request updates logical object {lid} more than once")
        return
    lids.add(lid)
    table = DocumentEntryRow if isinstance(obj, DocumentEntry) else FolderRow
    latest = latest_version(session, table, lid)
    if latest is None:
        errors.add(VERSION, f"{owner}: no {kind} with logicalId {lid} is registered")
        return
    if latest.status not in UPDATABLE:
        errors.add(
            UPDATE,
            f"{owner}: the latest version {latest.entry_uuid} is {latest.status.rsplit(':', 1)[-1]}, "
            f"not Approved",
        )
    if int(previous_version[0]) != latest.version:
        errors.add(
            VERSION,
            f"{owner}: PreviousVersion is {previous_version[0]}, "
            f"the latest version of {lid} is {latest.version}",
        )
    if obj.unique_id != latest.unique_id:
        errors.add(
            UPDATE, f"{owner}: uniqueId {obj.unique_id} differs from the uniqueId {latest.unique_id} of {lid}"
        )
    if isinstance(obj, DocumentEntry) and obj.object_type != latest.object_type:
        errors.add(UPDATE, f"{owner}: objectType {obj.object_type} differs from {latest.object_type}")
    if obj.patient_id != latest.patient_id and _linked(session, latest.entry_uuid):
        errors.add(
            RECONCILE,
            f"{owner}: patientId changes from '{latest.patient_id}' to '{obj.patient_id}' but version "
            f"{latest.entry_uuid} belongs to folders or relationships",
        )
    obj.version = str(latest.version + 1)
    obj.status = latest.status
    plan.insert.append(obj)
    previous = store.load(store.Existing(latest.entry_uuid, kind, latest.status, latest.patient_id, latest))
    previous.status = v.DEPRECATED
    plan.resave[previous.entry_uuid] = previous
    if isinstance(obj, DocumentEntry):
        plan.unique_ids[obj.unique_id] = obj
    if propagation != ["no"]:
        plan.insert += _propagate(session, latest.entry_uuid, obj, plan)


def _linked(session: Session, entry_uuid: str) -> bool:
    """Is the object in a relationship, in a folder, or a folder with members (not just in its SS)?"""
    for row in session.scalars(
        select(AssociationRow).where(
            or_(AssociationRow.source == entry_uuid, AssociationRow.target == entry_uuid),
            AssociationRow.status == v.APPROVED,
        )
    ):
        if row.association_type in v.DOCUMENT_RELATIONSHIPS:
            return True
        source = store.lookup(session, {row.source}).get(row.source)
        if row.association_type == v.HAS_MEMBER and source is not None and source.kind == store.KIND_FOLDER:
            return True
    return False


def _propagate(
    session: Session, previous: str, new: DocumentEntry | Folder, plan: _Plan
) -> list[RegistryObject]:
    """Association propagation (ITI TF-2b 3.57.4.1.3.3.1.5 and 3.3.3.5): the previous version's
    folder memberships, members and relationships, re-created for the new version."""
    out: list[RegistryObject] = []
    rows = session.scalars(
        select(AssociationRow).where(
            or_(AssociationRow.source == previous, AssociationRow.target == previous),
            AssociationRow.status == v.APPROVED,
        )
    ).all()
    ends = store.lookup(session, {x for r in rows for x in (r.source, r.target)})
    for row in rows:
        source, target = ends.get(row.source), ends.get(row.target)
        if source is None or target is None:
            continue
        if row.association_type == v.HAS_MEMBER:
            if isinstance(new, DocumentEntry):
                if source.kind != store.KIND_FOLDER:
                    continue  # the SubmissionSet membership stays with the version it submitted
                plan.touched_folders.add(source.id)
            elif row.source != previous or target.kind != store.KIND_DE or target.status != v.APPROVED:
                continue  # a folder version takes over the Approved DocumentEntries of the previous one
        elif row.association_type not in v.DOCUMENT_RELATIONSHIPS:
            continue
        copy = store.load(store.Existing(row.entry_uuid, store.KIND_ASSOC, row.status, None, row))
        assert isinstance(copy, Association)
        copy.entry_uuid = copy.logical_id = f"urn:uuid:{uuid.uuid4()}"
        copy.ebrim_ids = {}
        for code in copy.documentation:
            code.id = None
        copy.source = new.entry_uuid if row.source == previous else row.source
        copy.target = new.entry_uuid if row.target == previous else row.target
        copy.status = v.APPROVED
        out.append(copy)
    return out


# --- UpdateAvailabilityStatus ------------------------------------------------------------------


def _status_update(
    session: Session, a: Association, ss_id: str, patient_id: str, plan: _Plan, errors: ErrorCollector
) -> None:
    owner = f"Association {a.entry_uuid} (UpdateAvailabilityStatus)"
    if a.source != ss_id:
        errors.add(UPDATE, f"{owner}: its sourceObject must be the SubmissionSet")
        return
    original, new = _slot(a, "OriginalStatus"), _slot(a, "NewStatus")
    if original is None or new is None or len(original) != 1 or len(new) != 1:
        errors.add(UPDATE, f"{owner}: needs one OriginalStatus and one NewStatus value")
        return
    target = store.lookup(session, {a.target}).get(a.target)
    if target is None:
        errors.add(UPDATE, f"{owner}: targetObject {a.target} is not registered")
        return
    if a.target in plan.resave:
        errors.add(OPERATION, f"{owner}: {a.target} is changed by more than one operation of the request")
        return
    if target.kind == store.KIND_DE:
        latest = latest_version(session, DocumentEntryRow, target.row.logical_id)
        if latest.entry_uuid != target.id:
            errors.add(
                VERSION,
                f"{owner}: {a.target} is version {target.row.version}, not the latest ({latest.version})",
            )
            return
        if target.patient_id != patient_id:
            errors.add(
                ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                f"{owner}: DocumentEntry {a.target} belongs to '{target.patient_id}', "
                f"the SubmissionSet to '{patient_id}'",
            )
            return
        allowed = DOCUMENT_STATUSES
    elif target.kind == store.KIND_ASSOC:
        row = target.row
        ends = store.lookup(session, {row.source, row.target})
        in_folder = (
            row.association_type == v.HAS_MEMBER
            and ends.get(row.source) is not None
            and ends[row.source].kind == store.KIND_FOLDER
        )
        if not (in_folder or row.association_type in v.DOCUMENT_RELATIONSHIPS):
            errors.add(
                UPDATE,
                f"{owner}: only relationship and folder-membership associations change status, "
                f"not a {row.association_type.rsplit(':', 1)[-1]} from a "
                f"{ends[row.source].kind if row.source in ends else 'unknown object'}",
            )
            return
        allowed = ASSOCIATION_STATUSES
    else:
        errors.add(UPDATE, f"{owner}: the status of a {target.kind} cannot be updated")
        return
    if target.status != original[0]:
        errors.add(UPDATE, f"{owner}: OriginalStatus is {original[0]}, {a.target} is {target.status}")
        return
    if new[0] not in allowed:
        errors.add(UPDATE, f"{owner}: NewStatus {new[0]} is not a status of a {target.kind}")
        return
    obj = store.load(target)
    obj.status = new[0]
    plan.resave[obj.entry_uuid] = obj


# --- SubmitAssociation -----------------------------------------------------------------------------


def _submit_association(
    session: Session, sa: Association, sub: Submission, ss_id: str, plan: _Plan, errors: ErrorCollector
) -> None:
    owner = f"Association {sa.entry_uuid} (SubmitAssociation)"
    if sa.source != ss_id:
        errors.add(UPDATE, f"{owner}: its sourceObject must be the SubmissionSet")
        return
    new = next((a for a in sub.associations if a.entry_uuid == sa.target), None)
    if new is None:
        errors.add(UPDATE, f"{owner}: targetObject {sa.target} is not an association of the request")
        return
    what = f"Association {new.entry_uuid} ({new.short_type})"
    ends = store.lookup(session, {new.source, new.target})
    source, target = ends.get(new.source), ends.get(new.target)
    if source is None or target is None:
        errors.add(UPDATE, f"{what}: sourceObject and targetObject must both be registered objects")
        return
    for end in (source, target):
        if end.status == v.DEPRECATED:
            errors.add(UPDATE, f"{what}: {end.kind} {end.id} is Deprecated")
        if end.kind in (store.KIND_SS, store.KIND_ASSOC):
            errors.add(
                UPDATE, f"{what}: a submitted association links DocumentEntries and Folders, not a {end.kind}"
            )
    if errors:
        return
    if new.association_type == v.HAS_MEMBER:
        if source.kind != store.KIND_FOLDER or target.kind != store.KIND_DE:
            errors.add(UPDATE, f"{what}: a submitted HasMember goes from a Folder to a DocumentEntry")
            return
        plan.touched_folders.add(source.id)
    elif (
        new.association_type not in v.DOCUMENT_RELATIONSHIPS
        or source.kind != store.KIND_DE
        or target.kind != store.KIND_DE
    ):
        errors.add(UPDATE, f"{what}: a submitted relationship links two DocumentEntries")
        return
    if source.patient_id != target.patient_id:
        errors.add(
            RECONCILE,
            f"{what}: {source.kind} {source.id} ('{source.patient_id}') and {target.kind} {target.id} "
            f"('{target.patient_id}') belong to different patients",
        )
        return
    taken = session.scalars(
        select(AssociationRow.entry_uuid).where(
            AssociationRow.source == new.source,
            AssociationRow.target == new.target,
            AssociationRow.status == v.APPROVED,
        )
    ).first()
    if taken is not None:
        errors.add(UPDATE, f"{what}: Association {taken} already links {new.source} to {new.target}")
