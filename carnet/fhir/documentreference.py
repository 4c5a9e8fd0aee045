"""XDS DocumentEntry <-> FHIR DocumentReference (MHD ITI TF-3 4.5.1.1, PDSm extensions).

``to_fhir`` renders a stored DocumentEntry (parsed from its ebRIM fragment) as an MHD
Comprehensive DocumentReference; ``from_fhir`` reads a DocumentReference of an ITI-65 bundle into a
DocumentEntry, collecting every problem with the FHIRPath of the element at fault. Decisions where
the standards leave room (see docs/fhir.md):

- ``id`` is the entryUUID without ``urn:uuid:`` (it changes with each metadata version, as in the
  DMP); ``identifier`` carries the entryUUID (official) and, after a metadata update, the logical id.
- ``date`` is when Carnet registered the entry (FHIR: "when this document reference was created");
  creationTime is ``content.attachment.creation``, as MHD maps it. On input a missing
  ``attachment.creation`` falls back to ``date``, the PDSm4DMP reading.
- Archived (DMP) is ``status`` current with the PDSm ``isArchived`` extension true; Deleted (DMP) is
  ``entered-in-error``.
- ``attachment.url`` is the ITI-68 URL ``<base>/Binary/<logical id>``: stable across metadata
  versions, answering 410 once the document is replaced or deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.documentreference import (
    DocumentReference,
    DocumentReferenceContent,
    DocumentReferenceContext,
    DocumentReferenceRelatesTo,
)
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

from carnet.fhir import authors as fauthors
from carnet.fhir import datatypes as fdt
from carnet.fhir import patient as fpatient
from carnet.fhir import terminology
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, ErrorCollector
from carnet.xds.model import Code, DocumentEntry

MHD = "https://profiles.ihe.net/ITI/MHD/StructureDefinition"
PROFILE_COMPREHENSIVE = f"{MHD}/IHE.MHD.Comprehensive.DocumentReference"
IS_ARCHIVED = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-ext-is-archived"
ENCOUNTER_ID = "urn:ihe:iti:xds:2015:encounterId"
META = ErrorCode.REGISTRY_METADATA_ERROR

# ConceptMap AssociationTypeVsRelatesTo (MHD 4.2.3); XFRM_RPLC is "replaces" (narrower) and
# IsSnapshotOf "transforms" (inexact), so reading back a relatesTo gives RPLC / XFRM.
RELATES_TO: dict[str, str] = {
    v.RPLC: "replaces",
    v.XFRM: "transforms",
    v.APND: "appends",
    v.XFRM_RPLC: "replaces",
    v.SIGNS: "signs",
    v.IS_SNAPSHOT_OF: "transforms",
}
ASSOCIATION_OF = {"replaces": v.RPLC, "transforms": v.XFRM, "appends": v.APND, "signs": v.SIGNS}

STATUS_TO_FHIR = {
    v.APPROVED: "current",
    v.DEPRECATED: "superseded",
    v.DMP_ARCHIVED: "current",
    v.DMP_DELETED: "entered-in-error",
    v.SUBMITTED: "current",
}


@dataclass
class Stored:
    """A DocumentEntry as the registry holds it, with what only the row knows."""

    entry: DocumentEntry
    registered: datetime
    updated: datetime | None = None
    # (association type, target entryUUID) of this entry's document relationships.
    relates: list[tuple[str, str]] = field(default_factory=list)


def binary_id(logical_id: str) -> str:
    return fdt.resource_id(logical_id)


def to_fhir(stored: Stored, base: str) -> DocumentReference:
    de = stored.entry
    contained: list[Resource] = []
    author_refs: list[Reference] = []
    for i, author in enumerate(de.authors, 1):
        resources, ids = fauthors.author_resources(author, f"author{i}")
        contained += resources
        author_refs += [Reference(reference=f"#{rid}") for rid in ids]
    authenticator = None
    if de.legal_authenticator:
        contained.append(fauthors.practitioner(de.legal_authenticator, "authenticator"))
        authenticator = Reference(reference="#authenticator")
    source = fpatient.source_patient(de.source_patient_id, de.source_patient_info, "sourcePatient")
    if source is not None:
        contained.append(source)

    identifiers = [fdt.entry_uuid_identifier(de.entry_uuid)]
    if de.logical_id and de.logical_id != de.entry_uuid:
        identifiers.append(Identifier(use="secondary", system=fdt.URI_SYSTEM, value=de.logical_id))

    related: list[Reference] = []
    encounter: list[Reference] = []
    for ref in de.reference_ids:
        ident, type_code = _cxi_identifier(ref)
        (encounter if type_code == ENCOUNTER_ID else related).append(Reference(identifier=ident))

    period = None
    if de.service_start_time or de.service_stop_time:
        period = Period(
            start=fdt.fhir_datetime(de.service_start_time) if de.service_start_time else None,
            end=fdt.fhir_datetime(de.service_stop_time) if de.service_stop_time else None,
        )
    context = DocumentReferenceContext(
        encounter=encounter or None,
        event=[fdt.concept(c) for c in de.event_codes] or None,
        period=period,
        facilityType=_concept(de.healthcare_facility_type_code),
        practiceSetting=_concept(de.practice_setting_code),
        sourcePatientInfo=Reference(reference="#sourcePatient") if source is not None else None,
        related=related or None,
    )
    attachment = Attachment(
        contentType=de.mime_type or None,
        language=de.language_code,
        url=f"{base}/Binary/{binary_id(de.logical_id or de.entry_uuid)}",
        size=de.size,
        hash=fdt.hash_to_fhir(de.hash) if de.hash else None,
        title=de.title,
        creation=fdt.fhir_datetime(de.creation_time) if de.creation_time else None,
    )
    updated = stored.updated or stored.registered
    return DocumentReference(
        id=fdt.resource_id(de.entry_uuid),
        meta=Meta(
            versionId=de.version or "1", lastUpdated=fdt.instant_of(updated), profile=[PROFILE_COMPREHENSIVE]
        ),
        contained=contained or None,
        extension=[Extension(url=IS_ARCHIVED, valueBoolean=de.status == v.DMP_ARCHIVED)],
        masterIdentifier=fdt.unique_id_identifier(de.unique_id),
        identifier=identifiers,
        status=STATUS_TO_FHIR.get(de.status, "current"),
        type=_concept(de.type_code),
        category=[fdt.concept(de.class_code)] if de.class_code else None,
        subject=fpatient.subject_reference(de.patient_id),
        date=fdt.instant_of(stored.registered),
        author=author_refs or None,
        authenticator=authenticator,
        relatesTo=[
            DocumentReferenceRelatesTo(
                code=RELATES_TO[atype],
                target=Reference(reference=f"DocumentReference/{fdt.resource_id(target)}"),
            )
            for atype, target in stored.relates
            if atype in RELATES_TO
        ]
        or None,
        description=de.comments,
        securityLabel=[fdt.concept(c) for c in de.confidentiality_codes] or None,
        content=[
            DocumentReferenceContent(
                attachment=attachment, format=fdt.coding(de.format_code) if de.format_code else None
            )
        ],
        context=context,
    )


def is_archived(resource: DocumentReference) -> bool:
    return any(e.url == IS_ARCHIVED and e.valueBoolean for e in resource.extension or [])


def _concept(code: Code | None) -> CodeableConcept | None:
    return fdt.concept(code) if code is not None else None


def _cxi_identifier(cxi: str) -> tuple[Identifier, str]:
    """referenceIdList CXi ``id^^^&OID&ISO^type^home`` -> Identifier (type as Identifier.type)."""
    p = (cxi.split("^") + [""] * 6)[:6]
    authority = p[3].split("&")
    system = None
    if len(authority) > 2 and authority[2] == "ISO" and authority[1]:
        system = f"urn:oid:{authority[1]}"
    elif authority[0]:
        system = authority[0]
    ident = Identifier(
        system=system,
        value=p[0],
        type=CodeableConcept(coding=[Coding(code=p[4])]) if p[4] else None,
    )
    return ident, p[4]


def cxi_of(ident: Identifier) -> str:
    """Identifier (with a type) -> referenceIdList CXi; ValueError when XDS cannot hold it."""
    if not ident.value:
        raise ValueError("the identifier has no value")
    type_code = next((c.code for c in (ident.type.coding if ident.type else None) or [] if c.code), None)
    if not type_code:
        raise ValueError(
            "the identifier has no type: XDS referenceIdList needs the identifier type code (CXi.5, e.g. "
            "urn:ihe:iti:xds:2013:accession) in Identifier.type"
        )
    authority = ""
    oid = terminology.oid_of_identifier_system(ident.system)
    if oid:
        authority = f"&{oid}&ISO"
    elif ident.system:
        authority = ident.system
    return f"{ident.value}^^^{authority}^{type_code}"


# ---------------------------------------------------------------------------------------------
# FHIR -> XDS
# ---------------------------------------------------------------------------------------------

PatientResolver = Callable[[Reference, str], str | None]


def from_fhir(
    dr: DocumentReference, where: str, patient_of: PatientResolver, errors: ErrorCollector
) -> DocumentEntry:
    """Read a submitted DocumentReference; ``where`` is its FHIRPath, used in every error location.

    Attachment bytes, hash and size are the caller's (they come from the Binary); the target of
    relatesTo too (it needs the bundle's references).
    """
    de = DocumentEntry(entry_uuid="", status=v.APPROVED)

    def bad(path: str, text: str, code: ErrorCode = META) -> None:
        errors.add(code, f"DocumentReference {where}: {path}: {text}", f"{where}.{path}")

    if dr.masterIdentifier is None:
        bad("masterIdentifier", "is required (XDS uniqueId)")
    else:
        try:
            de.unique_id = fdt.unique_id_of(dr.masterIdentifier.system, dr.masterIdentifier.value)
        except ValueError as exc:
            bad("masterIdentifier", str(exc))
    if dr.status != "current":
        bad("status", f"'{dr.status}': a submitted DocumentReference is 'current' (XDS Approved)")
    if dr.docStatus is not None:
        bad("docStatus", "is not part of MHD (0..0)")
    if is_archived(dr):
        bad("extension(isArchived)", "a document is submitted current; archive it afterwards (PATCH)")

    if dr.subject is None:
        bad("subject", "is required (XDS patientId)", ErrorCode.UNKNOWN_PATIENT_ID)
    else:
        de.patient_id = patient_of(dr.subject, f"{where}.subject") or ""

    for name, value, setter in (
        ("type", dr.type, "type_code"),
        (
            "context.facilityType",
            dr.context.facilityType if dr.context else None,
            "healthcare_facility_type_code",
        ),
        (
            "context.practiceSetting",
            dr.context.practiceSetting if dr.context else None,
            "practice_setting_code",
        ),
    ):
        if value is not None:
            try:
                setattr(de, setter, fdt.code_of_concept(value))
            except ValueError as exc:
                bad(name, str(exc))
    for i, cat in enumerate(dr.category or []):
        if i > 0:
            bad(f"category[{i}]", "XDS holds one classCode; send one category")
            break
        try:
            de.class_code = fdt.code_of_concept(cat)
        except ValueError as exc:
            bad(f"category[{i}]", str(exc))
    for i, label in enumerate(dr.securityLabel or []):
        for j, c in enumerate(label.coding or []):
            try:
                de.confidentiality_codes.append(fdt.code_of(c))
            except ValueError as exc:
                bad(f"securityLabel[{i}].coding[{j}]", str(exc))

    resolve = fauthors.contained_resolver(dr)
    for i, ref in enumerate(dr.author or []):
        try:
            de.authors.append(fauthors.author_of(ref, resolve))
        except fauthors.ActorError as exc:
            bad(f"author[{i}]", str(exc))
    if dr.authenticator is not None:
        try:
            de.legal_authenticator = fauthors.authenticator_of(dr.authenticator, resolve)
        except fauthors.ActorError as exc:
            bad("authenticator", str(exc))
    de.comments = dr.description

    contents = dr.content or []
    if len(contents) != 1:
        bad("content", f"has {len(contents)} entries: an XDS DocumentEntry has exactly one document")
    if contents:
        content = contents[0]
        att = content.attachment
        de.mime_type = att.contentType or ""
        if not att.contentType:
            bad("content[0].attachment.contentType", "is required (XDS mimeType)")
        de.language_code = att.language
        de.title = att.title
        creation = att.creation if att.creation is not None else dr.date
        if creation is not None:
            de.creation_time = fdt.dtm_from_fhir(creation)
        if content.format is not None:
            try:
                de.format_code = fdt.code_of(content.format)
            except ValueError as exc:
                bad("content[0].format", str(exc))

    ctx = dr.context
    if ctx is not None:
        for i, ev in enumerate(ctx.event or []):
            try:
                de.event_codes.append(fdt.code_of_concept(ev))
            except ValueError as exc:
                bad(f"context.event[{i}]", str(exc))
        if ctx.period is not None:
            if ctx.period.start is not None:
                de.service_start_time = fdt.dtm_from_fhir(ctx.period.start)
            if ctx.period.end is not None:
                de.service_stop_time = fdt.dtm_from_fhir(ctx.period.end)
        for i, ref in enumerate(ctx.related or []):
            if ref.identifier is None:
                bad(
                    f"context.related[{i}]",
                    "needs an identifier: XDS referenceIdList holds identifiers (CXi), not references",
                )
                continue
            try:
                de.reference_ids.append(cxi_of(ref.identifier))
            except ValueError as exc:
                bad(f"context.related[{i}].identifier", str(exc))
        for i, ref in enumerate(ctx.encounter or []):
            if ref.identifier is None or not ref.identifier.value:
                bad(f"context.encounter[{i}]", "needs an identifier (XDS referenceIdList encounterId)")
                continue
            enc = ref.identifier.model_copy()
            enc.type = CodeableConcept(coding=[Coding(code=ENCOUNTER_ID)])
            try:
                de.reference_ids.append(cxi_of(enc))
            except ValueError as exc:
                bad(f"context.encounter[{i}].identifier", str(exc))
        if ctx.sourcePatientInfo is not None:
            try:
                found = resolve(ctx.sourcePatientInfo)
            except fauthors.ActorError as exc:
                bad("context.sourcePatientInfo", str(exc))
                found = None
            if found is not None and not isinstance(found, Patient):
                bad("context.sourcePatientInfo", f"is a {found.get_resource_type()}, not a Patient")
            elif isinstance(found, Patient):
                de.source_patient_id, de.source_patient_info = fpatient.source_patient_of(found)
    # XDS requires sourcePatientId; a source patient known only by a local, non-OID identifier (or
    # not given) is recorded under the patientId, the identity the document is filed under.
    if not de.source_patient_id:
        de.source_patient_id = de.patient_id or None
    return de
