"""ITI-41, ITI-18 and ITI-43 driven by zeep, a SOAP client nobody here wrote, from the served WSDL."""

from __future__ import annotations

import pytest
import zeep
from lxml import etree
from zeep.wsa import WsAddressingPlugin

from carnet.xds import vocabulary as v
from tests.builders import Doc, patient, submit_objects_request

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


def _client(url: str) -> zeep.Client:
    settings = zeep.Settings(forbid_dtd=True, forbid_external=True, xml_huge_tree=False)
    return zeep.Client(url + "?wsdl", plugins=[WsAddressingPlugin()], settings=settings)


@pytest.fixture
def server(live_server, settings):  # type: ignore[no-untyped-def]
    settings.accept_any_patient = True
    return live_server


def test_zeep_provide_query_retrieve(server, settings) -> None:  # type: ignore[no-untyped-def]
    repository = _client(server + "/xds/repository")
    registry = _client(server + "/xds/registry")
    pid = patient(42)
    docs = [Doc("Doc1", b"premier document"), Doc("Doc2", b"%PDF-1.4 second", mime_type="application/pdf")]
    rol = etree.fromstring(submit_objects_request(pid, docs)).find(f"{{{v.RIM}}}RegistryObjectList")

    res = repository.service["ProvideAndRegisterDocumentSet-b"](
        SubmitObjectsRequest={"RegistryObjectList": {"_value_1": list(rol)}},
        Document=[{"_value_1": d.content, "id": d.id} for d in docs],
    )
    assert res["status"] == v.SUCCESS and res["RegistryErrorList"] is None

    answer = registry.service.RegistryStoredQuery(
        ResponseOption={"returnType": "LeafClass", "returnComposedObjects": True},
        AdhocQuery={
            "id": FIND_DOCUMENTS,
            "Slot": [
                {"name": "$XDSDocumentEntryPatientId", "ValueList": {"Value": [f"'{pid}'"]}},
                {"name": "$XDSDocumentEntryStatus", "ValueList": {"Value": [f"('{v.APPROVED}')"]}},
            ],
        },
    )
    assert answer["status"] == v.SUCCESS
    objects = answer["RegistryObjectList"]["_value_1"]
    assert len(objects) == 2
    unique_ids = {
        o.find(f"{{{v.RIM}}}ExternalIdentifier[@identificationScheme='{v.DE_UNIQUE_ID}']").get("value")
        for o in objects
    }
    assert unique_ids == {d.unique_id for d in docs}

    got = repository.service.RetrieveDocumentSet(
        DocumentRequest=[
            {"RepositoryUniqueId": settings.repository_unique_id, "DocumentUniqueId": d.unique_id}
            for d in docs
        ]
    )
    assert got["RegistryResponse"]["status"] == v.SUCCESS
    assert {r["DocumentUniqueId"]: (r["mimeType"], r["Document"]) for r in got["DocumentResponse"]} == {
        d.unique_id: (d.mime_type, d.content) for d in docs
    }


def test_zeep_sees_query_errors(server) -> None:  # type: ignore[no-untyped-def]
    registry = _client(server + "/xds/registry")
    answer = registry.service.RegistryStoredQuery(
        ResponseOption={"returnType": "ObjectRef"},
        AdhocQuery={
            "id": FIND_DOCUMENTS,
            "Slot": [{"name": "$XDSDocumentEntryStatus", "ValueList": {"Value": [f"('{v.APPROVED}')"]}}],
        },
    )
    assert answer["status"] == v.FAILURE
    errors = answer["RegistryErrorList"]["RegistryError"]
    assert [e["errorCode"] for e in errors] == ["XDSStoredQueryMissingParam"]
    assert "$XDSDocumentEntryPatientId" in errors[0]["codeContext"]
