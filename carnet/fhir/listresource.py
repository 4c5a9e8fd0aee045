"""XDS SubmissionSet and Folder <-> FHIR List (MHD ITI TF-3 4.5.1.2 and 4.5.1.3).

A List is a SubmissionSet or a Folder by ``List.code`` (MHDlistTypes ``submissionset`` |
``folder``). The SubmissionSet's author is ``List.source`` (a contained resource; its organization
in the ``ihe-authorOrg`` extension), sourceId, contentTypeCode and intendedRecipient are the IHE
extensions; a Folder's codeList is ``designationType`` (0..*). ``List.entry.item`` are the
HasMember associations: the members of the package. The entries are wired by ``iti65`` (they need
the bundle's references); this module maps the objects themselves.
"""

from __future__ import annotations

from datetime import datetime

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.list import List, ListEntry
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

from carnet.fhir import authors as fauthors
from carnet.fhir import datatypes as fdt
from carnet.fhir import patient as fpatient
from carnet.fhir.documentreference import META, PatientResolver
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCollector
from carnet.xds.model import Folder, SubmissionSet

MHD = "https://profiles.ihe.net/ITI/MHD/StructureDefinition"
LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
EXT_SOURCE_ID = f"{MHD}/ihe-sourceId"
EXT_DESIGNATION = f"{MHD}/ihe-designationType"
EXT_RECIPIENT = f"{MHD}/ihe-intendedRecipient"
EXT_AUTHOR_ORG = f"{MHD}/ihe-authorOrg"
EXT_PDSM_RECIPIENT = (
    "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-ext-intended-recipient"
)
PROFILE_SS = f"{MHD}/IHE.MHD.Comprehensive.SubmissionSet"
PROFILE_FOLDER = f"{MHD}/IHE.MHD.Comprehensive.Folder"
SUBMISSION_SET = "submissionset"
FOLDER = "folder"

_STATUS = {v.APPROVED: "current", v.DEPRECATED: "retired", v.SUBMITTED: "current"}


def _ext_urls(url: str) -> set[str]:
    # MobileAccessGateway meets both canonicals in the field (http:// from older MHD drafts).
    return {url, url.replace("https://", "http://", 1)}


def list_kind(lst: List) -> str | None:
    for c in (lst.code.coding if lst.code else None) or []:
        if c.system in (LIST_TYPES, LIST_TYPES.replace("https://", "http://", 1)) and c.code in (
            SUBMISSION_SET,
            FOLDER,
        ):
            return c.code
    return None


def _code(kind: str) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=LIST_TYPES, code=kind)])


def _identifiers(entry_uuid: str, unique_id: str) -> list[Identifier]:
    return [fdt.entry_uuid_identifier(entry_uuid), fdt.unique_id_identifier(unique_id)]


def submission_set_to_fhir(ss: SubmissionSet, members: list[str], registered: datetime) -> List:
    """``members``: relative references (``DocumentReference/<id>``, ``List/<id>``) of the SS's members."""
    contained: list[Resource] = []
    extensions = [
        Extension(url=EXT_SOURCE_ID, valueIdentifier=fdt.unique_id_identifier(ss.source_id, use=None))
    ]
    if ss.content_type_code is not None:
        extensions.append(
            Extension(url=EXT_DESIGNATION, valueCodeableConcept=fdt.concept(ss.content_type_code))
        )
    for i, value in enumerate(ss.intended_recipients, 1):
        resources, rid = fauthors.recipient_resources(value, f"recipient{i}")
        contained += resources
        extensions.append(Extension(url=EXT_RECIPIENT, valueReference=Reference(reference=f"#{rid}")))
    source = None
    if ss.authors:
        # List.source holds one author: the first (XDS allows several; docs/fhir.md).
        resources, ids = fauthors.author_resources(ss.authors[0], "author1")
        contained += resources
        source = Reference(reference=f"#{ids[0]}")
    return List(
        id=fdt.resource_id(ss.entry_uuid),
        meta=Meta(versionId="1", lastUpdated=fdt.instant_of(registered), profile=[PROFILE_SS]),
        contained=contained or None,
        extension=extensions,
        identifier=_identifiers(ss.entry_uuid, ss.unique_id),
        status=_STATUS.get(ss.status, "current"),
        mode="working",
        title=ss.title,
        code=_code(SUBMISSION_SET),
        subject=fpatient.subject_reference(ss.patient_id),
        date=fdt.fhir_datetime(ss.submission_time) if ss.submission_time else None,
        source=source,
        note=[Annotation(text=ss.comments)] if ss.comments else None,
        entry=[ListEntry(item=Reference(reference=m)) for m in members] or None,
    )


def folder_to_fhir(fol: Folder, members: list[str], registered: datetime) -> List:
    return List(
        id=fdt.resource_id(fol.entry_uuid),
        meta=Meta(
            versionId=fol.version or "1",
            lastUpdated=fdt.fhir_instant(fol.last_update_time)
            if fol.last_update_time
            else fdt.instant_of(registered),
            profile=[PROFILE_FOLDER],
        ),
        extension=[Extension(url=EXT_DESIGNATION, valueCodeableConcept=fdt.concept(c)) for c in fol.codes]
        or None,
        identifier=_identifiers(fol.entry_uuid, fol.unique_id),
        status=_STATUS.get(fol.status, "current"),
        mode="working",
        title=fol.title,
        code=_code(FOLDER),
        subject=fpatient.subject_reference(fol.patient_id),
        date=fdt.fhir_datetime(fol.last_update_time) if fol.last_update_time else None,
        note=[Annotation(text=fol.comments)] if fol.comments else None,
        entry=[ListEntry(item=Reference(reference=m)) for m in members] or None,
    )


# ---------------------------------------------------------------------------------------------
# FHIR -> XDS
# ---------------------------------------------------------------------------------------------


def _unique_id(lst: List) -> str:
    """The package uniqueId: the identifier that is not the entryUUID (MHD slice uniqueId, use usual)."""
    candidates = [i for i in lst.identifier or [] if i.use != "official" and i.value]
    if not candidates:
        raise ValueError("the uniqueId identifier (use usual, urn:oid:...) is required (XDS uniqueId)")
    ident = next((i for i in candidates if i.use == "usual"), candidates[0])
    unique_id = fdt.unique_id_of(ident.system, ident.value)
    if "^" in unique_id:
        raise ValueError(f"identifier: '{ident.value}' must be a plain OID (urn:oid:...)")
    return unique_id


def _common_list(
    lst: List, obj: SubmissionSet | Folder, where: str, patient_of: PatientResolver, errors: ErrorCollector
) -> None:
    """What SubmissionSet and Folder Lists share: uniqueId, status, mode, subject, title, note."""
    kind = type(obj).__name__

    def bad(path: str, text: str) -> None:
        errors.add(META, f"{kind} List {where}: {path}: {text}", f"{where}.{path}")

    try:
        obj.unique_id = _unique_id(lst)
    except ValueError as exc:
        bad("identifier", str(exc))
    if lst.status != "current":
        bad("status", f"'{lst.status}': a submitted {kind} is 'current'")
    if lst.mode != "working":
        bad("mode", f"'{lst.mode}': MHD Lists are 'working'")
    if lst.subject is None:
        bad("subject", "is required (XDS patientId)")
    else:
        obj.patient_id = patient_of(lst.subject, f"{where}.subject") or ""
    obj.title = lst.title
    notes = [n.text for n in lst.note or [] if n.text]
    obj.comments = "\n".join(notes) if notes else None


def _extensions(lst: List, url: str) -> list[Extension]:
    urls = _ext_urls(url)
    return [e for e in lst.extension or [] if e.url in urls]


def submission_set_from_fhir(
    lst: List, where: str, patient_of: PatientResolver, errors: ErrorCollector
) -> SubmissionSet:
    ss = SubmissionSet(entry_uuid="")
    _common_list(lst, ss, where, patient_of, errors)

    def bad(path: str, text: str) -> None:
        errors.add(META, f"SubmissionSet List {where}: {path}: {text}", f"{where}.{path}")

    if lst.date is None:
        bad("date", "is required (XDS submissionTime)")
    else:
        ss.submission_time = fdt.dtm_from_fhir(lst.date)
    sources = _extensions(lst, EXT_SOURCE_ID)
    if len(sources) != 1 or sources[0].valueIdentifier is None:
        bad("extension(ihe-sourceId)", "exactly one valueIdentifier is required (XDS sourceId)")
    else:
        ident = sources[0].valueIdentifier
        try:
            ss.source_id = fdt.unique_id_of(ident.system, ident.value)
            if "^" in ss.source_id:
                raise ValueError(f"'{ident.system}|{ident.value}' is not an OID")
        except ValueError as exc:
            bad("extension(ihe-sourceId)", f"XDS sourceId is an OID: {exc}")
    designations = _extensions(lst, EXT_DESIGNATION)
    if len(designations) > 1:
        bad("extension(ihe-designationType)", "a SubmissionSet has one contentTypeCode")
    for ext in designations[:1]:
        try:
            if ext.valueCodeableConcept is None:
                raise ValueError("needs a valueCodeableConcept")
            ss.content_type_code = fdt.code_of_concept(ext.valueCodeableConcept)
        except ValueError as exc:
            bad("extension(ihe-designationType)", str(exc))
    resolve = fauthors.contained_resolver(lst)
    if lst.source is not None:
        try:
            author = fauthors.author_of(lst.source, resolve)
            for ext in lst.source.extension or []:
                if ext.url in _ext_urls(EXT_AUTHOR_ORG) and ext.valueReference is not None:
                    org = resolve(ext.valueReference)
                    xon = fdt.xon_of(org) if isinstance(org, Organization) else None
                    if not xon:
                        raise fauthors.ActorError(
                            "the ihe-authorOrg extension names no Organization with a name"
                        )
                    author.institutions.append(xon)
            ss.authors.append(author)
        except fauthors.ActorError as exc:
            bad("source", str(exc))
    for ext in _extensions(lst, EXT_RECIPIENT) + _extensions(lst, EXT_PDSM_RECIPIENT):
        if ext.valueReference is None:
            bad("extension(ihe-intendedRecipient)", "needs a valueReference")
            continue
        try:
            ss.intended_recipients.append(fauthors.recipient_of(ext.valueReference, resolve))
        except fauthors.ActorError as exc:
            bad("extension(ihe-intendedRecipient)", str(exc))
    return ss


def folder_from_fhir(lst: List, where: str, patient_of: PatientResolver, errors: ErrorCollector) -> Folder:
    fol = Folder(entry_uuid="")
    _common_list(lst, fol, where, patient_of, errors)
    for i, ext in enumerate(_extensions(lst, EXT_DESIGNATION)):
        try:
            if ext.valueCodeableConcept is None:
                raise ValueError("needs a valueCodeableConcept")
            fol.codes.append(fdt.code_of_concept(ext.valueCodeableConcept))
        except ValueError as exc:
            errors.add(
                META,
                f"Folder List {where}: extension(ihe-designationType)[{i}]: {exc}",
                f"{where}.extension",
            )
    if lst.source is not None:
        errors.add(
            META, f"Folder List {where}: source: a Folder has no author (MHD: source 0..0)", f"{where}.source"
        )
    return fol
