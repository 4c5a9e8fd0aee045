"""Metadata rules of a Register Document Set-b submission (ITI TF-3 §4.2.3, §4.3.1; ITI TF-2 3.42.4).

``check_submission`` checks what the message alone can show: required attributes of each object,
HL7 datatypes, uniqueIds unique within the message, every new object a member of the
SubmissionSet, one patient across the submission. What needs the registry's contents (known
patient, existing targets, duplicate uniqueIds) is checked by ``carnet.registry.iti42`` inside the
transaction. Each rule raises the IHE code the TF names, with a codeContext naming object and rule.
"""

from __future__ import annotations

from collections.abc import Callable

from carnet.registry.validate import datatypes as dt
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, ErrorCollector
from carnet.xds.model import Association, Author, Code, DocumentEntry, Folder, Submission, SubmissionSet

META = ErrorCode.REGISTRY_METADATA_ERROR


def _check(
    errors: ErrorCollector,
    owner: str,
    what: str,
    value: str | None,
    checker: Callable[[str], str | None],
    required: bool = True,
    code: ErrorCode = META,
) -> None:
    if value is None or value == "":
        if required:
            errors.add(code, f"{owner}: {what} is required")
        return
    reason = checker(value)
    if reason:
        errors.add(code, f"{owner}: {what} '{value}' is invalid: {reason}")


def _check_code(
    errors: ErrorCollector, owner: str, what: str, code: Code | None, required: bool = True
) -> None:
    if code is None:
        if required:
            errors.add(META, f"{owner}: {what} is required")
        return
    if not code.code.strip() or not code.scheme.strip():
        errors.add(META, f"{owner}: {what} needs both a code and a codingScheme")


def _check_authors(errors: ErrorCollector, owner: str, authors: list[Author]) -> None:
    for i, a in enumerate(authors, 1):
        who = f"{owner} author #{i}"
        if not (a.person or a.institutions or a.roles or a.specialties or a.telecoms):
            errors.add(
                META,
                f"{who}: an author needs at least one of authorPerson, authorInstitution, "
                f"authorRole, authorSpecialty, authorTelecommunication",
            )
        _check(errors, who, "authorPerson", a.person, dt.check_xcn, required=False)
        for inst in a.institutions:
            _check(errors, who, "authorInstitution", inst, dt.check_xon)
        for tel in a.telecoms:
            _check(errors, who, "authorTelecommunication", tel, dt.check_xtn)


def _check_id(errors: ErrorCollector, owner: str, entry_uuid: str) -> None:
    if not entry_uuid:
        errors.add(META, f"{owner}: the object has no id (entryUUID)")
    elif entry_uuid.startswith("urn:uuid:"):
        _check(errors, owner, "entryUUID", entry_uuid, dt.check_uuid)


def check_document_entry(
    de: DocumentEntry, errors: ErrorCollector, *, require_repository_attrs: bool
) -> None:
    owner = f"DocumentEntry {de.entry_uuid}"
    _check_id(errors, owner, de.entry_uuid)
    if de.object_type not in (v.DE_STABLE, v.DE_ON_DEMAND):
        errors.add(
            META,
            f"{owner}: objectType '{de.object_type}' is neither Stable ({v.DE_STABLE}) "
            f"nor On-Demand ({v.DE_ON_DEMAND})",
        )
    _check(errors, owner, "mimeType", de.mime_type, dt.check_mime_type)
    _check(errors, owner, "XDSDocumentEntry.patientId", de.patient_id, dt.check_cx)
    _check(errors, owner, "XDSDocumentEntry.uniqueId", de.unique_id, dt.check_document_unique_id)
    _check(errors, owner, "sourcePatientId", de.source_patient_id, dt.check_cx)
    _check(errors, owner, "languageCode", de.language_code, dt.check_language_code)
    _check(errors, owner, "creationTime", de.creation_time, dt.check_dtm, required=not de.on_demand)
    _check(errors, owner, "serviceStartTime", de.service_start_time, dt.check_dtm, required=False)
    _check(errors, owner, "serviceStopTime", de.service_stop_time, dt.check_dtm, required=False)
    if (
        de.service_start_time
        and de.service_stop_time
        and not dt.check_dtm(de.service_start_time)
        and not dt.check_dtm(de.service_stop_time)
        and dt.dtm_to_key(de.service_stop_time) < dt.dtm_to_key(de.service_start_time)
    ):
        errors.add(META, f"{owner}: serviceStopTime is before serviceStartTime")
    _check(errors, owner, "legalAuthenticator", de.legal_authenticator, dt.check_xcn, required=False)
    for info in de.source_patient_info:
        _check(errors, owner, "sourcePatientInfo", info, dt.check_source_patient_info)
    for ref in de.reference_ids:
        _check(errors, owner, "referenceIdList", ref, dt.check_cxi)
    _check_code(errors, owner, "classCode", de.class_code)
    _check_code(errors, owner, "typeCode", de.type_code)
    _check_code(errors, owner, "formatCode", de.format_code)
    _check_code(errors, owner, "healthcareFacilityTypeCode", de.healthcare_facility_type_code)
    _check_code(errors, owner, "practiceSettingCode", de.practice_setting_code)
    if not de.confidentiality_codes:
        errors.add(META, f"{owner}: confidentialityCode is required (at least one)")
    for code in de.confidentiality_codes:
        _check_code(errors, owner, "confidentialityCode", code)
    for code in de.event_codes:
        _check_code(errors, owner, "eventCodeList", code)
    _check_authors(errors, owner, de.authors)
    if de.on_demand:
        if de.hash is not None or de.size is not None:
            errors.add(META, f"{owner}: an On-Demand DocumentEntry carries neither hash nor size")
    else:
        _check(errors, owner, "hash", de.hash, dt.check_hash, required=require_repository_attrs)
        if de.size is None and require_repository_attrs:
            errors.add(META, f"{owner}: size is required")
    _check(
        errors,
        owner,
        "repositoryUniqueId",
        de.repository_unique_id,
        dt.check_oid,
        required=require_repository_attrs,
    )


def check_submission_set(ss: SubmissionSet, errors: ErrorCollector) -> None:
    owner = f"SubmissionSet {ss.entry_uuid}"
    _check_id(errors, owner, ss.entry_uuid)
    _check(errors, owner, "XDSSubmissionSet.uniqueId", ss.unique_id, dt.check_oid)
    _check(errors, owner, "XDSSubmissionSet.sourceId", ss.source_id, dt.check_oid)
    _check(errors, owner, "XDSSubmissionSet.patientId", ss.patient_id, dt.check_cx)
    _check(errors, owner, "submissionTime", ss.submission_time, dt.check_dtm)
    _check_code(errors, owner, "contentTypeCode", ss.content_type_code)
    _check_authors(errors, owner, ss.authors)
    for rec in ss.intended_recipients:
        _check(errors, owner, "intendedRecipient", rec, dt.check_intended_recipient)


def check_folder(fol: Folder, errors: ErrorCollector) -> None:
    owner = f"Folder {fol.entry_uuid}"
    _check_id(errors, owner, fol.entry_uuid)
    _check(errors, owner, "XDSFolder.uniqueId", fol.unique_id, dt.check_oid)
    _check(errors, owner, "XDSFolder.patientId", fol.patient_id, dt.check_cx)
    if not fol.title:
        errors.add(META, f"{owner}: title (Name) is required")
    if not fol.codes:
        errors.add(META, f"{owner}: codeList is required (at least one code)")
    for code in fol.codes:
        _check_code(errors, owner, "codeList", code)


def check_association(a: Association, errors: ErrorCollector) -> None:
    owner = f"Association {a.entry_uuid}"
    _check_id(errors, owner, a.entry_uuid)
    if a.association_type not in v.ASSOCIATION_TYPES:
        errors.add(META, f"{owner}: associationType '{a.association_type}' is not an XDS association type")
    if not a.source or not a.target:
        errors.add(META, f"{owner}: sourceObject and targetObject are required")


def check_submission(
    sub: Submission, errors: ErrorCollector, *, require_repository_attrs: bool = True
) -> None:
    """Everything about a submission that does not need the registry's contents."""
    ss = sub.submission_set
    if ss is None:
        errors.add(META, f"the submission has no SubmissionSet (RegistryPackage classified {v.SS_NODE})")
    else:
        check_submission_set(ss, errors)
    for de in sub.documents:
        check_document_entry(de, errors, require_repository_attrs=require_repository_attrs)
    for fol in sub.folders:
        check_folder(fol, errors)
    for a in sub.associations:
        check_association(a, errors)

    ids = [o.entry_uuid for o in sub.objects() if o.entry_uuid]
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            errors.add(META, f"id '{i}' is used by more than one object in the submission")
        seen.add(i)

    uids: dict[str, str] = {}
    for obj in [ss, *sub.documents, *sub.folders]:
        if obj is None or not obj.unique_id:
            continue
        if obj.unique_id in uids:
            errors.add(
                ErrorCode.REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
                f"uniqueId '{obj.unique_id}' is used by {uids[obj.unique_id]} and {obj.entry_uuid}",
            )
        uids[obj.unique_id] = obj.entry_uuid

    if ss is not None:
        members_of_ss: list[DocumentEntry | Folder] = [*sub.documents, *sub.folders]
        for member in members_of_ss:
            if member.patient_id and ss.patient_id and member.patient_id != ss.patient_id:
                kind = "DocumentEntry" if isinstance(member, DocumentEntry) else "Folder"
                errors.add(
                    ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                    f"{kind} {member.entry_uuid} patientId '{member.patient_id}' differs from the "
                    f"SubmissionSet patientId '{ss.patient_id}'",
                )
        members = {
            a.target
            for a in sub.associations
            if a.association_type == v.HAS_MEMBER and a.source == ss.entry_uuid
        }
        for member in members_of_ss:
            if member.entry_uuid not in members:
                kind = "DocumentEntry" if isinstance(member, DocumentEntry) else "Folder"
                errors.add(
                    META,
                    f"{kind} {member.entry_uuid} is not a member of the SubmissionSet "
                    f"(no HasMember association from {ss.entry_uuid})",
                )
        new_docs = {de.entry_uuid for de in sub.documents}
        for a in sub.associations:
            if a.association_type == v.HAS_MEMBER and a.source == ss.entry_uuid and a.target in new_docs:
                status = a.submission_set_status
                if status not in ("Original", "Reference"):
                    errors.add(
                        META,
                        f"Association {a.entry_uuid}: a SubmissionSet-DocumentEntry HasMember "
                        f"needs a SubmissionSetStatus slot of Original or Reference",
                    )
