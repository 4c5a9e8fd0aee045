"""GET /fhir/metadata: the CapabilityStatement, declaring what this server implements and no more.

The search parameter lists are the ones ``iti66`` / ``iti67`` / ``endpoint`` apply (the same
constants), so the statement cannot drift from the code. It instantiates the MHD Document
Recipient (Comprehensive Metadata, which XDS on FHIR requires) and Document Responder
requirements; the PDSm Gestionnaire's PATCH is declared on DocumentReference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fhir.resources.R4B.capabilitystatement import (
    CapabilityStatement,
    CapabilityStatementImplementation,
    CapabilityStatementRest,
    CapabilityStatementRestInteraction,
    CapabilityStatementRestResource,
    CapabilityStatementRestResourceInteraction,
    CapabilityStatementRestResourceOperation,
    CapabilityStatementRestResourceSearchParam,
    CapabilityStatementRestSecurity,
    CapabilityStatementSoftware,
)
from flask import Flask

from carnet import __version__
from carnet.fhir import documentreference as fdr
from carnet.fhir import iti65, iti66, iti67
from carnet.fhir import listresource as flist
from carnet.fhir import patient as fpatient

MHD_CS = "https://profiles.ihe.net/ITI/MHD/CapabilityStatement"
PDSM = "https://interop.esante.gouv.fr/ig/fhir/pdsm"
FHIR_SP = "http://hl7.org/fhir/SearchParameter"

# name -> (type, definition, documentation)
_DOCUMENT_REFERENCE_PARAMS: dict[str, tuple[str, str | None, str]] = {
    "patient": ("reference", f"{FHIR_SP}/clinical-patient", "XDS patientId; Patient/<OID>-<id>"),
    "patient.identifier": ("token", None, "XDS patientId, e.g. urn:oid:1.2.250.1.213.1.4.8|<INS>"),
    "status": ("token", f"{FHIR_SP}/DocumentReference-status", "current | superseded | entered-in-error"),
    "identifier": (
        "token",
        f"{FHIR_SP}/clinical-identifier",
        "uniqueId (masterIdentifier), entryUUID or logical id",
    ),
    "_id": ("token", f"{FHIR_SP}/Resource-id", "entryUUID without urn:uuid:"),
    "_lastUpdated": ("date", f"{FHIR_SP}/Resource-lastUpdated", "last change of the entry"),
    "creation": (
        "date",
        "https://profiles.ihe.net/ITI/MHD/SearchParameter/DocumentReference-Creation",
        "creationTime",
    ),
    "date": ("date", f"{FHIR_SP}/clinical-date", "when Carnet registered the entry"),
    "author.given": ("string", None, "authorPerson given name (XCN.3)"),
    "author.family": ("string", None, "authorPerson family name (XCN.2)"),
    "category": ("token", f"{FHIR_SP}/DocumentReference-category", "classCode"),
    "type": ("token", f"{FHIR_SP}/clinical-type", "typeCode"),
    "setting": ("token", f"{FHIR_SP}/DocumentReference-setting", "practiceSettingCode"),
    "period": ("date", f"{FHIR_SP}/DocumentReference-period", "serviceStartTime..serviceStopTime (overlap)"),
    "facility": ("token", f"{FHIR_SP}/DocumentReference-facility", "healthcareFacilityTypeCode"),
    "event": ("token", f"{FHIR_SP}/DocumentReference-event", "eventCodeList"),
    "security-label": ("token", f"{FHIR_SP}/DocumentReference-security-label", "confidentialityCode"),
    "format": ("token", f"{FHIR_SP}/DocumentReference-format", "formatCode"),
    "related": (
        "reference",
        f"{FHIR_SP}/DocumentReference-related",
        "referenceIdList: matched by identifier, related=[system|]value or related.identifier=...",
    ),
    "isArchived": ("token", f"{PDSM}/SearchParameter/PDSm-isArchived", "DMP Archived status"),
    "period-start": (
        "date",
        f"{PDSM}/SearchParameter/PDSm-DocumentReference-period-start",
        "serviceStartTime",
    ),
    "period-end": ("date", f"{PDSM}/SearchParameter/PDSm-DocumentReference-period-end", "serviceStopTime"),
}
_LIST_PARAMS: dict[str, tuple[str, str | None, str]] = {
    "code": ("token", f"{FHIR_SP}/List-code", "submissionset | folder"),
    "patient": ("reference", f"{FHIR_SP}/clinical-patient", "XDS patientId"),
    "patient.identifier": ("token", None, "XDS patientId"),
    "status": ("token", f"{FHIR_SP}/List-status", "current | retired"),
    "date": ("date", f"{FHIR_SP}/clinical-date", "submissionTime / Folder lastUpdateTime"),
    "_lastUpdated": (
        "date",
        f"{FHIR_SP}/Resource-lastUpdated",
        "last change: SubmissionSet registration / Folder lastUpdateTime",
    ),
    "source.given": ("string", None, "SubmissionSet authorPerson given name"),
    "source.family": ("string", None, "SubmissionSet authorPerson family name"),
    "designationType": (
        "token",
        "https://profiles.ihe.net/ITI/MHD/SearchParameter/List-DesignationType",
        "contentTypeCode / codeList",
    ),
    "sourceId": (
        "token",
        "https://profiles.ihe.net/ITI/MHD/SearchParameter/List-SourceId",
        "SubmissionSet sourceId",
    ),
    "identifier": ("token", f"{FHIR_SP}/clinical-identifier", "uniqueId or entryUUID"),
    "_id": ("token", f"{FHIR_SP}/Resource-id", "entryUUID without urn:uuid:"),
    "isArchived": ("token", f"{PDSM}/SearchParameter/PDSm-isArchived", "never true for XDS packages"),
}
PATIENT_PARAMS: dict[str, tuple[str, str | None, str]] = {
    "identifier": ("token", f"{FHIR_SP}/Patient-identifier", "urn:oid:<assigning authority>|<id> (INS)"),
    "_id": ("token", f"{FHIR_SP}/Resource-id", "<assigning authority OID>-<id>"),
}
assert set(_DOCUMENT_REFERENCE_PARAMS) == set(iti67.SEARCH_PARAMS)
assert set(PATIENT_PARAMS) == set(fpatient.SEARCH_PARAMS)

TITLE = "Carnet FHIR facade: IHE MHD 4.2.3 Document Recipient and Responder (XDS on FHIR), ANS PDSm 3.1.1"
REST_DOC = (
    "ITI-65 Provide Document Bundle (transaction), ITI-66, ITI-67, ITI-68, and the PDSm metadata update "
    "by (conditional) PATCH. Without an Authorization header a request runs as the anonymous principal "
    "only where the deployment allows it; bearer tokens are verified (CARNET_JWT_KEYS)."
)
SECURITY_DOC = "Authorization: Bearer <JWT> (IUA); one policy decision point; every request audited"
TRANSACTION_DOC = (
    "ITI-65 with Bundle.meta.profile "
    + ", ".join(sorted({iti65.PROFILE_COMPREHENSIVE, iti65.PROFILE_MINIMAL, iti65.PROFILE_PDSM}))
    + ". Folders are created (POST) or have documents added (PUT List/[id]). Not supported: the "
    "UnContained References Option (it cannot be used with XDS on FHIR) and the FHIR Document Publish "
    "Option (FHIRDocumentNotSupported)."
)
PATCH_DOC = (
    "PATCH [base]/DocumentReference/[id], or conditionally [base]/DocumentReference?identifier=...: a JSON "
    "Patch or FHIRPath Patch of status, securityLabel and the PDSm isArchived extension only (405 for "
    "anything else, meta included; If-Match honoured), carried out as ITI-57 Update Document Set."
)
BINARY_DOC = (
    "ITI-68 Retrieve Document at DocumentReference.content.attachment.url: the document's bytes, or the "
    "Binary resource when a FHIR format is asked for."
)
assert set(_LIST_PARAMS) == set(iti66.SEARCH_PARAMS)


def search_params(
    table: dict[str, tuple[str, str | None, str]],
) -> list[CapabilityStatementRestResourceSearchParam]:
    return [
        CapabilityStatementRestResourceSearchParam(
            name=name, type=kind, definition=definition, documentation=doc
        )
        for name, (kind, definition, doc) in table.items()
    ]


def interactions(*codes: str) -> list[CapabilityStatementRestResourceInteraction]:
    return [CapabilityStatementRestResourceInteraction(code=c) for c in codes]


@dataclass
class Contribution:
    """What another blueprint serves under /fhir: resources and system-level operations."""

    resources: list[CapabilityStatementRestResource] = field(default_factory=list)
    operations: list[CapabilityStatementRestResourceOperation] = field(default_factory=list)


_KEY = "carnet.fhir.capabilities"


def contribute(app: Flask, contribution: Contribution) -> None:
    """Declare what another blueprint serves under /fhir (e.g. the DMP's Consent), so the one
    CapabilityStatement of the base stays complete."""
    app.extensions.setdefault(_KEY, []).append(contribution)


def contributed(app: Flask) -> Contribution:
    parts: list[Contribution] = app.extensions.get(_KEY, [])
    return Contribution(
        [r for part in parts for r in part.resources], [o for part in parts for o in part.operations]
    )


def capability_statement(
    base: str, software_date: datetime, others: Contribution | None = None
) -> CapabilityStatement:
    others = others or Contribution()
    return CapabilityStatement(
        status="active",
        date=software_date,
        kind="instance",
        title=TITLE,
        instantiates=[
            f"{MHD_CS}/IHE.MHD.DocumentRecipient.Comprehensive",
            f"{MHD_CS}/IHE.MHD.DocumentResponder",
        ],
        software=CapabilityStatementSoftware(name="Carnet", version=__version__),
        implementation=CapabilityStatementImplementation(
            description="Carnet XDS.b registry and repository", url=base
        ),
        fhirVersion="4.0.1",
        format=["application/fhir+json", "application/fhir+xml", "json", "xml"],
        patchFormat=["application/json-patch+json", "application/fhir+json", "application/fhir+xml"],
        implementationGuide=[
            "https://profiles.ihe.net/ITI/MHD/ImplementationGuide/ihe.iti.mhd",
            f"{PDSM}/ImplementationGuide/ans.fhir.fr.pdsm",
        ],
        rest=[
            CapabilityStatementRest(
                mode="server",
                documentation=REST_DOC,
                security=CapabilityStatementRestSecurity(description=SECURITY_DOC),
                interaction=[
                    CapabilityStatementRestInteraction(
                        code="transaction",
                        documentation=TRANSACTION_DOC,
                    )
                ],
                resource=[
                    CapabilityStatementRestResource(
                        type="DocumentReference",
                        profile=fdr.PROFILE_COMPREHENSIVE,
                        interaction=interactions("read", "search-type", "patch"),
                        versioning="versioned",
                        conditionalUpdate=False,
                        documentation=PATCH_DOC,
                        searchParam=search_params(_DOCUMENT_REFERENCE_PARAMS),
                    ),
                    CapabilityStatementRestResource(
                        type="List",
                        supportedProfile=[flist.PROFILE_SS, flist.PROFILE_FOLDER],
                        interaction=interactions("read", "search-type"),
                        searchParam=search_params(_LIST_PARAMS),
                    ),
                    CapabilityStatementRestResource(
                        type="Binary",
                        interaction=interactions("read"),
                        documentation=BINARY_DOC,
                    ),
                    CapabilityStatementRestResource(
                        type="Patient",
                        interaction=interactions("read", "search-type"),
                        searchParam=search_params(PATIENT_PARAMS),
                    ),
                    *others.resources,
                ],
                operation=others.operations or None,
            )
        ],
    )
