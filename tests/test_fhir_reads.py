"""ITI-66 Find Document Lists, ITI-68 Retrieve Document, reads by id, Patient, CapabilityStatement."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from carnet.db import write_transaction
from carnet.fhir import iti66, iti67
from carnet.registry import patients
from tests.builders import Doc as XdsDoc
from tests.builders import submit_objects_request
from tests.fhir_helpers import (
    Doc,
    audit_rows,
    issues,
    known_patients,
    nir,
    patient_cx,
    patient_id,
    patient_token,
    post_bundle,
    provide_bundle,
    submitted_ids,
)
from tests.xds import register, response_status


@pytest.fixture
def submitted(client: Any, engine: Any) -> dict[str, str]:
    known_patients(engine, 1, 2)
    resp = post_bundle(
        client, provide_bundle(1, [Doc(content=b"doc A"), Doc(content=b"doc B")], folder={"title": "Suivi"})
    )
    assert resp.status_code == 200, resp.data
    ids = submitted_ids(resp)
    later = post_bundle(client, provide_bundle(2, [Doc()], submission_time="2025-02-02T10:00:00Z"))
    return {
        "ss": ids["List"][0],
        "folder": ids["List"][1],
        "a": ids["DocumentReference"][0],
        "b": ids["DocumentReference"][1],
        "ss2": submitted_ids(later)["List"][0],
    }


def lists(client: Any, query: str) -> list[dict[str, Any]]:
    resp = client.get(f"/fhir/List?{query}")
    assert resp.status_code == 200, resp.data
    return [
        e["resource"]
        for e in json.loads(resp.data).get("entry", [])
        if e["resource"]["resourceType"] == "List"
    ]


def test_find_document_lists(client: Any, submitted: dict[str, str]) -> None:
    both = lists(client, f"patient={patient_id(1)}&status=current")
    assert {x["id"] for x in both} == {submitted["ss"], submitted["folder"]}
    sets = lists(client, f"patient.identifier={patient_token(1)}&code=submissionset&status=current")
    assert [x["id"] for x in sets] == [submitted["ss"]]
    ss = sets[0]
    assert {e["item"]["reference"] for e in ss["entry"]} == {
        f"DocumentReference/{submitted['a']}",
        f"DocumentReference/{submitted['b']}",
        f"List/{submitted['folder']}",
    }
    folders = lists(client, f"patient={patient_id(1)}&code=folder")
    assert [x["id"] for x in folders] == [submitted["folder"]]
    assert {e["item"]["reference"] for e in folders[0]["entry"]} == {
        f"DocumentReference/{submitted['a']}",
        f"DocumentReference/{submitted['b']}",
    }
    assert lists(client, f"patient={patient_id(1)}&code=submissionset&sourceId=urn:oid:1.2.250.1.999.9")
    assert not lists(client, f"patient={patient_id(1)}&code=submissionset&sourceId=urn:oid:1.2.3")
    assert lists(client, f"patient={patient_id(1)}&code=submissionset&designationType=04")
    assert not lists(client, f"patient={patient_id(1)}&code=folder&designationType=99")
    assert lists(client, f"patient={patient_id(1)}&code=submissionset&source.family=medecin&source.given=ali")
    assert not lists(client, f"patient={patient_id(1)}&code=submissionset&source.family=durand")
    assert [
        x["id"] for x in lists(client, f"patient={patient_id(2)}&code=submissionset&date=ge2025-01-01")
    ] == [submitted["ss2"]]
    assert not lists(client, f"patient={patient_id(2)}&code=submissionset&date=lt2025-01-01")
    assert not lists(client, f"patient={patient_id(1)}&isArchived=true")
    by_uid = [i["value"] for i in ss["identifier"] if i["use"] == "usual"][0]
    assert [x["id"] for x in lists(client, f"identifier={by_uid}")] == [submitted["ss"]]
    resp = client.get("/fhir/List?code=folder")
    assert issues(resp) == [("XDSStoredQueryMissingParam", "")]
    assert client.get(f"/fhir/List?patient={patient_id(1)}&code=bogus").status_code == 400


def test_read_list_and_document_reference(client: Any, submitted: dict[str, str]) -> None:
    ss = json.loads(client.get(f"/fhir/List/{submitted['ss']}").data)
    assert (
        ss["code"]["coding"][0]["code"] == "submissionset"
        and ss["subject"]["reference"] == f"Patient/{patient_id(1)}"
    )
    dr = client.get(f"/fhir/DocumentReference/{submitted['a']}")
    assert dr.status_code == 200 and dr.headers["ETag"] == 'W/"1"'
    for path in (
        "/fhir/DocumentReference/not-a-uuid",
        f"/fhir/DocumentReference/{submitted['ss']}",
        "/fhir/List/nope",
    ):
        resp = client.get(path)
        assert resp.status_code == 404 and json.loads(resp.data)["issue"][0]["code"] == "not-found"


def test_retrieve_document(client: Any, engine: Any, submitted: dict[str, str]) -> None:
    dr = json.loads(client.get(f"/fhir/DocumentReference/{submitted['a']}").data)
    url = dr["content"][0]["attachment"]["url"].replace("http://localhost", "")
    resp = client.get(url)
    assert resp.status_code == 200 and resp.data == b"doc A" and resp.content_type == "text/plain"
    assert resp.headers["Content-Length"] == "5"
    assert client.get(url, headers={"Accept": "text/*"}).status_code == 200
    assert client.get(url, headers={"Accept": "application/pdf"}).status_code == 406
    # A FHIR format asks for the Binary resource (FHIR read) rather than the bytes.
    binary = Binary.model_validate_json(client.get(url, headers={"Accept": "application/fhir+json"}).data)
    assert binary.data == b"doc A" and binary.contentType == "text/plain"
    xml = client.get(url + "?_format=xml")
    assert Binary.model_validate_xml(xml.data).data == b"doc A"
    assert client.get("/fhir/Binary/0e8c8f29-b1e6-4fa7-8fcd-b842c0128d42").status_code == 404
    assert client.get("/fhir/Binary/not-an-id").status_code == 404
    row = audit_rows(engine, "ITI-68")[0]
    assert row.action == "R" and row.patient_id == patient_cx(1)


def test_retrieve_serves_the_document_when_its_own_type_is_asked_for(client: Any, engine: Any) -> None:
    """A CDA is text/xml: asking for text/xml gets the CDA, not a FHIR Binary in XML."""
    known_patients(engine, 1)
    cda = b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>'
    ids = submitted_ids(post_bundle(client, provide_bundle(1, [Doc(content=cda, mime="text/xml"), Doc()])))
    urls = [
        json.loads(client.get(f"/fhir/DocumentReference/{i}").data)["content"][0]["attachment"]["url"]
        for i in ids["DocumentReference"]
    ]
    cda_url, text_url = (u.replace("http://localhost", "") for u in urls)
    for accept in ("text/xml", "text/xml, application/fhir+xml;q=0.5", "*/*"):
        resp = client.get(cda_url, headers={"Accept": accept})
        assert (resp.status_code, resp.content_type, resp.data) == (200, "text/xml", cda), accept
    # A generic XML or JSON type that is not the document's own is not a request for FHIR.
    for accept in ("application/xml", "application/json"):
        assert client.get(cda_url, headers={"Accept": accept}).status_code == 406
    assert client.get(text_url, headers={"Accept": "text/xml"}).status_code == 406
    resp = client.get(cda_url, headers={"Accept": "application/fhir+xml"})
    assert resp.content_type.startswith("application/fhir+xml")
    assert Binary.model_validate_xml(resp.data).data == cda


def test_retrieve_is_byte_exact(client: Any, engine: Any) -> None:
    known_patients(engine, 1)
    payload = os.urandom(3 * 1024 * 1024 + 7)
    resp = post_bundle(client, provide_bundle(1, [Doc(content=payload, mime="application/octet-stream")]))
    assert resp.status_code == 200
    got = client.get(f"/fhir/Binary/{submitted_ids(resp)['Binary'][0]}")
    assert got.data == payload


def test_registered_without_a_stored_document_is_not_found(client: Any, engine: Any) -> None:
    """A DocumentEntry registered by ITI-42 alone (its document in another repository)."""
    known_patients(engine, 1)
    doc = XdsDoc("Doc1", b"elsewhere", hash="a" * 40, size=9, repository_unique_id="1.2.3.4.5")
    status, errors = response_status(register(client, submit_objects_request(patient_cx(1), [doc])))
    assert status == "Success", errors
    bundle = json.loads(client.get(f"/fhir/DocumentReference?patient={patient_id(1)}").data)
    url = bundle["entry"][0]["resource"]["content"][0]["attachment"]["url"].replace("http://localhost", "")
    resp = client.get(url)
    assert (
        resp.status_code == 404
        and "not stored in this repository" in json.loads(resp.data)["issue"][0]["diagnostics"]
    )


def test_patient_read_and_search(client: Any, engine: Any, submitted: dict[str, str]) -> None:
    with write_transaction(engine) as session:
        patients.merge(session, patient_cx(1), patient_cx(3))
    p = json.loads(client.get(f"/fhir/Patient/{patient_id(1)}").data)
    assert (
        p["identifier"] == [{"system": "urn:oid:1.2.250.1.213.1.4.10", "value": nir(1)}]
        and p["active"] is True
    )
    merged = json.loads(client.get(f"/fhir/Patient/{patient_id(3)}").data)
    assert merged["active"] is False and merged["link"][0]["other"]["reference"] == f"Patient/{patient_id(1)}"
    assert client.get(f"/fhir/Patient/{patient_id(9)}").status_code == 404
    assert client.get("/fhir/Patient/garbage").status_code == 404
    found = json.loads(client.get(f"/fhir/Patient?identifier={patient_token(2)}").data)
    assert [e["resource"]["id"] for e in found["entry"]] == [patient_id(2)]
    found = json.loads(client.get(f"/fhir/Patient?identifier={nir(2)}").data)  # no system: any authority
    assert [e["resource"]["id"] for e in found["entry"]] == [patient_id(2)]
    assert json.loads(client.get("/fhir/Patient?identifier=urn:oid:1.2.3|nobody").data)["total"] == 0
    assert client.get("/fhir/Patient").status_code == 400
    # A modifier Carnet does not apply is refused, not dropped (it would return the excluded patient).
    resp = client.get(f"/fhir/Patient?identifier={patient_token(1)}&identifier:not={patient_token(1)}")
    assert resp.status_code == 400 and json.loads(resp.data)["issue"][0]["code"] == "not-supported"


def test_patient_with_documents_but_no_feed(client: Any, carnet: Any) -> None:
    """Accept-any-patient deployments: a patient known only by its documents is still a Patient."""
    carnet.settings.accept_any_patient = True
    assert post_bundle(client, provide_bundle(5, [Doc()])).status_code == 200
    p = json.loads(client.get(f"/fhir/Patient/{patient_id(5)}").data)
    assert p["identifier"][0]["value"] == nir(5)


def test_capability_statement_declares_what_is_served(client: Any) -> None:
    cs = CapabilityStatement.model_validate_json(client.get("/fhir/metadata").data)
    assert cs.fhirVersion == "4.0.1" and "application/fhir+xml" in (cs.format or [])
    rest = cs.rest[0]  # type: ignore[index]
    by_type = {r.type: r for r in rest.resource or []}
    assert {i.code for i in by_type["DocumentReference"].interaction or []} == {
        "read",
        "search-type",
        "patch",
    }
    assert {p.name for p in by_type["DocumentReference"].searchParam or []} == set(iti67.SEARCH_PARAMS)
    assert {p.name for p in by_type["List"].searchParam or []} == set(iti66.SEARCH_PARAMS)
    assert [i.code for i in rest.interaction or []] == ["transaction"]
    # Every declared resource type is served (an unknown type is answered "not served here").
    for rtype in (t for t, r in by_type.items() if "read" in {i.code for i in r.interaction or []}):
        resp = client.get(f"/fhir/{rtype}/0e8c8f29-b1e6-4fa7-8fcd-b842c0128d42")
        assert "is not served here" not in json.loads(resp.data)["issue"][0]["diagnostics"], rtype
    assert (
        "is not served here" in json.loads(client.get("/fhir/Observation/x").data)["issue"][0]["diagnostics"]
    )
    assert client.get("/fhir/metadata?_format=xml").content_type.startswith("application/fhir+xml")


def test_the_dmp_resources_and_operations_are_declared(client: Any, engine: Any) -> None:
    """The DMP's Consent, AuditEvent and dossier operations are served under /fhir: the one
    CapabilityStatement of the base declares them, and what it declares answers."""
    rest = CapabilityStatement.model_validate_json(client.get("/fhir/metadata").data).rest[0]  # type: ignore[index]
    by_type = {r.type: r for r in rest.resource or []}
    assert {i.code for i in by_type["Consent"].interaction or []} == {"search-type", "create", "delete"}
    assert {i.code for i in by_type["AuditEvent"].interaction or []} == {"search-type"}
    assert {p.name for p in by_type["AuditEvent"].searchParam or []} >= {"patient", "date"}
    assert sorted(o.name for o in rest.operation or []) == ["dmp-close", "dmp-create", "dmp-reactivate"]
    known_patients(engine, 1)
    for rtype in ("Consent", "AuditEvent"):
        resp = client.get(f"/fhir/{rtype}?patient={patient_token(1)}")
        # No DMP for this patient yet: the search itself answers (404 names the dossier).
        assert resp.status_code in (200, 404) and b"is not served here" not in resp.data, (rtype, resp.data)
    for op in rest.operation or []:
        resp = client.post(f"/fhir/${op.name}", data="{}", content_type="application/fhir+json")
        assert resp.status_code == 400, (op.name, resp.data)  # served: it reads and refuses the body


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("DELETE", "/fhir/DocumentReference/x", 405, "GET, PATCH"),
        ("PUT", "/fhir/DocumentReference/x", 405, "GET, PATCH"),
        ("POST", "/fhir/DocumentReference", 405, "GET, PATCH"),
        ("GET", "/fhir/Observation", 404, None),
        ("DELETE", "/fhir/List/x", 405, "GET"),
        ("POST", "/fhir/Binary/x", 405, "GET"),
        ("GET", "/fhir", 405, "POST"),
        # Interactions Carnet has not at all: the URL names nothing (no Allow that would contradict).
        ("GET", "/fhir/Binary", 404, None),
        ("GET", "/fhir/DocumentReference/x/_history/1", 404, None),
    ],
)
def test_other_interactions_are_refused_precisely(
    client: Any, method: str, path: str, status: int, allow: str | None
) -> None:
    resp = client.open(path, method=method)
    assert resp.status_code == status
    assert resp.headers.get("Allow") == allow
    assert method not in (allow or "")
    assert json.loads(resp.data)["resourceType"] == "OperationOutcome"


def test_metadata_in_a_format_neither_json_nor_xml_is_406(client: Any) -> None:
    resp = client.get("/fhir/metadata?_format=text/html")
    assert resp.status_code == 406 and json.loads(resp.data)["resourceType"] == "OperationOutcome"
