"""The DocumentEntry metadata a CDA R2 header determines (CI-SIS "lien entre l'en-tête CDA et
les métadonnées XDS", IHE XDS-MS / XD-LAB header mappings).

- uniqueId: ClinicalDocument/id (root, or root^extension)
- patientId: the recordTarget/patientRole/id under an INS authority (else the first id)
- sourcePatientId, sourcePatientInfo: the other patientRole/id (the IPP); PID-3, -5, -7, -8, -11
- typeCode: ClinicalDocument/code; classCode: the typeCode through ASS_X16 (DMP), else ASS_X04
- formatCode: the templateIds through ASS_A11; a level-1 body: its nonXMLBody/text/@mediaType
- confidentialityCode: ClinicalDocument/confidentialityCode
- creationTime: ClinicalDocument/effectiveTime
- serviceStartTime, serviceStopTime: documentationOf/serviceEvent/effectiveTime/low, high
- eventCodeList: documentationOf/serviceEvent/code
- author: author/assignedAuthor, its id and assignedPerson (authorPerson, XCN),
  representedOrganization (authorInstitution, XON) and code (authorSpecialty)
- legalAuthenticator: legalAuthenticator/assignedEntity (XCN)
- healthcareFacilityTypeCode: componentOf/encompassingEncounter/location/healthCareFacility/code
- practiceSettingCode: the standardIndustryClassCode of the serviceEvent performer's
  representedOrganization (else the first one of the header)
- languageCode, title: languageCode, title

Times become XDS DTM in UTC, at the precision the CDA gives. What the header cannot give (a
classCode for an unmapped typeCode, an unknown template) is reported in ``problems`` and left
empty, so the registry's own rules name it when the entry is submitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lxml import etree

from carnet.profiles.terminology import ProfileData, ValueSet
from carnet.xds.model import Author, Code, DocumentEntry

HL7 = "urn:hl7-org:v3"
NS = {"cda": HL7}
INS_ROOTS = ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11", "1.2.250.1.213.1.4.9")
# The national identifier of health professionals (RPPS/ADELI as PS_IdNat) and of structures.
PS_ID_ROOT = "1.2.250.1.71.4.2.1"
CDA_MIME_TYPE = "text/xml"


class CdaError(ValueError):
    """The document is not a CDA R2 ClinicalDocument, or lacks what an entry cannot do without."""


@dataclass
class Derived:
    """A DocumentEntry derived from a CDA header, and what could not be derived."""

    entry: DocumentEntry
    template_ids: list[tuple[str, str | None]]
    problems: list[str] = field(default_factory=list)


def _first(el: etree._Element, path: str) -> etree._Element | None:
    found = el.xpath(path, namespaces=NS)
    return found[0] if found else None


def _code(el: etree._Element | None) -> Code | None:
    if el is None or el.get("nullFlavor") or not el.get("code") or not el.get("codeSystem"):
        return None
    return Code(el.get("code", ""), el.get("codeSystem", ""), el.get("displayName"))


def ts_to_dtm(value: str | None) -> str | None:
    """A CDA TS (YYYYMMDDHHMMSS[.S][+ZZZZ]) as an XDS DTM: in UTC, at the precision given.

    A time without a zone, or one coarser than the hour, cannot be moved to UTC and is kept.
    """
    if not value:
        return None
    text = value.strip()
    zone = None
    for sign in "+-":
        if sign in text[4:]:
            idx = text.index(sign, 4)
            text, zone = text[:idx], text[idx:]
            break
    text = text.split(".")[0]
    if not text.isdigit():
        return None
    if zone is None or len(text) < 10 or len(zone) != 5 or not zone[1:].isdigit():
        return text
    precision = len(text)
    moment = datetime.strptime(text.ljust(14, "0"), "%Y%m%d%H%M%S")
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
    moment = moment - offset if zone[0] == "+" else moment + offset
    return moment.strftime("%Y%m%d%H%M%S")[:precision]


def _cx(id_el: etree._Element) -> str | None:
    root, ext = id_el.get("root"), id_el.get("extension")
    if not root or not ext:
        return None
    return f"{ext}^^^&{root}&ISO"


def _names(person: etree._Element | None) -> tuple[str, str, str]:
    """family, given, prefix of the first name of a person (birth name first when qualified)."""
    if person is None:
        return "", "", ""
    names = person.xpath("cda:name", namespaces=NS)
    if not names:
        return "", "", ""
    name = names[0]
    families = name.xpath("cda:family", namespaces=NS)
    birth = [f for f in families if f.get("qualifier") == "BR"]
    family = (birth or families or [None])[0]
    given = _first(name, "cda:given")
    prefix = _first(name, "cda:prefix")

    def text(e: etree._Element | None) -> str:
        return " ".join((e.text or "").split()) if e is not None else ""

    return text(family), text(given), text(prefix)


def xcn(entity: etree._Element, person_path: str) -> str | None:
    """An XCN from an assignedAuthor / assignedEntity: id (PS_IdNat), family and given names."""
    id_el = _first(entity, "cda:id[@root][@extension]")
    family, given, _ = _names(_first(entity, person_path))
    if id_el is None and not family:
        return None
    xcn_id = id_el.get("extension", "") if id_el is not None else ""
    authority = f"&{id_el.get('root')}&ISO" if id_el is not None else ""
    parts = [xcn_id, family, given, "", "", "", "", "", authority]
    if id_el is not None and id_el.get("root") == PS_ID_ROOT:
        parts += ["D", "", "", "IDNPS"]  # name type Display, identifier type national PS id
    return "^".join(parts).rstrip("^")


def xon(org: etree._Element | None) -> str | None:
    """An XON (name^^^^^&root&ISO^^^^id) from a representedOrganization."""
    if org is None:
        return None
    name = " ".join((org.findtext("cda:name", namespaces=NS) or "").split())
    if not name:
        return None
    id_el = _first(org, "cda:id[@root][@extension]")
    if id_el is None:
        return name
    return f"{name}^^^^^&{id_el.get('root')}&ISO^^^^{id_el.get('extension')}"


def _pid(patient_role: etree._Element, ids: list[str]) -> list[str]:
    info = [f"PID-3|{'~'.join(ids)}"] if ids else []
    patient = _first(patient_role, "cda:patient")
    if patient is None:
        return info
    family, given, _ = _names(patient)
    if family:
        info.append(f"PID-5|{family}^{given}^^^^^L")
    birth = _first(patient, "cda:birthTime")
    if birth is not None and birth.get("value"):
        info.append(f"PID-7|{birth.get('value', '')[:8]}")
    sex = _first(patient, "cda:administrativeGenderCode")
    if sex is not None and sex.get("code") in ("M", "F", "U"):
        info.append(f"PID-8|{sex.get('code')}")
    addr = _first(patient_role, "cda:addr[not(@nullFlavor)]")
    if addr is not None:
        street = " ".join(
            (e.text or "").strip()
            for e in addr.xpath("cda:houseNumber|cda:streetName|cda:streetAddressLine", namespaces=NS)
        ).strip()
        city = (addr.findtext("cda:city", namespaces=NS) or "").strip()
        zip_ = (addr.findtext("cda:postalCode", namespaces=NS) or "").strip()
        country = (addr.findtext("cda:country", namespaces=NS) or "").strip()
        if street or city or zip_:
            info.append(f"PID-11|{street}^^{city}^^{zip_}^{country}".rstrip("^"))
    return info


def _display(code: Code, *value_sets: ValueSet) -> Code:
    if code.display:
        return code
    for vs in value_sets:
        concept = vs.get(code.code, code.scheme)
        if concept is not None and concept.display_name:
            return Code(code.code, code.scheme, concept.display_name)
    return code


def class_code(data: ProfileData, type_code: Code) -> Code | None:
    """The classCode ASS_X16 (DMP), else ASS_X04 (CI-SIS), gives a typeCode."""
    for map_id in ("ASS_X16", "ASS_X04"):
        targets = data.concept_map(map_id).targets(type_code.code, type_code.scheme)
        if targets:
            t = targets[0]
            return _display(Code(t.code, t.coding_scheme), data.value_set("J57"), data.value_set("J06"))
    return None


def format_code(
    data: ProfileData, template_ids: list[tuple[str, str | None]], media_type: str | None
) -> tuple[Code | None, str | None]:
    """The formatCode of a CDA: by mediaType for a level-1 body, else by its templateIds."""
    names = (data.value_set("J60"), data.value_set("J10"))
    a11 = data.concept_map("ASS_A11")
    if media_type is not None:
        code = data.cda.media_type_format_codes.get(media_type)
        if code is None:
            known = ", ".join(sorted(data.cda.media_type_format_codes))
            return None, f"no formatCode for a level-1 body of mediaType '{media_type}' (known: {known})"
        scheme = next((t.coding_scheme for m in a11.mappings for t in [m.target] if t.code == code), "")
        return _display(Code(code, scheme), *names), None
    found: dict[str, Code] = {}
    for root, _ in template_ids:
        for t in a11.targets(root):
            found.setdefault(t.code, Code(t.code, t.coding_scheme))
        extra = data.cda.format_codes.get(root)
        if extra is not None:
            concept = next((c for vs in names for c in vs.with_code(extra)), None)
            found.setdefault(extra, Code(extra, concept.coding_scheme if concept else ""))
    if not found:
        return None, "no templateId of the document is in ASS_A11: the formatCode cannot be derived"
    if len(found) > 1:
        return None, f"the templateIds give several formatCodes ({', '.join(found)}); cannot choose"
    return _display(next(iter(found.values())), *names), None


def derive(root: etree._Element, data: ProfileData) -> Derived:
    """The DocumentEntry a CDA header determines (entryUUID, hash, size and repository left empty)."""
    if root.tag != f"{{{HL7}}}ClinicalDocument":
        raise CdaError(
            f"not a CDA R2 document: the root element is {root.tag}, not {{{HL7}}}ClinicalDocument"
        )
    problems: list[str] = []
    doc_id = _first(root, "cda:id")
    if doc_id is None or not doc_id.get("root"):
        raise CdaError("ClinicalDocument/id (with a root) is required: it is the document's uniqueId")
    unique_id = doc_id.get("root", "") + (f"^{doc_id.get('extension')}" if doc_id.get("extension") else "")

    patient_role = _first(root, "cda:recordTarget/cda:patientRole")
    if patient_role is None:
        raise CdaError("recordTarget/patientRole is required: it names the patient")
    ids = [(i, _cx(i)) for i in patient_role.xpath("cda:id", namespaces=NS)]
    ids = [(i, cx) for i, cx in ids if cx]
    if not ids:
        raise CdaError("recordTarget/patientRole/id with root and extension is required (the INS)")
    ins = sorted(
        (p for p in ids if p[0].get("root") in INS_ROOTS), key=lambda p: INS_ROOTS.index(p[0].get("root"))
    )
    # The INS when there is one (the dmp profile requires it); else the first identifier.
    patient_id = (ins or ids)[0][1]
    others = [cx for _, cx in ids if cx != patient_id]
    assert patient_id is not None

    type_code = _code(_first(root, "cda:code"))
    if type_code is None:
        raise CdaError("ClinicalDocument/code (code and codeSystem) is required: it is the typeCode")
    type_code = _display(type_code, data.value_set("J66"), data.value_set("J07"))
    klass = class_code(data, type_code)
    if klass is None:
        problems.append(
            f"typeCode {type_code.code} ({type_code.scheme}) is in neither ASS_X16 nor ASS_X04: no classCode"
        )

    template_ids = [
        (t.get("root", ""), t.get("extension")) for t in root.xpath("cda:templateId", namespaces=NS)
    ]
    text = _first(root, "cda:component/cda:nonXMLBody/cda:text")
    media_type = text.get("mediaType", "text/plain") if text is not None else None
    fmt, problem = format_code(data, template_ids, media_type)
    if problem:
        problems.append(problem)

    event = _first(root, "cda:documentationOf/cda:serviceEvent")
    confidentiality = _code(_first(root, "cda:confidentialityCode"))
    performer_org = (
        "cda:documentationOf/cda:serviceEvent/cda:performer/cda:assignedEntity/cda:representedOrganization"
    )
    practice = _code(_first(root, f"{performer_org}/cda:standardIndustryClassCode")) or _code(
        _first(root, ".//cda:standardIndustryClassCode[not(ancestor::cda:component)]")
    )
    authors: list[Author] = []
    for a in root.xpath("cda:author/cda:assignedAuthor", namespaces=NS):
        person = xcn(a, "cda:assignedPerson") if _first(a, "cda:assignedPerson") is not None else None
        if person is None:
            device = _first(a, "cda:assignedAuthoringDevice/cda:softwareName")
            id_el = _first(a, "cda:id[@root][@extension]")
            if device is not None and id_el is not None:
                person = (
                    f"{id_el.get('extension')}^{(device.text or '').strip()}^^^^^^^&{id_el.get('root')}&ISO"
                )
        specialty = _code(_first(a, "cda:code"))
        institution = xon(_first(a, "cda:representedOrganization"))
        authors.append(
            Author(
                person=person,
                institutions=[institution] if institution else [],
                specialties=[f"{specialty.code}^{specialty.display or ''}^{specialty.scheme}"]
                if specialty
                else [],
            )
        )
    legal = _first(root, "cda:legalAuthenticator/cda:assignedEntity")
    entry = DocumentEntry(
        entry_uuid="Document01",
        unique_id=unique_id,
        patient_id=patient_id,
        mime_type=CDA_MIME_TYPE,
        title=" ".join((root.findtext("cda:title", namespaces=NS) or "").split()) or None,
        type_code=type_code,
        class_code=klass,
        format_code=fmt,
        confidentiality_codes=[_display(confidentiality, data.value_set("J58"))] if confidentiality else [],
        healthcare_facility_type_code=_code(
            _first(
                root, "cda:componentOf/cda:encompassingEncounter/cda:location/cda:healthCareFacility/cda:code"
            )
        ),
        practice_setting_code=practice,
        event_codes=[
            c
            for c in (
                _code(e) for e in root.xpath("cda:documentationOf/cda:serviceEvent/cda:code", namespaces=NS)
            )
            if c
        ],
        authors=authors,
        creation_time=ts_to_dtm(_attr(root, "cda:effectiveTime/@value")),
        service_start_time=ts_to_dtm(_attr(event, "cda:effectiveTime/cda:low/@value")),
        service_stop_time=ts_to_dtm(_attr(event, "cda:effectiveTime/cda:high/@value")),
        language_code=_attr(root, "cda:languageCode/@code"),
        source_patient_id=others[0] if others else patient_id,
        source_patient_info=_pid(patient_role, [cx for _, cx in ids if cx]),
        legal_authenticator=xcn(legal, "cda:assignedPerson") if legal is not None else None,
    )
    return Derived(entry, template_ids, problems)


def _attr(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.xpath(path, namespaces=NS)
    return str(found[0]) if found else None


def _code_json(code: Code | None) -> dict[str, str | None] | None:
    if code is None:
        return None
    return {"code": code.code, "codingScheme": code.scheme, "displayName": code.display}


def entry_json(de: DocumentEntry) -> dict[str, object]:
    """The entry as one JSON object keyed by the XDS attribute names (``carnet cda metadata``)."""
    return {
        "uniqueId": de.unique_id,
        "patientId": de.patient_id,
        "sourcePatientId": de.source_patient_id,
        "sourcePatientInfo": de.source_patient_info,
        "typeCode": _code_json(de.type_code),
        "classCode": _code_json(de.class_code),
        "formatCode": _code_json(de.format_code),
        "mimeType": de.mime_type,
        "confidentialityCode": [_code_json(c) for c in de.confidentiality_codes],
        "healthcareFacilityTypeCode": _code_json(de.healthcare_facility_type_code),
        "practiceSettingCode": _code_json(de.practice_setting_code),
        "eventCodeList": [_code_json(c) for c in de.event_codes],
        "creationTime": de.creation_time,
        "serviceStartTime": de.service_start_time,
        "serviceStopTime": de.service_stop_time,
        "author": [
            {
                "authorPerson": a.person,
                "authorInstitution": a.institutions,
                "authorRole": a.roles,
                "authorSpecialty": a.specialties,
                "authorTelecommunication": a.telecoms,
            }
            for a in de.authors
        ],
        "legalAuthenticator": de.legal_authenticator,
        "languageCode": de.language_code,
        "title": de.title,
    }
