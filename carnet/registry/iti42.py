"""ITI-42 Register Document Set-b: the registry's side of every submission.

``register`` runs inside the caller's write transaction, so ITI-41 can register and store its
documents in one commit. Order: rules on the message alone, symbolic ids replaced by UUIDs, then
the checks that need the registry (known patient, ids and uniqueIds not taken, targets of
associations present, Approved and of the same patient), then the writes and their side effects:
RPLC/XFRM_RPLC deprecate the original and carry its folder memberships over to the replacement,
folders get a new lastUpdateTime. Any error raises XDSError and the caller rolls everything back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.registry import patients, store
from carnet.registry.schema import AssociationRow
from carnet.registry.validate.submission import check_submission
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, ErrorCollector, RegistryError
from carnet.xds.model import Association, DocumentEntry, Folder, RegistryObject, Submission, SubmissionSet

META = ErrorCode.REGISTRY_METADATA_ERROR


@dataclass
class RegisterOptions:
    accept_any_patient: bool = False
    # ITI-42 requires hash, size and repositoryUniqueId; the repository fills them for ITI-41.
    require_repository_attrs: bool = True
    # The deployment's validation profile (carnet.profiles.validation.profile_for): rules added
    # to the XDS.b ones, run once those passed. None: plain XDS.b.
    profile: Callable[[Submission, ErrorCollector], None] | None = None


@dataclass
class RegisterResult:
    submission: Submission
    warnings: list[RegistryError]
    id_map: dict[str, str]


def dtm_now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


def assign_uuids(sub: Submission) -> dict[str, str]:
    """Replace symbolic ids (anything not urn:uuid:) by fresh UUIDs, everywhere they are used."""
    mapping: dict[str, str] = {}
    for obj in sub.objects():
        if obj.entry_uuid and not obj.entry_uuid.startswith("urn:uuid:"):
            mapping[obj.entry_uuid] = f"urn:uuid:{uuid.uuid4()}"
    for obj in sub.objects():
        obj.entry_uuid = mapping.get(obj.entry_uuid, obj.entry_uuid)
        if obj.logical_id:
            obj.logical_id = mapping.get(obj.logical_id, obj.logical_id)
    for a in sub.associations:
        a.source = mapping.get(a.source, a.source)
        a.target = mapping.get(a.target, a.target)
    return mapping


def check_metadata(sub: Submission, options: RegisterOptions, require_repository_attrs: bool) -> None:
    """The submission's own rules, then the deployment's profile: ITI-42 and ITI-57 alike."""
    errors = ErrorCollector()
    check_submission(sub, errors, require_repository_attrs=require_repository_attrs)
    errors.raise_if_any()
    if options.profile is not None:
        options.profile(sub, errors)
        errors.raise_if_any()


def register(session: Session, sub: Submission, options: RegisterOptions) -> RegisterResult:
    check_metadata(sub, options, options.require_repository_attrs)
    errors = ErrorCollector()
    ss = sub.submission_set
    assert ss is not None
    id_map = assign_uuids(sub)

    # Objects this submission creates are new versions 1, Approved, lid = id.
    for obj in sub.objects():
        obj.status = v.APPROVED
        if isinstance(obj, DocumentEntry | Folder) and not obj.logical_id:
            obj.logical_id = obj.entry_uuid
        obj.version = "1"

    check_patient(session, ss.patient_id, options, errors)

    new_ids = {o.entry_uuid for o in sub.objects()}
    taken = store.lookup(session, new_ids)
    for i in taken:
        errors.add(META, f"id '{i}' is already registered (entryUUIDs must be new)")
    errors.raise_if_any()

    referenced = {x for a in sub.associations for x in (a.source, a.target)} | set(sub.object_refs)
    existing = store.lookup(session, referenced - new_ids)
    # HasMember associations submitted earlier can be the target of a new SS HasMember.
    new_by_id: dict[str, RegistryObject] = {o.entry_uuid: o for o in sub.objects()}

    now = dtm_now()
    touched_folders: dict[str, Folder] = {}
    deprecate: list[str] = []
    carried: list[Association] = []

    for a in sub.associations:
        _check_association(
            session, a, ss.entry_uuid, ss.patient_id, new_by_id, existing, errors, touched_folders, deprecate
        )
    errors.raise_if_any()

    # Replacements: the original leaves, its folder memberships pass to the replacement.
    for a in sub.associations:
        if a.association_type in v.REPLACEMENTS:
            for fa in session.scalars(
                select(AssociationRow).where(
                    AssociationRow.target == a.target,
                    AssociationRow.association_type == v.HAS_MEMBER,
                    AssociationRow.status == v.APPROVED,
                )
            ):
                folder = _folder_of(session, fa.source, existing, touched_folders)
                if folder is None:
                    continue
                carried.append(
                    Association(
                        entry_uuid=f"urn:uuid:{uuid.uuid4()}",
                        association_type=v.HAS_MEMBER,
                        source=folder.entry_uuid,
                        target=a.source,
                        status=v.APPROVED,
                    )
                )

    for fol in sub.folders:
        fol.last_update_time = now
    for fol in touched_folders.values():
        fol.last_update_time = now

    warnings = _claim_unique_ids(session, sub, errors)
    errors.raise_if_any()

    store.insert_objects(
        session,
        [ss, *sub.documents, *sub.folders, *sub.associations, *carried],
        submission_set_uuid=ss.entry_uuid,
    )
    for target in [*deprecate, *_amendments_of(session, deprecate)]:
        found = existing.get(target) or store.lookup(session, {target})[target]
        obj = store.load(found)
        obj.status = v.DEPRECATED
        store.save(session, obj)
    for fol in touched_folders.values():
        store.save(session, fol)
    sub.associations.extend(carried)
    return RegisterResult(sub, warnings, id_map)


def _amendments_of(session: Session, replaced: list[str]) -> list[str]:
    """Approved APND and XFRM DocumentEntries of replaced ones: they leave with the document they
    amend (CP-ITI-117, NIST 12022)."""
    if not replaced:
        return []
    sources = session.scalars(
        select(AssociationRow.source).where(
            AssociationRow.target.in_(replaced),
            AssociationRow.association_type.in_([v.APND, v.XFRM]),
            AssociationRow.status == v.APPROVED,
        )
    )
    found = store.lookup(session, set(sources))
    return [i for i, e in found.items() if e.kind == store.KIND_DE and e.status == v.APPROVED]


def check_patient(
    session: Session, patient_id: str, options: RegisterOptions, errors: ErrorCollector
) -> None:
    row = patients.get(session, patient_id)
    if row is not None and row.merged_into is not None:
        errors.add(
            ErrorCode.UNKNOWN_PATIENT_ID,
            f"patientId '{patient_id}' was merged into '{row.merged_into}' and is no longer valid",
        )
    elif row is None and not options.accept_any_patient:
        errors.add(
            ErrorCode.UNKNOWN_PATIENT_ID,
            f"patientId '{patient_id}' is not known to this registry (no ITI-8 Patient Identity Feed)",
        )


def _folder_of(
    session: Session, fid: str, existing: dict[str, store.Existing], touched: dict[str, Folder]
) -> Folder | None:
    if fid in touched:
        return touched[fid]
    found = existing.get(fid) or store.lookup(session, {fid}).get(fid)
    if found is None or found.kind != store.KIND_FOLDER:
        return None
    existing[fid] = found
    folder = store.load(found)
    assert isinstance(folder, Folder)
    touched[fid] = folder
    return folder


def _check_association(
    session: Session,
    a: Association,
    ss_id: str,
    patient_id: str,
    new: dict[str, RegistryObject],
    existing: dict[str, store.Existing],
    errors: ErrorCollector,
    touched_folders: dict[str, Folder],
    deprecate: list[str],
) -> None:
    owner = f"Association {a.entry_uuid} ({a.short_type})"

    def kind(i: str) -> str | None:
        if i in new:
            return store.kind_of(new[i])
        return existing[i].kind if i in existing else None

    def patient(i: str) -> str | None:
        if i in new:
            return getattr(new[i], "patient_id", None)
        return existing[i].patient_id if i in existing else None

    src_kind, tgt_kind = kind(a.source), kind(a.target)
    if src_kind is None:
        errors.add(
            META, f"{owner}: sourceObject '{a.source}' is neither in the submission nor in the registry"
        )
        return
    if tgt_kind is None:
        errors.add(
            META, f"{owner}: targetObject '{a.target}' is neither in the submission nor in the registry"
        )
        return

    if a.association_type == v.HAS_MEMBER:
        if a.documentation:
            # The documentation code explains a relationship; a membership has none (NIST 12370).
            errors.add(META, f"{owner}: associationDocumentation belongs on relationship associations only")
            return
        if a.source == ss_id:
            if tgt_kind == store.KIND_SS:
                errors.add(META, f"{owner}: a SubmissionSet cannot be a member of a SubmissionSet")
            elif tgt_kind == store.KIND_DE and a.target not in new and a.submission_set_status != "Reference":
                errors.add(
                    META,
                    f"{owner}: an existing DocumentEntry joins a SubmissionSet by Reference "
                    f"(SubmissionSetStatus=Reference)",
                )
            if (
                a.target not in new
                and tgt_kind in (store.KIND_DE, store.KIND_FOLDER)
                and patient(a.target) != patient_id
            ):
                errors.add(
                    ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                    f"{owner}: {tgt_kind} {a.target} belongs to patient '{patient(a.target)}', "
                    f"the SubmissionSet to '{patient_id}'",
                )
            return
        if src_kind == store.KIND_FOLDER:
            if tgt_kind != store.KIND_DE:
                errors.add(META, f"{owner}: a Folder's members are DocumentEntries, not {tgt_kind}")
                return
            if patient(a.source) != patient(a.target):
                errors.add(
                    ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                    f"{owner}: Folder {a.source} (patient '{patient(a.source)}') cannot hold "
                    f"DocumentEntry {a.target} (patient '{patient(a.target)}')",
                )
                return
            if a.source in existing:
                if existing[a.source].status != v.APPROVED:
                    errors.add(META, f"{owner}: Folder {a.source} is not Approved")
                    return
                folder = _folder_of(session, a.source, existing, touched_folders)
                if folder is not None and folder.patient_id != patient_id:
                    errors.add(
                        ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                        f"{owner}: Folder {a.source} belongs to patient '{folder.patient_id}', "
                        f"the SubmissionSet to '{patient_id}'",
                    )
            # TF-3 4.2.2.1.4: a new folder membership is itself a member of the SubmissionSet.
            if not any(
                b.association_type == v.HAS_MEMBER and b.source == ss_id and b.target == a.entry_uuid
                for b in new.values()
                if isinstance(b, Association)
            ):
                errors.add(META, f"{owner}: a Folder membership must itself be a member of the SubmissionSet")
            return
        errors.add(
            META, f"{owner}: HasMember must start at the SubmissionSet or at a Folder, not a {src_kind}"
        )
        return

    if a.association_type in v.DOCUMENT_RELATIONSHIPS:
        if a.association_type == v.SIGNS:
            if src_kind != store.KIND_DE:
                errors.add(META, f"{owner}: the source of a signs association is a signature DocumentEntry")
            return
        if src_kind != store.KIND_DE or a.source not in new:
            errors.add(
                META,
                f"{owner}: the source of a {a.short_type} association must be a DocumentEntry "
                f"of this submission",
            )
            return
        if tgt_kind != store.KIND_DE:
            errors.add(META, f"{owner}: the target of a {a.short_type} association must be a DocumentEntry")
            return
        if a.target in new:
            errors.add(META, f"{owner}: the target of {a.short_type} must already be registered")
            return
        target = existing[a.target]
        if target.status != v.APPROVED:
            errors.add(
                ErrorCode.DEPRECATED_DOCUMENT,
                f"{owner}: target DocumentEntry {a.target} is {target.status.rsplit(':', 1)[-1]}, "
                f"not Approved",
            )
            return
        if target.patient_id != patient_id:
            errors.add(
                ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                f"{owner}: target DocumentEntry {a.target} belongs to patient '{target.patient_id}', "
                f"the submission to '{patient_id}'",
            )
            return
        if a.association_type in v.REPLACEMENTS:
            if a.target in deprecate:
                errors.add(META, f"{owner}: DocumentEntry {a.target} is replaced twice in one submission")
            deprecate.append(a.target)
        return
    errors.add(
        META, f"{owner}: association type {a.association_type} is not accepted by Register Document Set-b"
    )


def _claim_unique_ids(session: Session, sub: Submission, errors: ErrorCollector) -> list[RegistryError]:
    ss = sub.submission_set
    assert ss is not None
    packages: list[tuple[SubmissionSet | Folder, str]] = [(ss, store.KIND_SS)]
    packages += [(f, store.KIND_FOLDER) for f in sub.folders]
    for obj, kind in packages:
        held = store.insert_unique_id(session, obj.unique_id, kind, None, None)
        if held is not None:
            errors.add(
                ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
                f"{kind} {obj.entry_uuid}: uniqueId '{obj.unique_id}' is already registered "
                f"(by a {held.kind})",
            )
    for de in sub.documents:
        held = store.insert_unique_id(session, de.unique_id, store.KIND_DE, de.hash, de.size)
        if held is None:
            continue
        owner = f"DocumentEntry {de.entry_uuid}"
        if held.kind != store.KIND_DE:
            errors.add(
                ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
                f"{owner}: uniqueId '{de.unique_id}' is already registered by a {held.kind}",
            )
        elif (held.hash or "").lower() != (de.hash or "").lower():
            errors.add(
                ErrorCode.NON_IDENTICAL_HASH,
                f"{owner}: uniqueId '{de.unique_id}' is already registered with hash {held.hash}, "
                f"this submission says {de.hash}",
            )
        elif held.size != de.size:
            errors.add(
                ErrorCode.NON_IDENTICAL_SIZE,
                f"{owner}: uniqueId '{de.unique_id}' is already registered with size {held.size}, "
                f"this submission says {de.size}",
            )
    return []
