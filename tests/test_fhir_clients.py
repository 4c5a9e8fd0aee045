"""Real FHIR clients nobody here wrote, over a real socket: fhirpy (Beda Software) and the SMART
Health IT fhirclient, whose models are generated from FHIR R4 4.0.1 and refuse what R4 does not
define. Both submit by ITI-65, search by ITI-67 following the server's ``next`` links, read, and
the document comes back by ITI-68."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
import requests
from fhirclient import server as smart_server
from fhirclient.models import bundle as smart_bundle
from fhirclient.models import documentreference as smart_docref
from fhirclient.models import list as smart_list
from fhirpy import SyncFHIRClient

from tests.fhir_helpers import Doc, known_patients, nir, patient_token, provide_bundle

PATIENT = patient_token(1)


@pytest.fixture
def base(live_server: str, engine: Any) -> str:
    known_patients(engine, 1)
    return f"{live_server}/fhir"


def _submit(fhir: SyncFHIRClient, count: int) -> list[bytes]:
    contents = [f"document {i}".encode() for i in range(count)]
    # fhirpy posts the transaction as application/json.
    answer = fhir.execute("", method="post", data=provide_bundle(1, [Doc(content=c) for c in contents]))
    assert answer["type"] == "transaction-response"
    assert [e["response"]["status"] for e in answer["entry"]][:1] == ["201 Created"]
    return contents


def test_fhirpy(base: str) -> None:
    fhir = SyncFHIRClient(base)
    contents = _submit(fhir, 3) + _submit(fhir, 2)
    search = fhir.resources("DocumentReference").search(**{"patient.identifier": PATIENT}, status="current")
    # fetch_all follows every "next" link the server wrote (two documents a page here).
    found = search.limit(2).fetch_all()
    assert len(found) == 5 and len({d.id for d in found}) == 5
    assert search.count() == 5
    newest_first = search.sort("-date").fetch()
    assert len(newest_first) == 5
    doc = fhir.reference("DocumentReference", found[0].id).to_resource()
    url = doc["content"][0]["attachment"]["url"]
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and got.content in contents
    assert base64.b64decode(doc["content"][0]["attachment"]["hash"]) == hashlib.sha1(got.content).digest()
    lists = (
        fhir.resources("List")
        .search(patient=f"Patient/1.2.250.1.213.1.4.10-{nir(1)}", code="submissionset")
        .fetch_all()
    )
    assert len(lists) == 2
    # PDSm metadata update through the same client (fhirpy sends the JSON Patch as application/json).
    patched = fhir.execute(
        f"DocumentReference/{doc.id}",
        method="patch",
        data=[{"op": "replace", "path": "/extension/0/valueBoolean", "value": True}],  # type: ignore[arg-type]
    )
    assert patched["extension"][0]["valueBoolean"] is True
    archived = (
        fhir.resources("DocumentReference")
        .search(**{"patient.identifier": PATIENT}, isArchived="true")
        .fetch()
    )
    assert [d.id for d in archived] == [doc.id]


def test_fhirclient(base: str) -> None:
    smart = smart_server.FHIRServer(None, base_uri=base + "/")
    capability = smart.capabilityStatement  # parsed with the strict R4 models
    assert capability.fhirVersion == "4.0.1"
    resp = smart.post_json(
        "", provide_bundle(1, [Doc(content=b"one"), Doc(content=b"two"), Doc(content=b"three")])
    )
    answer = smart_bundle.Bundle(resp.json(), strict=True)
    assert answer.type == "transaction-response" and len(answer.entry) == 7
    search = smart_docref.DocumentReference.where(
        struct={"patient.identifier": PATIENT, "status": "current", "_count": "2"}
    )
    pages = list(search.perform_iter(smart))  # every page, following "next"
    assert len(pages) == 2 and pages[0].total == 3
    docs = [e.resource for page in pages for e in page.entry or []]
    assert len(docs) == 3 and all(isinstance(d, smart_docref.DocumentReference) for d in docs)
    # Every DocumentReference Carnet writes is valid R4 by models that refuse unknown elements.
    first = smart_docref.DocumentReference.read(docs[0].id, smart)
    assert first.content[0].attachment.contentType == "text/plain"
    assert first.masterIdentifier.value.startswith("urn:oid:")
    got = requests.get(first.content[0].attachment.url, timeout=30)
    assert got.content in (b"one", b"two", b"three")
    lists = list(smart_list.List.where(struct={"patient.identifier": PATIENT}).perform_resources_iter(smart))
    assert {x.code.coding[0].code for x in lists} == {"submissionset"}
    # The XML answer of a search parses too.
    xml = requests.get(
        f"{base}/DocumentReference", params={"patient.identifier": PATIENT, "_format": "xml"}, timeout=30
    )
    assert xml.headers["Content-Type"].startswith("application/fhir+xml") and b"<Bundle" in xml.content
