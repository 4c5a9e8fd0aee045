"""Test helpers for the FHIR facade: fixture loading, ITI-65 bundles built with fhir.resources.R4B,
and reading OperationOutcomes. Independent of Carnet's own translators (``carnet.fhir``)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.documentreference import (
    DocumentReference,
    DocumentReferenceContent,
    DocumentReferenceContext,
    DocumentReferenceRelatesTo,
)
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.list import List, ListEntry
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.reference import Reference
from sqlalchemy import Engine, func, select

from carnet.db import read_session, write_transaction
from carnet.registry import patients
from carnet.registry.schema import AuditEventRow, DocumentEntryRow, StoredDocumentRow, SubmissionSetRow
from tests.conftest import FIXTURES, needs_fixtures

MHD_EXAMPLES = FIXTURES / "mhd" / "package" / "example"
PDSM = FIXTURES / "pdsm"
INS_TEST = "1.2.250.1.213.1.4.10"
LOINC = "http://loinc.org"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
FORMAT_CODES = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
TRE_A03 = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
TRE_R02 = "https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite"
TRE_A02 = (
    "https://mos.esante.gouv.fr/NOS/TRE_A02-ProfessionSavFaire-CISIS/FHIR/TRE-A02-ProfessionSavFaire-CISIS"
)
TRE_A01 = "https://mos.esante.gouv.fr/NOS/TRE_A01-CadreExercice/FHIR/TRE-A01-CadreExercice"
TRE_A07 = (
    "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument"
)
CCAM = "urn:oid:1.2.250.1.213.2.5"
MHD = "https://profiles.ihe.net/ITI/MHD/StructureDefinition"
COMPREHENSIVE = f"{MHD}/IHE.MHD.Comprehensive.ProvideBundle"
LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
FHIR_JSON = "application/fhir+json"

_counter = itertools.count(1)
ROOT = f"1.2.250.1.999.3.{int(time.time())}"


def new_oid() -> str:
    return f"{ROOT}.{next(_counter)}"


def load_fixture(path: Path) -> dict[str, Any]:
    needs_fixtures(*path.relative_to(FIXTURES).parts)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def nir(n: int) -> str:
    return f"{2_800_000_000_000_00 + n:015d}"


def patient_cx(n: int = 1) -> str:
    return f"{nir(n)}^^^&{INS_TEST}&ISO"


def patient_id(n: int = 1) -> str:
    """The FHIR Patient id Carnet derives from the INS-NIR test identity ``n``."""
    return f"{INS_TEST}-{nir(n)}"


def patient_token(n: int = 1) -> str:
    return f"urn:oid:{INS_TEST}|{nir(n)}"


def known_patients(engine: Engine, *numbers: int) -> None:
    with write_transaction(engine) as session:
        for n in numbers:
            patients.upsert(session, patient_cx(n))


def sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode()


def concept(system: str, code: str, display: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=system, code=code, display=display)])


@dataclass
class Doc:
    """One DocumentReference + Binary of a test bundle."""

    content: bytes = b"Compte rendu"
    mime: str = "text/plain"
    unique_id: str = field(default_factory=new_oid)
    category: tuple[str, str] = (TRE_A03, "10")
    type: tuple[str, str] = (LOINC, "11488-4")
    format: tuple[str, str] = (FORMAT_CODES, "urn:ihe:iti:xds-sd:text:2008")
    facility: tuple[str, str] = (TRE_R02, "SA01")
    setting: tuple[str, str] = (TRE_A01, "ETABLISSEMENT")
    security: list[tuple[str, str]] = field(default_factory=lambda: [(CONFIDENTIALITY, "N")])
    events: list[tuple[str, str]] = field(default_factory=list)
    creation: str = "2024-01-15T10:30:00+01:00"
    period: tuple[str | None, str | None] = ("2024-01-15T08:00:00Z", "2024-01-15T09:00:00Z")
    author: tuple[str, str, str] = ("801234567890", "MEDECIN", "Alice")
    author_role: tuple[str, str] | None = (TRE_A02, "G15_10/SM26")
    organization: tuple[str, str] | None = ("Hopital Test", "123456789")
    title: str = "Compte rendu de consultation"
    language: str = "fr-FR"
    related: list[tuple[str, str, str]] = field(default_factory=list)  # (system, value, type code)
    relates_to: list[tuple[str, str]] = field(default_factory=list)  # (code, DocumentReference/<id>)
    hash: str | None = "auto"  # "auto": base64 of the raw SHA-1; None: left out
    size: int | None = -1  # -1: the real size; None: left out
    full_url: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")
    binary_url: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")
    description: str | None = None


def _author(d: Doc) -> tuple[list[Any], Reference]:
    prac = Practitioner(
        id="author-person",
        identifier=[Identifier(system="urn:oid:1.2.250.1.71.4.2.1", value=d.author[0])],
        name=[HumanName(family=d.author[1], given=[d.author[2]], prefix=["Dr"])],
    )
    contained: list[Any] = [prac]
    org_ref = None
    if d.organization:
        contained.append(
            Organization(
                id="author-org",
                name=d.organization[0],
                identifier=[Identifier(system="urn:oid:1.2.250.1.71.4.2.2", value=d.organization[1])],
            )
        )
        org_ref = Reference(reference="#author-org")
    role = PractitionerRole(
        id="author",
        practitioner=Reference(reference="#author-person"),
        organization=org_ref,
        specialty=[concept(*d.author_role)] if d.author_role else None,
    )
    return [role, *contained], Reference(reference="#author")


def document_reference(d: Doc, patient: Reference) -> DocumentReference:
    contained, author_ref = _author(d)
    source = Patient(
        id="source-patient",
        identifier=[Identifier(system="urn:oid:1.2.3.4.5", value="IPP-42")],
        name=[HumanName(family="TEST", given=["Synthetique"])],
        birthDate="1970-01-01",
        gender="female",
    )
    contained.append(source)
    att = Attachment(
        contentType=d.mime,
        language=d.language,
        url=d.binary_url,
        title=d.title,
        creation=d.creation,
        hash=sha1_b64(d.content) if d.hash == "auto" else d.hash,
        size=len(d.content) if d.size == -1 else d.size,
    )
    start, end = d.period
    return DocumentReference(
        contained=contained,
        masterIdentifier=Identifier(use="usual", system="urn:ietf:rfc:3986", value=f"urn:oid:{d.unique_id}"),
        status="current",
        type=concept(*d.type),
        category=[concept(*d.category)],
        subject=patient,
        author=[author_ref],
        authenticator=Reference(reference="#author-person"),
        description=d.description,
        securityLabel=[concept(s, c) for s, c in d.security],
        relatesTo=[
            DocumentReferenceRelatesTo(code=code, target=Reference(reference=target))
            for code, target in d.relates_to
        ]
        or None,
        content=[
            DocumentReferenceContent(attachment=att, format=Coding(system=d.format[0], code=d.format[1]))
        ],
        context=DocumentReferenceContext(
            event=[concept(s, c) for s, c in d.events] or None,
            period=Period(start=start, end=end) if (start or end) else None,
            facilityType=concept(*d.facility),
            practiceSetting=concept(*d.setting),
            sourcePatientInfo=Reference(reference="#source-patient"),
            related=[
                Reference(
                    identifier=Identifier(system=s, value=val, type=CodeableConcept(coding=[Coding(code=t)]))
                )
                for s, val, t in d.related
            ]
            or None,
        ),
    )


def provide_bundle(
    patient: int | Reference,
    docs: list[Doc],
    *,
    ss_unique_id: str | None = None,
    folder: dict[str, Any] | None = None,
    source_id: str = "urn:oid:1.2.250.1.999.9",
    patches: list[str] = (),  # type: ignore[assignment]
    submission_time: str = "2024-01-15T11:00:00+01:00",
) -> dict[str, Any]:
    """A Comprehensive ITI-65 bundle; ``folder``: {"title", "codes": [(system, code)], "members": [refs]}."""
    subject = (
        patient if isinstance(patient, Reference) else Reference(reference=f"Patient/{patient_id(patient)}")
    )
    ss_url = f"urn:uuid:{uuid.uuid4()}"
    entries: list[BundleEntry] = []
    items = [ListEntry(item=Reference(reference=d.full_url)) for d in docs]
    folder_url = f"urn:uuid:{uuid.uuid4()}"
    if folder is not None:
        items.append(ListEntry(item=Reference(reference=folder_url)))
    ss = List(
        contained=[
            Practitioner(
                id="ss-author",
                identifier=[Identifier(system="urn:oid:1.2.250.1.71.4.2.1", value="801234567890")],
                name=[HumanName(family="MEDECIN", given=["Alice"])],
            )
        ],
        source=Reference(reference="#ss-author"),
        extension=[
            Extension(
                url=f"{MHD}/ihe-designationType",
                valueCodeableConcept=concept("urn:oid:1.2.250.1.213.1.1.4.4", "04"),
            ),
            Extension(url=f"{MHD}/ihe-sourceId", valueIdentifier=Identifier(value=source_id)),
        ],
        identifier=[
            Identifier(use="usual", system="urn:ietf:rfc:3986", value=f"urn:oid:{ss_unique_id or new_oid()}")
        ],
        status="current",
        mode="working",
        title="Soumission de test",
        code=concept(LIST_TYPES, "submissionset"),
        subject=subject,
        date=submission_time,
        entry=items,
    )
    entries.append(
        BundleEntry(fullUrl=ss_url, resource=ss, request=BundleEntryRequest(method="POST", url="List"))
    )
    for d in docs:
        entries.append(
            BundleEntry(
                fullUrl=d.full_url,
                resource=document_reference(d, subject),
                request=BundleEntryRequest(method="POST", url="DocumentReference"),
            )
        )
    for target in patches:
        from fhir.resources.R4B.parameters import Parameters

        patch = Parameters.model_validate(
            {
                "resourceType": "Parameters",
                "parameter": [
                    {
                        "name": "operation",
                        "part": [
                            {"name": "type", "valueCode": "replace"},
                            {"name": "path", "valueString": "DocumentReference.status"},
                            {"name": "value", "valueCode": "superseded"},
                        ],
                    }
                ],
            }
        )
        entries.append(
            BundleEntry(
                fullUrl=f"urn:uuid:{uuid.uuid4()}",
                resource=patch,
                request=BundleEntryRequest(method="PATCH", url=target),
            )
        )
    if folder is not None:
        fol = List(
            extension=[
                Extension(url=f"{MHD}/ihe-designationType", valueCodeableConcept=concept(s, c))
                for s, c in folder.get("codes", [("urn:oid:1.2.250.1.213.1.1.4.4", "04")])
            ],
            identifier=[Identifier(use="usual", system="urn:ietf:rfc:3986", value=f"urn:oid:{new_oid()}")],
            status="current",
            mode="working",
            title=folder.get("title", "Dossier de test"),
            code=concept(LIST_TYPES, "folder"),
            subject=subject,
            entry=[
                ListEntry(item=Reference(reference=r))
                for r in folder.get("members", [d.full_url for d in docs])
            ],
        )
        entries.append(
            BundleEntry(
                fullUrl=folder_url, resource=fol, request=BundleEntryRequest(method="POST", url="List")
            )
        )
    for d in docs:
        entries.append(
            BundleEntry(
                fullUrl=d.binary_url,
                resource=Binary(contentType=d.mime, data=base64.b64encode(d.content)),
                request=BundleEntryRequest(method="POST", url="Binary"),
            )
        )
    bundle = Bundle(type="transaction", meta=Meta(profile=[COMPREHENSIVE]), entry=entries)
    data: dict[str, Any] = json.loads(bundle.model_dump_json(exclude_none=True))
    return data


def post_bundle(client: Any, bundle: dict[str, Any], content_type: str = FHIR_JSON, **kw: Any) -> Any:
    return client.post("/fhir", data=json.dumps(bundle), content_type=content_type, **kw)


def issues(resp: Any) -> list[tuple[str | None, str]]:
    """(XDS code, FHIRPath) of every issue of an OperationOutcome answer."""
    body = json.loads(resp.data)
    assert body["resourceType"] == "OperationOutcome", body
    out = []
    for i in body["issue"]:
        codes = i.get("details", {}).get("coding", [])
        out.append((codes[0].get("code") if codes else None, (i.get("expression") or [""])[0]))
    return out


def issue_texts(resp: Any) -> str:
    return " | ".join(i["details"]["text"] for i in json.loads(resp.data)["issue"])


def submitted_ids(resp: Any) -> dict[str, list[str]]:
    """Resource type -> ids created, from a transaction-response."""
    body = json.loads(resp.data)
    assert body["type"] == "transaction-response", body
    out: dict[str, list[str]] = {}
    for e in body["entry"]:
        rtype, _, rid = e["response"]["location"].partition("/")
        out.setdefault(rtype, []).append(rid)
    return out


@dataclass
class Counts:
    submission_sets: int
    documents: int
    stored: int
    blobs: int


def counts(engine: Engine, blob_dir: Path) -> Counts:
    with read_session(engine) as s:
        return Counts(
            s.scalar(select(func.count()).select_from(SubmissionSetRow)) or 0,
            s.scalar(select(func.count()).select_from(DocumentEntryRow)) or 0,
            s.scalar(select(func.count()).select_from(StoredDocumentRow)) or 0,
            len([p for p in blob_dir.rglob("*") if p.is_file()]),
        )


def audit_rows(engine: Engine, transaction: str) -> list[AuditEventRow]:
    with read_session(engine) as s:
        return list(s.scalars(select(AuditEventRow).where(AuditEventRow.transaction == transaction)))
