"""Patients in FHIR: the Patient resources Carnet serves and the contained sourcePatientInfo.

A Patient resource is a patient identity the registry knows: fed by ITI-8 (or the CLI), or met in
a submission when the deployment accepts any patient. Its logical id is derived from the XDS
patient id (``datatypes.patient_resource_id``), so ``Patient/<id>`` in a submitted bundle resolves
without a lookup table and the id survives restarts and replicas. ``DocumentReference.subject``
carries both that reference and the identifier (INS), so a client needs no extra read.

``context.sourcePatientInfo`` is a contained Patient built from sourcePatientId and the
sourcePatientInfo PID fields (PID-3, -5, -7, -8, -11), and read back the same way.
"""

from __future__ import annotations

from fhir.resources.R4B.address import Address
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.patient import Patient, PatientLink
from fhir.resources.R4B.reference import Reference
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.fhir import datatypes as fdt
from carnet.registry import patients
from carnet.registry.schema import DocumentEntryRow
from carnet.registry.schema import Patient as PatientRow
from carnet.registry.validate import datatypes as dt

_GENDER_TO_FHIR = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
_GENDER_TO_PID8 = {"male": "M", "female": "F", "other": "O", "unknown": "U"}

# Patient search (by INS): the parameters applied, as the CapabilityStatement declares them.
SEARCH_PARAMS = ["identifier", "_id"]


def subject_reference(cx: str) -> Reference:
    rid = fdt.patient_resource_id(cx)
    return Reference(
        reference=f"Patient/{rid}" if rid else None,
        type="Patient",
        identifier=fdt.patient_identifier(cx),
    )


# ---------------------------------------------------------------------------------------------
# sourcePatientId / sourcePatientInfo <-> contained Patient
# ---------------------------------------------------------------------------------------------


def _pid(info: list[str], n: int) -> list[str]:
    prefix = f"PID-{n}|"
    out: list[str] = []
    for value in info:
        if value.startswith(prefix):
            out += [v for v in value[len(prefix) :].split("~") if v]
    return out


def source_patient(source_patient_id: str | None, info: list[str], rid: str) -> Patient | None:
    identifiers: list[Identifier] = []
    seen: set[tuple[str | None, str | None]] = set()
    for cx in ([source_patient_id] if source_patient_id else []) + _pid(info, 3):
        ident = fdt.patient_identifier(cx)
        if ident is not None and (ident.system, ident.value) not in seen:
            seen.add((ident.system, ident.value))
            identifiers.append(ident)
    names = []
    for xpn in _pid(info, 5):
        p = (xpn.split("^") + [""] * 5)[:5]
        family, given, middle, suffix, prefix = p
        if family or given:
            names.append(
                HumanName(
                    family=family or None,
                    given=[g for g in (given, middle) if g] or None,
                    suffix=[suffix] if suffix else None,
                    prefix=[prefix] if prefix else None,
                )
            )
    birth = next((b for b in _pid(info, 7) if not dt.check_dtm(b)), None)
    sex = next(iter(_pid(info, 8)), None)
    addresses = []
    for xad in _pid(info, 11):
        p = (xad.split("^") + [""] * 6)[:6]
        street, other, city, state, zip_code, country = p
        lines: list[str | None] = [x for x in (street, other) if x]
        if any(p):
            addresses.append(
                Address(
                    line=lines or None,
                    city=city or None,
                    state=state or None,
                    postalCode=zip_code or None,
                    country=country or None,
                )
            )
    if not (identifiers or names or birth or sex or addresses):
        return None
    return Patient(
        id=rid,
        identifier=identifiers or None,
        name=names or None,
        birthDate=_birth_date(birth) if birth else None,
        gender=_GENDER_TO_FHIR.get(sex or ""),
        address=addresses or None,
    )


def _birth_date(dtm: str) -> fdt.FhirText:
    return fdt.fhir_datetime(dtm[:8])


def source_patient_of(patient: Patient) -> tuple[str | None, list[str]]:
    """A contained Patient -> (sourcePatientId CX or None, sourcePatientInfo values)."""
    cxs = []
    for ident in patient.identifier or []:
        try:
            cxs.append(fdt.cx_of(ident.system, ident.value))
        except ValueError:
            continue  # a local identifier without an OID authority has no CX form
    info: list[str] = []
    if cxs:
        info.append("PID-3|" + "~".join(cxs))
    xpns = []
    for name in patient.name or []:
        given = fdt.texts(name.given)
        parts = [
            fdt.hl7_text(name.family or ""),
            fdt.hl7_text(given[0]) if given else "",
            fdt.hl7_text(" ".join(given[1:])),
            fdt.hl7_text(" ".join(fdt.texts(name.suffix))),
            fdt.hl7_text(" ".join(fdt.texts(name.prefix))),
        ]
        if xpn := fdt.hl7_join(parts):
            xpns.append(xpn)
    if xpns:
        info.append("PID-5|" + "~".join(xpns))
    if patient.birthDate:
        info.append(f"PID-7|{fdt.dtm_from_fhir(patient.birthDate)}")
    if patient.gender in _GENDER_TO_PID8:
        info.append(f"PID-8|{_GENDER_TO_PID8[patient.gender]}")
    xads = []
    for addr in patient.address or []:
        lines = fdt.texts(addr.line)
        parts = [
            fdt.hl7_text(lines[0]) if lines else "",
            fdt.hl7_text(" ".join(lines[1:])),
            fdt.hl7_text(addr.city or ""),
            fdt.hl7_text(addr.state or ""),
            fdt.hl7_text(addr.postalCode or ""),
            fdt.hl7_text(addr.country or ""),
        ]
        if xad := fdt.hl7_join(parts):
            xads.append(xad)
    if xads:
        info.append("PID-11|" + "~".join(xads))
    return (cxs[0] if cxs else None), info


# ---------------------------------------------------------------------------------------------
# Patient resources (read and search)
# ---------------------------------------------------------------------------------------------


def patient_resource(cx: str, row: PatientRow | None) -> Patient:
    rid = fdt.patient_resource_id(cx)
    ident = fdt.patient_identifier(cx)
    names = None
    birth = gender = None
    link = None
    if row is not None:
        if row.family_name or row.given_name:
            names = [
                HumanName(family=row.family_name or None, given=[row.given_name] if row.given_name else None)
            ]
        if row.birth_date and not dt.check_dtm(row.birth_date):
            birth = _birth_date(row.birth_date)
        gender = _GENDER_TO_FHIR.get(row.sex or "")
        if row.merged_into:
            survivor = fdt.patient_resource_id(row.merged_into)
            link = [
                PatientLink(
                    other=Reference(reference=f"Patient/{survivor}" if survivor else None),
                    type="replaced-by",
                )
            ]
    return Patient(
        id=rid,
        identifier=[ident] if ident else None,
        active=row is None or row.merged_into is None,
        name=names,
        birthDate=birth,
        gender=gender,
        link=link,
    )


def read(session: Session, cx: str) -> Patient | None:
    """The Patient for ``cx``: known to the registry (ITI-8, CLI), or met in its documents
    (deployments that accept any patient); None when Carnet knows nothing of it."""
    row = patients.get(session, cx)
    if row is None:
        has_documents = session.scalar(
            select(DocumentEntryRow.entry_uuid).where(DocumentEntryRow.patient_id == cx).limit(1)
        )
        if not has_documents:
            return None
    return patient_resource(cx, row)
