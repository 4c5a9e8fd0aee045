"""ITI-65 Provide Document Bundle behaviour on bundles built for the purpose: formats, hashes,
references, replacement, folders, patients, atomicity, security seams and audit."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.reference import Reference

from carnet.registry.validate.datatypes import check_oid
from tests.fhir_helpers import (
    Doc,
    audit_rows,
    counts,
    issue_texts,
    issues,
    known_patients,
    patient_cx,
    patient_id,
    post_bundle,
    provide_bundle,
    submitted_ids,
)

META = "XDSRegistryMetadataError"


@pytest.fixture
def patient(engine: Any) -> int:
    known_patients(engine, 1, 2)
    return 1


def _read(client: Any, rtype: str, rid: str) -> dict[str, Any]:
    resp = client.get(f"/fhir/{rtype}/{rid}")
    assert resp.status_code == 200, resp.data
    data: dict[str, Any] = json.loads(resp.data)
    return data


def _retrieve(client: Any, url: str) -> Any:
    return client.get(url.replace("http://localhost", ""))


def test_accepted_bundle_answers_in_order_and_stores_the_bytes(client: Any, patient: int) -> None:
    docs = [Doc(content=b"premier"), Doc(content=b"second document", mime="application/pdf")]
    bundle = provide_bundle(patient, docs)
    resp = post_bundle(client, bundle)
    assert resp.status_code == 200, resp.data
    answer = json.loads(resp.data)
    assert answer["type"] == "transaction-response"
    locations = [e["response"]["location"].split("/")[0] for e in answer["entry"]]
    assert locations == ["List", "DocumentReference", "DocumentReference", "Binary", "Binary"]
    assert all(e["response"]["status"] == "201 Created" for e in answer["entry"])
    ids = submitted_ids(resp)
    for rid, doc in zip(ids["DocumentReference"], docs, strict=True):
        dr = _read(client, "DocumentReference", rid)
        att = dr["content"][0]["attachment"]
        assert att["url"] == f"http://localhost/fhir/Binary/{ids['Binary'][docs.index(doc)]}"
        got = _retrieve(client, att["url"])
        assert got.status_code == 200 and got.data == doc.content and got.content_type == doc.mime
        assert att["hash"] == base64.b64encode(hashlib.sha1(doc.content).digest()).decode()
        assert att["size"] == len(doc.content)


def test_xml_bundle_and_xml_answer(client: Any, patient: int) -> None:
    bundle = Bundle.model_validate(provide_bundle(patient, [Doc()]))
    resp = client.post(
        "/fhir",
        data=bundle.model_dump_xml(),
        content_type="application/fhir+xml",
        headers={"Accept": "application/fhir+xml"},
    )
    assert resp.status_code == 200, resp.data
    assert resp.content_type.startswith("application/fhir+xml")
    answer = Bundle.model_validate_xml(resp.data)
    assert answer.type == "transaction-response" and len(answer.entry or []) == 3


@pytest.mark.parametrize(
    ("form", "accepted"),
    [
        ("raw-base64", True),  # base64 of the 20-byte digest (FHIR, MHD master)
        ("hex-base64", True),  # base64 of the 40 hex digits (every MHD 4.2.3 example)
        ("hex", True),  # the XDS hex itself, as some senders put it
        ("wrong", False),
        ("not-a-sha1", False),
    ],
)
def test_hash_forms(client: Any, patient: int, engine: Any, settings: Any, form: str, accepted: bool) -> None:
    content = b"Hello World"
    digest = hashlib.sha1(content).digest()
    value = {
        "raw-base64": base64.b64encode(digest).decode(),
        "hex-base64": base64.b64encode(digest.hex().encode()).decode(),
        "hex": digest.hex(),
        "wrong": base64.b64encode(hashlib.sha1(b"other").digest()).decode(),
        "not-a-sha1": base64.b64encode(b"short").decode(),
    }[form]
    before = counts(engine, settings.blob_dir)
    resp = post_bundle(client, provide_bundle(patient, [Doc(content=content, hash=value)]))
    if accepted:
        assert resp.status_code == 200, resp.data
        dr = _read(client, "DocumentReference", submitted_ids(resp)["DocumentReference"][0])
        assert dr["content"][0]["attachment"]["hash"] == base64.b64encode(digest).decode()
    else:
        assert resp.status_code == 400
        assert issues(resp) == [
            ("XDSRepositoryMetadataError", "Bundle.entry[1].resource.content[0].attachment.hash")
        ]
        assert counts(engine, settings.blob_dir) == before


def test_size_mismatch_and_missing_hash_size(client: Any, patient: int) -> None:
    resp = post_bundle(client, provide_bundle(patient, [Doc(content=b"abc", size=4)]))
    assert issues(resp) == [
        ("XDSRepositoryMetadataError", "Bundle.entry[1].resource.content[0].attachment.size")
    ]
    # Without hash and size the repository computes them (ITI-41 rules).
    resp = post_bundle(client, provide_bundle(patient, [Doc(content=b"abc", size=None, hash=None)]))
    assert resp.status_code == 200, resp.data
    dr = _read(client, "DocumentReference", submitted_ids(resp)["DocumentReference"][0])
    assert dr["content"][0]["attachment"]["size"] == 3


def test_attachment_url_must_name_a_binary_of_the_bundle(
    client: Any, patient: int, engine: Any, settings: Any
) -> None:
    doc = Doc()
    bundle = provide_bundle(patient, [doc])
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["url"] = "http://elsewhere.example/doc.txt"
    before = counts(engine, settings.blob_dir)
    resp = post_bundle(client, bundle)
    assert set(issues(resp)) == {
        ("XDSMissingDocument", "Bundle.entry[1].resource.content[0].attachment.url"),
        ("XDSMissingDocumentMetadata", "Bundle.entry[2]"),  # the Binary nobody points at
    }
    assert counts(engine, settings.blob_dir) == before


def test_binary_content_type_must_match(client: Any, patient: int) -> None:
    bundle = provide_bundle(patient, [Doc(mime="text/plain")])
    bundle["entry"][2]["resource"]["contentType"] = "application/pdf"
    resp = post_bundle(client, bundle)
    assert issues(resp) == [
        ("XDSRepositoryMetadataError", "Bundle.entry[1].resource.content[0].attachment.contentType")
    ]


def test_request_url_names_the_resource_type(client: Any, patient: int, engine: Any, settings: Any) -> None:
    before = counts(engine, settings.blob_dir)
    bundle = provide_bundle(patient, [Doc()])
    bundle["entry"][1]["request"]["url"] = "Observation"
    resp = post_bundle(client, bundle)
    assert issues(resp) == [(META, "Bundle.entry[1].request.url")]
    assert "does not name the entry's resource type DocumentReference" in issue_texts(resp)
    assert counts(engine, settings.blob_dir) == before
    # Absolute URLs under this server's base name the type as well.
    bundle = provide_bundle(patient, [Doc()])
    bundle["entry"][1]["request"]["url"] = "http://localhost/fhir/DocumentReference"
    assert post_bundle(client, bundle).status_code == 200


def test_every_document_reference_is_in_the_submission_set(client: Any, patient: int) -> None:
    bundle = provide_bundle(patient, [Doc(), Doc()])
    del bundle["entry"][0]["resource"]["entry"][1]
    resp = post_bundle(client, bundle)
    assert issues(resp) == [(META, "Bundle.entry[2]")]
    assert "is not an entry.item of the SubmissionSet List" in issue_texts(resp)


def test_one_patient_per_submission(client: Any, patient: int) -> None:
    bundle = provide_bundle(patient, [Doc()])
    bundle["entry"][1]["resource"]["subject"] = {"reference": f"Patient/{patient_id(2)}"}
    resp = post_bundle(client, bundle)
    assert issues(resp) == [("XDSPatientIdDoesNotMatch", "Bundle.entry[1]")]


def test_unknown_patient(client: Any, engine: Any) -> None:
    resp = post_bundle(client, provide_bundle(7, [Doc()]))
    assert resp.status_code == 400
    assert issues(resp) == [("XDSUnknownPatientId", "")]


@pytest.mark.parametrize(
    "subject",
    [
        {"reference": f"Patient?identifier=urn:oid:1.2.250.1.213.1.4.10|{patient_cx(1).split('^')[0]}"},
        {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": patient_cx(1).split("^")[0]}},
        {"reference": f"http://localhost/fhir/Patient/{patient_id(1)}"},
    ],
    ids=["conditional", "identifier", "absolute"],
)
def test_patient_reference_forms(client: Any, patient: int, subject: dict[str, Any]) -> None:
    resp = post_bundle(client, provide_bundle(Reference.model_validate(subject), [Doc()]))
    assert resp.status_code == 200, resp.data
    dr = _read(client, "DocumentReference", submitted_ids(resp)["DocumentReference"][0])
    assert dr["subject"]["reference"] == f"Patient/{patient_id(1)}"
    assert dr["subject"]["identifier"] == {
        "system": "urn:oid:1.2.250.1.213.1.4.10",
        "value": patient_cx(1).split("^")[0],
    }


def test_patient_of_the_bundle(client: Any, patient: int) -> None:
    bundle = provide_bundle(Reference(reference="urn:uuid:0b8b1f9e-1c5a-4c4e-9d7e-3f1f5c2d4a6b"), [Doc()])
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:0b8b1f9e-1c5a-4c4e-9d7e-3f1f5c2d4a6b",
            "resource": {
                "resourceType": "Patient",
                "identifier": [
                    {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": patient_cx(1).split("^")[0]}
                ],
            },
            "request": {"method": "POST", "url": "Patient"},
        }
    )
    resp = post_bundle(client, bundle)
    assert resp.status_code == 200, resp.data
    last = json.loads(resp.data)["entry"][-1]["response"]
    assert last["status"] == "200 OK" and last["location"] == f"Patient/{patient_id(1)}"


def test_replacement_deprecates_and_carries_folder_membership(client: Any, patient: int) -> None:
    first = post_bundle(client, provide_bundle(patient, [Doc(content=b"v1")], folder={"title": "Suivi"}))
    assert first.status_code == 200, first.data
    ids = submitted_ids(first)
    old_id, folder_id = ids["DocumentReference"][0], ids["List"][1]
    replacement = Doc(content=b"v2", relates_to=[("replaces", f"DocumentReference/{old_id}")])
    resp = post_bundle(
        client, provide_bundle(patient, [replacement], patches=[f"DocumentReference/{old_id}"])
    )
    assert resp.status_code == 200, resp.data
    new_id = submitted_ids(resp)["DocumentReference"][0]
    patch_answer = json.loads(resp.data)["entry"][2]["response"]
    assert patch_answer == {**patch_answer, "status": "200 OK", "location": f"DocumentReference/{old_id}"}
    assert _read(client, "DocumentReference", old_id)["status"] == "superseded"
    new = _read(client, "DocumentReference", new_id)
    assert new["relatesTo"] == [{"code": "replaces", "target": {"reference": f"DocumentReference/{old_id}"}}]
    members = {e["item"]["reference"] for e in _read(client, "List", folder_id)["entry"]}
    assert f"DocumentReference/{new_id}" in members  # RPLC carries the folder membership over
    # The replaced document's URL now answers 410 Gone (ITI-68).
    old_url = _read(client, "DocumentReference", old_id)["content"][0]["attachment"]["url"]
    assert _retrieve(client, old_url).status_code == 410
    # Replacing it again is refused: it is no longer current.
    again = Doc(content=b"v3", relates_to=[("replaces", f"DocumentReference/{old_id}")])
    resp = post_bundle(client, provide_bundle(patient, [again]))
    assert issues(resp) == [("XDSRegistryDeprecatedDocumentError", "Bundle.entry[1].resource.relatesTo")]


def test_replaces_and_transforms_the_same_document_is_xfrm_rplc(client: Any, patient: int) -> None:
    old_id = submitted_ids(post_bundle(client, provide_bundle(patient, [Doc()])))["DocumentReference"][0]
    target = f"DocumentReference/{old_id}"
    resp = post_bundle(
        client, provide_bundle(patient, [Doc(relates_to=[("replaces", target), ("transforms", target)])])
    )
    assert resp.status_code == 200, resp.data
    new = _read(client, "DocumentReference", submitted_ids(resp)["DocumentReference"][0])
    assert new["relatesTo"] == [{"code": "replaces", "target": {"reference": target}}]
    assert _read(client, "DocumentReference", old_id)["status"] == "superseded"


def test_patch_entry_must_match_a_replacement(client: Any, patient: int) -> None:
    old_id = submitted_ids(post_bundle(client, provide_bundle(patient, [Doc()])))["DocumentReference"][0]
    resp = post_bundle(client, provide_bundle(patient, [Doc()], patches=[f"DocumentReference/{old_id}"]))
    assert issues(resp) == [(META, "Bundle.entry[2].request.url")]
    assert "no DocumentReference of the bundle replaces it" in issue_texts(resp)


def test_folder_update_adds_documents_only(client: Any, patient: int) -> None:
    first = post_bundle(client, provide_bundle(patient, [Doc()], folder={"title": "Grossesse"}))
    ids = submitted_ids(first)
    folder_id, doc1 = ids["List"][1], ids["DocumentReference"][0]
    folder = _read(client, "List", folder_id)
    new = Doc()
    bundle = provide_bundle(patient, [new])
    put = dict(folder)
    put.pop("meta")
    put["entry"] = [
        {"item": {"reference": f"DocumentReference/{doc1}"}},
        {"item": {"reference": new.full_url}},
    ]
    bundle["entry"].insert(2, {"fullUrl": "urn:uuid:5d1e8d55-7c1b-4b55-9d2e-7a7e2c1a9f01", "resource": put,
                              "request": {"method": "PUT", "url": f"List/{folder_id}"}})  # fmt: skip
    resp = post_bundle(client, bundle)
    assert resp.status_code == 200, resp.data
    assert json.loads(resp.data)["entry"][2]["response"]["status"] == "200 OK"
    doc2 = submitted_ids(resp)["DocumentReference"][0]
    members = [e["item"]["reference"] for e in _read(client, "List", folder_id)["entry"]]
    assert sorted(members) == sorted([f"DocumentReference/{doc1}", f"DocumentReference/{doc2}"])
    # Removing a member is refused.
    put["entry"] = [{"item": {"reference": f"DocumentReference/{doc2}"}}]
    bundle = provide_bundle(patient, [Doc()])
    bundle["entry"].insert(2, {"resource": put, "request": {"method": "PUT", "url": f"List/{folder_id}"}})
    resp = post_bundle(client, bundle)
    assert (META, "Bundle.entry[2].resource.entry") in issues(resp)


def test_registry_refusal_changes_nothing(client: Any, patient: int, engine: Any, settings: Any) -> None:
    """A failure found inside the write transaction (a uniqueId taken by another document with other
    bytes) rolls everything back and deletes the staged files."""
    doc = Doc(content=b"original")
    assert post_bundle(client, provide_bundle(patient, [doc])).status_code == 200
    before = counts(engine, settings.blob_dir)
    clash = provide_bundle(
        patient, [Doc(content=b"other bytes"), Doc(content=b"fresh", unique_id=doc.unique_id)]
    )
    resp = post_bundle(client, clash)
    assert issues(resp) == [("XDSNonIdenticalHash", "Bundle.entry[2]")]
    assert counts(engine, settings.blob_dir) == before
    assert not list((settings.blob_dir / "tmp").iterdir())


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/fhir+json", 400, "structure"),
        (b'{"resourceType": "Patient"}', "application/fhir+json", 400, "invalid"),
        (
            b'{"resourceType": "Bundle", "type": "batch", "entry": []}',
            "application/fhir+json",
            400,
            "invalid",
        ),
        (b'{"resourceType": "Frobnicate"}', "application/fhir+json", 400, "not-supported"),
        (b"<Bundle/>", "application/fhir+xml", 400, "structure"),
        (b"hello", "text/plain", 415, "not-supported"),
        (
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Bundle xmlns="http://hl7.org/fhir"/>',
            "application/fhir+xml",
            400,
            "structure",
        ),
    ],
)
def test_malformed_requests(client: Any, body: bytes, content_type: str, status: int, code: str) -> None:
    resp = client.post("/fhir", data=body, content_type=content_type)
    assert resp.status_code == status
    outcome = json.loads(resp.data)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == code


def test_json_content_type_of_plain_clients_is_accepted(client: Any, patient: int) -> None:
    # fhirpy posts transactions as application/json.
    assert (
        post_bundle(client, provide_bundle(patient, [Doc()]), content_type="application/json").status_code
        == 200
    )


def test_audit_records_success_and_failure(client: Any, patient: int, engine: Any) -> None:
    assert post_bundle(client, provide_bundle(patient, [Doc()])).status_code == 200
    assert post_bundle(client, provide_bundle(patient, [Doc(size=1)])).status_code == 400
    rows = audit_rows(engine, "ITI-65")
    assert [r.outcome for r in rows] == [0, 8]
    assert (
        rows[0].patient_id == patient_cx(1)
        and rows[1].detail
        and "XDSRepositoryMetadataError" in rows[1].detail
    )


def test_refused_without_identity(client: Any, carnet: Any, patient: int) -> None:
    carnet.settings.allow_anonymous = False
    resp = post_bundle(client, provide_bundle(patient, [Doc()]))
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(resp.data)["issue"][0]["code"] == "login"
    carnet.settings.allow_anonymous = True
    # A token this server cannot verify is refused, never trusted (no CARNET_JWT_KEYS here).
    resp = post_bundle(
        client, provide_bundle(patient, [Doc()]), headers={"Authorization": "Bearer abc.def.ghi"}
    )
    assert resp.status_code == 401


def test_uuid_master_identifier_becomes_an_oid(client: Any, patient: int) -> None:
    bundle = provide_bundle(patient, [Doc()])
    bundle["entry"][1]["resource"]["masterIdentifier"]["value"] = (
        "urn:uuid:55555555-5555-4555-8555-555555555555"
    )
    resp = post_bundle(client, bundle)
    assert resp.status_code == 200, resp.data
    dr = _read(client, "DocumentReference", submitted_ids(resp)["DocumentReference"][0])
    uid = dr["masterIdentifier"]["value"].removeprefix("urn:oid:")
    assert uid.startswith("2.25.") and check_oid(uid) is None  # ITU-T X.667: the same UUID as an OID
    assert int(uid.split(".")[2]) == 0x55555555555545558555555555555555
