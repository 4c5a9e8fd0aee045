"""One registry, two bindings: documents submitted by XDS are found and retrieved through FHIR with
the same metadata, and documents submitted by FHIR are the same DocumentEntries to ITI-18 / ITI-43
and read back through FHIR as they were sent."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from typing import Any

from lxml import etree

from carnet.soap import mtom
from carnet.xds import vocabulary as v
from tests.builders import Doc as XdsDoc
from tests.builders import provide_and_register, retrieve_request
from tests.fhir_helpers import (
    CCAM,
    Doc,
    known_patients,
    patient_cx,
    patient_id,
    post_bundle,
    provide_bundle,
    submitted_ids,
)
from tests.xds import envelope, query, response_status

REPO = "1.2.250.1.999.1.1.1"
RIM = {"rim": v.RIM}
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


def iti41(client: Any, body: str) -> tuple[str, list[Any]]:
    resp = client.post(
        "/xds/repository",
        data=envelope(v.ACTION_ITI41, body),
        content_type="application/soap+xml; charset=UTF-8",
    )
    return response_status(etree.fromstring(resp.data).find(f"{{{v.SOAP12}}}Body")[0])


def iti43(client: Any, unique_id: str) -> bytes:
    resp = client.post(
        "/xds/repository",
        data=envelope(v.ACTION_ITI43, retrieve_request([(REPO, unique_id)])),
        content_type="application/soap+xml; charset=UTF-8",
    )
    msg = mtom.read_multipart(io.BytesIO(resp.data), resp.content_type)
    root = etree.fromstring(msg.root.read())
    parts = mtom.resolve_xop(root, msg)
    doc = root.find(f".//{{{v.XDSB}}}Document")
    data: bytes = parts[doc].read()
    return data


def test_xds_submission_is_found_and_retrieved_through_fhir(client: Any, engine: Any) -> None:
    known_patients(engine, 1)
    content = b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>"
    doc = XdsDoc("Doc1", content, mime_type="text/xml", creation_time="20240115103000")
    assert iti41(client, provide_and_register(patient_cx(1), [doc])) == ("Success", [])

    bundle = json.loads(client.get(f"/fhir/DocumentReference?patient={patient_id(1)}&status=current").data)
    assert bundle["total"] == 1
    dr = bundle["entry"][0]["resource"]
    assert dr["masterIdentifier"] == {
        "use": "usual",
        "system": "urn:ietf:rfc:3986",
        "value": f"urn:oid:{doc.unique_id}",
    }
    assert dr["status"] == "current"
    assert dr["subject"]["identifier"] == {
        "system": "urn:oid:1.2.250.1.213.1.4.10",
        "value": patient_cx(1).split("^")[0],
    }
    loinc = "http://loinc.org"
    assert dr["category"] == [
        {"coding": [{"system": loinc, "code": "11488-4", "display": "Compte rendu de consultation"}]}
    ]
    assert dr["type"]["coding"][0]["code"] == "11488-4"
    assert dr["securityLabel"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                    "code": "N",
                    "display": "Normal",
                }
            ]
        }
    ]
    content_el = dr["content"][0]
    assert content_el["format"] == {
        "system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
        "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
        "display": "Format",
    }
    att = content_el["attachment"]
    assert att["contentType"] == "text/xml" and att["language"] == "fr-FR" and att["size"] == len(content)
    assert base64.b64decode(att["hash"]) == hashlib.sha1(content).digest()  # hex in XDS, raw base64 in FHIR
    assert att["creation"] == "2024-01-15T10:30:00Z" and att["title"] == "Document Doc1"
    ctx = dr["context"]
    assert ctx["period"] == {"start": "2024-01-15T09:00:00Z", "end": "2024-01-15T10:00:00Z"}
    nos = "https://mos.esante.gouv.fr/NOS"
    assert ctx["facilityType"]["coding"][0] == {
        "system": f"{nos}/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite",
        "code": "SA01",
        "display": "Etablissement public de sante",
    }
    assert (
        ctx["practiceSetting"]["coding"][0]["system"]
        == f"{nos}/TRE_A01-CadreExercice/FHIR/TRE-A01-CadreExercice"
    )
    assert ctx["event"][0]["coding"][0]["code"] == "GENERALISTE"
    contained = {r["id"]: r for r in dr["contained"]}
    source = contained[ctx["sourcePatientInfo"]["reference"][1:]]
    assert source["name"] == [{"family": "TEST", "given": ["Synthetique"]}]
    assert source["birthDate"] == "1970-01-01" and source["gender"] == "female"
    role = contained[dr["author"][0]["reference"][1:]]
    assert role["resourceType"] == "PractitionerRole"
    person = contained[role["practitioner"]["reference"][1:]]
    assert person["identifier"] == [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "801234567890"}]
    assert person["name"] == [{"family": "MEDECIN", "given": ["Alice"], "prefix": ["Dr"]}]
    org = contained[role["organization"]["reference"][1:]]
    assert org == {
        "resourceType": "Organization",
        "id": org["id"],
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "123456789"}],
        "name": "Hopital Test",
    }
    assert role["specialty"][0]["coding"][0]["code"] == "G15_10/SM26"
    # ITI-68 serves the very bytes ITI-43 serves.
    retrieved = client.get(att["url"].replace("http://localhost", ""))
    assert retrieved.data == content == iti43(client, doc.unique_id)
    # The SubmissionSet as a List.
    sets = json.loads(client.get(f"/fhir/List?patient={patient_id(1)}&code=submissionset").data)
    ss = sets["entry"][0]["resource"]
    assert ss["date"] == "2024-01-15T11:00:00Z" and ss["title"] == "Soumission test"
    assert ss["entry"] == [{"item": {"reference": f"DocumentReference/{dr['id']}"}}]


def _leaf(client: Any, unique_id: str) -> etree._Element:
    answer = query(client, GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", [f"('{unique_id}')"])])
    assert answer.status == "Success" and len(answer.documents) == 1, answer.errors
    return answer.documents[0]


def _slots(eo: etree._Element) -> dict[str, list[str]]:
    return {
        s.get("name"): [x.text for x in s.iterfind("rim:ValueList/rim:Value", RIM)]
        for s in eo.iterfind("rim:Slot", RIM)
    }


def _codes(eo: etree._Element, scheme: str) -> list[tuple[str, str]]:
    return [
        (cl.get("nodeRepresentation"), cl.find("rim:Slot/rim:ValueList/rim:Value", RIM).text)
        for cl in eo.iterfind("rim:Classification", RIM)
        if cl.get("classificationScheme") == scheme
    ]


def test_fhir_submission_is_the_same_document_entry_to_xds(client: Any, engine: Any) -> None:
    known_patients(engine, 1)
    doc = Doc(
        content=b"%PDF-1.4 synthetic",
        mime="application/pdf",
        events=[(CCAM, "ZBQK002")],
        security=[
            ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N"),
            (
                "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument",
                "MASQUE_PS",
            ),
        ],  # fmt: skip
        related=[("urn:oid:1.2.250.1.999.5", "ACC-77", "urn:ihe:iti:xds:2013:accession")],
        description="Compte rendu opératoire",
    )
    resp = post_bundle(client, provide_bundle(1, [doc]))
    assert resp.status_code == 200, resp.data
    eo = _leaf(client, doc.unique_id)
    slots = _slots(eo)
    assert eo.get("mimeType") == "application/pdf" and eo.get("status") == v.APPROVED
    assert slots["creationTime"] == ["20240115093000"]  # 10:30+01:00
    assert slots["serviceStartTime"] == ["20240115080000"] and slots["serviceStopTime"] == ["20240115090000"]
    assert slots["hash"] == [hashlib.sha1(doc.content).hexdigest()] and slots["size"] == [
        str(len(doc.content))
    ]
    assert slots["repositoryUniqueId"] == [REPO] and slots["languageCode"] == ["fr-FR"]
    assert slots["sourcePatientId"] == ["IPP-42^^^&1.2.3.4.5&ISO"]
    assert set(slots["sourcePatientInfo"]) == {
        "PID-3|IPP-42^^^&1.2.3.4.5&ISO",
        "PID-5|TEST^Synthetique",
        "PID-7|19700101",
        "PID-8|F",
    }
    assert slots["legalAuthenticator"] == ["801234567890^MEDECIN^Alice^^^Dr^^^&1.2.250.1.71.4.2.1&ISO"]
    assert slots["urn:ihe:iti:xds:2013:referenceIdList"] == [
        "ACC-77^^^&1.2.250.1.999.5&ISO^urn:ihe:iti:xds:2013:accession"
    ]
    assert _codes(eo, v.DE_CLASS_CODE) == [("10", "1.2.250.1.213.1.1.4.1")]
    assert _codes(eo, v.DE_TYPE_CODE) == [("11488-4", "2.16.840.1.113883.6.1")]
    assert _codes(eo, v.DE_FORMAT_CODE) == [("urn:ihe:iti:xds-sd:text:2008", "1.3.6.1.4.1.19376.1.2.3")]
    assert _codes(eo, v.DE_HCFT_CODE) == [("SA01", "1.2.250.1.71.4.2.4")]
    assert _codes(eo, v.DE_PRACTICE_SETTING_CODE) == [("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9")]
    assert sorted(_codes(eo, v.DE_CONFIDENTIALITY_CODE)) == [
        ("MASQUE_PS", "1.2.250.1.213.1.1.4.13"),
        ("N", "2.16.840.1.113883.5.25"),
    ]
    assert _codes(eo, v.DE_EVENT_CODE) == [("ZBQK002", "1.2.250.1.213.2.5")]
    author = [
        cl for cl in eo.iterfind("rim:Classification", RIM) if cl.get("classificationScheme") == v.DE_AUTHOR
    ][0]
    author_slots = _slots(author)
    assert author_slots["authorPerson"] == ["801234567890^MEDECIN^Alice^^^Dr^^^&1.2.250.1.71.4.2.1&ISO"]
    assert author_slots["authorInstitution"] == ["Hopital Test^^^^^&1.2.250.1.71.4.2.2&ISO^^^^123456789"]
    assert author_slots["authorSpecialty"] == ["G15_10/SM26^^1.2.250.1.213.1.1.4.5"]
    assert eo.find("rim:Description/rim:LocalizedString", RIM).get("value") == "Compte rendu opératoire"
    assert iti43(client, doc.unique_id) == doc.content


def test_fhir_submission_reads_back_as_sent(client: Any, engine: Any) -> None:
    """FHIR -> XDS -> FHIR: what XDS holds comes back unchanged (ids and server-set elements aside)."""
    known_patients(engine, 1)
    doc = Doc(
        events=[(CCAM, "DEQP003")],
        related=[("urn:oid:1.2.250.1.999.5", "ORD-1", "urn:ihe:iti:xds:2013:order")],
    )
    bundle = provide_bundle(1, [doc])
    sent = bundle["entry"][1]["resource"]
    resp = post_bundle(client, bundle)
    got = json.loads(
        client.get(f"/fhir/DocumentReference/{submitted_ids(resp)['DocumentReference'][0]}").data
    )
    for key in ("masterIdentifier", "status", "type", "category", "securityLabel", "description"):
        assert got.get(key) == sent.get(key), key
    assert got["subject"]["reference"] == sent["subject"]["reference"]
    sent_att, got_att = sent["content"][0]["attachment"], got["content"][0]["attachment"]
    for key in ("contentType", "language", "size", "hash", "title"):
        assert got_att[key] == sent_att[key], key
    assert got_att["creation"] == "2024-01-15T09:30:00Z"  # the same instant, in UTC
    assert got["content"][0]["format"] == sent["content"][0]["format"]
    for key in ("event", "facilityType", "practiceSetting", "related", "period"):
        assert got["context"][key] == sent["context"][key], key
    contained = {r["id"]: r for r in got["contained"]}
    role = contained[got["author"][0]["reference"][1:]]
    sent_role = {r["id"]: r for r in sent["contained"]}["author"]
    assert role["specialty"] == sent_role["specialty"]
    person = contained[role["practitioner"]["reference"][1:]]
    sent_person = {r["id"]: r for r in sent["contained"]}["author-person"]
    assert person["identifier"] == sent_person["identifier"] and person["name"] == sent_person["name"]
    source = contained[got["context"]["sourcePatientInfo"]["reference"][1:]]
    sent_source = {r["id"]: r for r in sent["contained"]}["source-patient"]
    for key in ("identifier", "name", "birthDate", "gender"):
        assert source[key] == sent_source[key], key
