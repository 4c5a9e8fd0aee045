"""PDSm metadata update: (conditional) PATCH DocumentReference, carried out as ITI-57."""

from __future__ import annotations

import json
from typing import Any

import pytest

from carnet.xds import vocabulary as v
from tests.fhir_helpers import (
    CONFIDENTIALITY,
    TRE_A07,
    Doc,
    audit_rows,
    issue_texts,
    issues,
    known_patients,
    patient_cx,
    patient_id,
    post_bundle,
    provide_bundle,
    submitted_ids,
)
from tests.xds import query

JSON_PATCH = "application/json-patch+json"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
IS_ARCHIVED = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-ext-is-archived"


@pytest.fixture
def doc(client: Any, engine: Any) -> dict[str, str]:
    known_patients(engine, 1)
    d = Doc(content=b"a document")
    resp = post_bundle(client, provide_bundle(1, [d]))
    assert resp.status_code == 200, resp.data
    ids = submitted_ids(resp)
    return {"id": ids["DocumentReference"][0], "binary": ids["Binary"][0], "uid": d.unique_id}


def patch(client: Any, path: str, ops: Any, content_type: str = JSON_PATCH) -> Any:
    return client.patch(path, data=json.dumps(ops), content_type=content_type)


def xds_statuses(client: Any, *statuses: str) -> list[str]:
    answer = query(
        client,
        FIND_DOCUMENTS,
        [
            ("$XDSDocumentEntryPatientId", [f"'{patient_cx(1)}'"]),
            ("$XDSDocumentEntryStatus", ["(" + ",".join(f"'{s}'" for s in statuses) + ")"]),
        ],
    )
    return [d.get("status") for d in answer.documents]


def test_archive_and_unarchive(client: Any, doc: dict[str, str], engine: Any) -> None:
    resp = patch(
        client,
        f"/fhir/DocumentReference/{doc['id']}",
        [{"op": "replace", "path": "/extension/0/valueBoolean", "value": True}],
    )
    assert resp.status_code == 200, resp.data
    body = json.loads(resp.data)
    assert body["id"] == doc["id"] and body["status"] == "current"
    assert body["extension"] == [{"url": IS_ARCHIVED, "valueBoolean": True}]
    assert xds_statuses(client, v.DMP_ARCHIVED) == [v.DMP_ARCHIVED]  # the DMP's Archived, through ITI-57
    found = json.loads(client.get(f"/fhir/DocumentReference?patient={patient_id(1)}&isArchived=true").data)
    assert [e["resource"]["id"] for e in found["entry"]] == [doc["id"]]
    assert client.get(f"/fhir/Binary/{doc['binary']}").status_code == 200  # archived is still current
    resp = patch(
        client,
        f"/fhir/DocumentReference/{doc['id']}",
        [{"op": "replace", "path": "/extension/0/valueBoolean", "value": False}],
    )
    assert resp.status_code == 200 and xds_statuses(client, v.APPROVED) == [v.APPROVED]
    row = audit_rows(engine, "ITI-57")[0]
    assert row.action == "U" and row.outcome == 0 and row.patient_id == patient_cx(1)


def test_security_label_is_a_new_version(client: Any, doc: dict[str, str]) -> None:
    ops = [
        {
            "op": "add",
            "path": "/securityLabel/-",
            "value": {"coding": [{"system": TRE_A07, "code": "MASQUE_PS"}]},
        }
    ]
    resp = patch(client, f"/fhir/DocumentReference/{doc['id']}", ops)
    assert resp.status_code == 200, resp.data
    new = json.loads(resp.data)
    assert new["id"] != doc["id"] and new["meta"]["versionId"] == "2" and resp.headers["ETag"] == 'W/"2"'
    assert {c["coding"][0]["code"] for c in new["securityLabel"]} == {"N", "MASQUE_PS"}
    lid = f"urn:uuid:{doc['id']}"
    assert {"use": "secondary", "system": "urn:ietf:rfc:3986", "value": lid} in new["identifier"]
    old = json.loads(client.get(f"/fhir/DocumentReference/{doc['id']}").data)
    assert old["status"] == "superseded"
    current = json.loads(client.get(f"/fhir/DocumentReference?patient={patient_id(1)}&status=current").data)
    assert [e["resource"]["id"] for e in current["entry"]] == [new["id"]]
    # The document URL names the logical id: unchanged by the metadata update, and still served.
    assert new["content"][0]["attachment"]["url"] == old["content"][0]["attachment"]["url"]
    assert client.get(f"/fhir/Binary/{doc['binary']}").data == b"a document"
    # Patching the superseded version is refused by ITI-57 (it is not the latest).
    resp = patch(
        client,
        f"/fhir/DocumentReference/{doc['id']}",
        [{"op": "replace", "path": "/extension/0/valueBoolean", "value": True}],
    )
    assert resp.status_code == 409
    assert issues(resp) == [("XDSMetadataVersionError", "")] and new["id"] in issue_texts(resp)


def test_delete_is_entered_in_error(client: Any, doc: dict[str, str]) -> None:
    resp = patch(
        client,
        f"/fhir/DocumentReference/{doc['id']}",
        [{"op": "replace", "path": "/status", "value": "entered-in-error"}],
    )
    assert resp.status_code == 200, resp.data
    assert json.loads(resp.data)["status"] == "entered-in-error"
    assert xds_statuses(client, v.DMP_DELETED) == [v.DMP_DELETED]
    assert client.get(f"/fhir/Binary/{doc['binary']}").status_code == 410
    found = json.loads(
        client.get(f"/fhir/DocumentReference?patient={patient_id(1)}&status=entered-in-error").data
    )
    assert found["total"] == 1


def test_fhirpath_patch(client: Any, doc: dict[str, str]) -> None:
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "DocumentReference"},
                    {"name": "name", "valueString": "securityLabel"},
                    {
                        "name": "value",
                        "valueCodeableConcept": {
                            "coding": [{"system": TRE_A07, "code": "INVISIBLE_PATIENT"}]
                        },
                    },
                ],
            }
        ],
    }
    resp = patch(client, f"/fhir/DocumentReference/{doc['id']}", params, "application/fhir+json")
    assert resp.status_code == 200, resp.data
    assert "INVISIBLE_PATIENT" in {c["coding"][0]["code"] for c in json.loads(resp.data)["securityLabel"]}
    params["parameter"][0]["part"] = [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "DocumentReference.title"},
        {"name": "value", "valueString": "x"},
    ]
    assert (
        patch(
            client, f"/fhir/DocumentReference/{json.loads(resp.data)['id']}", params, "application/fhir+json"
        ).status_code
        == 405
    )


def test_conditional_patch_by_business_identifier(client: Any, doc: dict[str, str]) -> None:
    ops = [{"op": "replace", "path": "/extension/0/valueBoolean", "value": True}]
    resp = patch(client, f"/fhir/DocumentReference?identifier=urn:ietf:rfc:3986|urn:oid:{doc['uid']}", ops)
    assert resp.status_code == 200, resp.data
    assert json.loads(resp.data)["id"] == doc["id"]
    assert patch(client, "/fhir/DocumentReference?identifier=urn:oid:1.2.3.4.5.6", ops).status_code == 404
    assert patch(client, "/fhir/DocumentReference?status=current", ops).status_code == 400


def test_conditional_patch_naming_two_documents(client: Any, doc: dict[str, str]) -> None:
    # The same document submitted twice (same uniqueId, same bytes) is two DocumentEntries (NIST 12004).
    again = post_bundle(client, provide_bundle(1, [Doc(content=b"a document", unique_id=doc["uid"])]))
    assert again.status_code == 200, again.data
    resp = patch(
        client,
        f"/fhir/DocumentReference?identifier=urn:oid:{doc['uid']}",
        [{"op": "replace", "path": "/status", "value": "superseded"}],
    )
    assert resp.status_code == 412


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "/type/coding/0/code", "value": "34133-9"}],
        [{"op": "add", "path": "/description", "value": "changed"}],
        [{"op": "remove", "path": "/context"}],
        [
            {
                "op": "add",
                "path": "/extension/-",
                "value": {"url": "http://example.org/x", "valueBoolean": True},
            }
        ],
        [{"op": "add", "path": "/meta/security", "value": [{"system": CONFIDENTIALITY, "code": "R"}]}],
        [{"op": "replace", "path": "/meta/versionId", "value": "7"}],
    ],
)
def test_other_changes_are_405(client: Any, doc: dict[str, str], ops: Any) -> None:
    resp = patch(client, f"/fhir/DocumentReference/{doc['id']}", ops)
    assert resp.status_code == 405
    assert (
        "status, securityLabel and the isArchived extension"
        in json.loads(resp.data)["issue"][0]["diagnostics"]
    )
    assert xds_statuses(client, v.APPROVED) == [v.APPROVED]


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        # The PDSm example's path is not an RFC 6901 pointer.
        ([{"op": "replace", "path": f'/extension[url:"{IS_ARCHIVED}"]/valueBoolean', "value": True}], 400),
        ([{"op": "test", "path": "/status", "value": "superseded"}], 409),
        ([{"op": "replace", "path": "/status", "value": "bogus"}], 400),
        ([{"op": "replace", "path": "/securityLabel/0/coding/0/system", "value": ""}], 400),
    ],
)
def test_bad_patches(client: Any, doc: dict[str, str], ops: Any, status: int) -> None:
    assert patch(client, f"/fhir/DocumentReference/{doc['id']}", ops).status_code == status


def test_patch_of_unknown_document_and_wrong_media(client: Any, doc: dict[str, str]) -> None:
    assert (
        patch(client, "/fhir/DocumentReference/0e8c8f29-b1e6-4fa7-8fcd-b842c0128d42", []).status_code == 404
    )
    resp = client.patch(f"/fhir/DocumentReference/{doc['id']}", data="<x/>", content_type="text/plain")
    assert resp.status_code == 415


def test_unchanged_security_labels_keep_the_version(client: Any, doc: dict[str, str]) -> None:
    ops = [
        {
            "op": "replace",
            "path": "/securityLabel/0",
            "value": {"coding": [{"system": CONFIDENTIALITY, "code": "N"}]},
        }
    ]
    resp = patch(client, f"/fhir/DocumentReference/{doc['id']}", ops)
    assert resp.status_code == 200 and json.loads(resp.data)["meta"]["versionId"] == "1"


def test_if_match_names_the_version_patched(client: Any, doc: dict[str, str]) -> None:
    path = f"/fhir/DocumentReference/{doc['id']}"
    archive = [{"op": "add", "path": "/extension/0/valueBoolean", "value": True}]
    # A JSON Patch 'test' of meta.versionId changes nothing: it is the optimistic-lock idiom.
    guard = [{"op": "test", "path": "/meta/versionId", "value": "1"}]
    stale = client.patch(
        path, data=json.dumps(archive), content_type=JSON_PATCH, headers={"If-Match": 'W/"9"'}
    )
    assert stale.status_code == 412 and "version 1" in json.loads(stale.data)["issue"][0]["diagnostics"]
    assert xds_statuses(client, v.APPROVED) == [v.APPROVED]
    resp = client.patch(
        path, data=json.dumps(guard + archive), content_type=JSON_PATCH, headers={"If-Match": 'W/"1"'}
    )
    assert resp.status_code == 200, resp.data
    assert xds_statuses(client, v.DMP_ARCHIVED) == [v.DMP_ARCHIVED]
