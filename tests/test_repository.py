"""ITI-41 Provide and Register and ITI-43 Retrieve over SOAP: real MTOM bodies, checks, atomicity."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select

from carnet.db import read_session, write_transaction
from carnet.registry import patients
from carnet.registry.schema import DocumentEntryRow, StoredDocumentRow, SubmissionSetRow
from carnet.soap import mtom
from carnet.xds import vocabulary as v
from tests.builders import Doc, new_oid, patient, provide_and_register, retrieve_request
from tests.conftest import NIST_TESTS, needs_fixtures
from tests.xds import envelope, response_status

REPO = "1.2.250.1.999.1.1.1"


def known(engine, *pids: str) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(engine) as session:
        for pid in pids:
            patients.upsert(session, pid)


def post_iti41(client, body: str):  # type: ignore[no-untyped-def]
    resp = client.post(
        "/xds/repository",
        data=envelope(v.ACTION_ITI41, body),
        content_type="application/soap+xml; charset=UTF-8",
    )
    return response_status(etree.fromstring(resp.data).find(f"{{{v.SOAP12}}}Body")[0])


def retrieve(client, pairs: list[tuple[str, str]]) -> tuple[etree._Element, dict[str, bytes]]:  # type: ignore[no-untyped-def]
    resp = client.post(
        "/xds/repository",
        data=envelope(v.ACTION_ITI43, retrieve_request(pairs)),
        content_type="application/soap+xml; charset=UTF-8",
    )
    assert resp.content_type.startswith("multipart/related"), resp.data[:500]
    assert 'type="application/xop+xml"' in resp.content_type
    msg = mtom.read_multipart(io.BytesIO(resp.data), resp.content_type)
    root = etree.fromstring(msg.root.read())
    parts = mtom.resolve_xop(root, msg)
    body = root.find(f"{{{v.SOAP12}}}Body")[0]
    docs = {}
    for dr in body.findall(f"{{{v.XDSB}}}DocumentResponse"):
        uid = dr.findtext(f"{{{v.XDSB}}}DocumentUniqueId")
        docs[uid] = parts[dr.find(f"{{{v.XDSB}}}Document")].read()
    return body, docs


def blob_files(settings) -> list[Path]:  # type: ignore[no-untyped-def]
    return [p for p in settings.blob_dir.rglob("*") if p.is_file()]


def counts(engine) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(SubmissionSetRow)) or 0,
            s.scalar(select(func.count()).select_from(DocumentEntryRow)) or 0,
            s.scalar(select(func.count()).select_from(StoredDocumentRow)) or 0,
        )


# --- NIST raw MTOM bodies ------------------------------------------------------------------------

NIST_BODIES = ["PnrXop/Xop", "PnrXop/NoXop", "PnrXop/encodedURL", "PnrXop/dicom", "PnrNoXop/submit"]


def _nist_request(name: str) -> tuple[bytes, str]:
    folder = needs_fixtures("nist-testkit") and NIST_TESTS / name
    plan = (folder / "testplan.xml").read_text()
    ctype = re.search(r"Content-Type:\s*(.+)", plan).group(1).strip()  # type: ignore[union-attr]
    return (folder / "body.txt").read_bytes(), ctype


@pytest.mark.parametrize("name", NIST_BODIES)
def test_nist_mtom_bodies_are_accepted(name, client, settings, engine) -> None:  # type: ignore[no-untyped-def]
    settings.accept_any_patient = True
    body, ctype = _nist_request(name)
    resp = client.post("/xds/repository", data=body, content_type=ctype)
    assert resp.status_code == 200, resp.data[:1000]
    status, errors = response_status(etree.fromstring(resp.data).find(f"{{{v.SOAP12}}}Body")[0])
    assert (status, errors) == ("Success", [])
    with read_session(engine) as s:
        stored = s.scalars(select(StoredDocumentRow)).all()
        entries = s.scalars(select(DocumentEntryRow)).all()
    assert len(stored) == len(entries) >= 1
    # The repository computed hash and size and wrote them into the registered metadata.
    for de in entries:
        assert de.repository_unique_id == settings.repository_unique_id
        assert de.hash and de.size is not None
    # The bytes come back by ITI-43 exactly as they were received.
    _, docs = retrieve(client, [(settings.repository_unique_id, row.unique_id) for row in stored])
    for row in stored:
        import hashlib

        assert hashlib.sha1(docs[row.unique_id]).hexdigest() == row.sha1
    if name == "PnrXop/Xop":
        assert next(iter(docs.values())) == (NIST_TESTS / "PnrXop/Xop/my_document.txt").read_bytes()
    assert not list((settings.blob_dir / "tmp").iterdir())


# --- Provide and Register rules ------------------------------------------------------------------


def test_provide_register_retrieve_roundtrip(client, settings, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(1)
    known(engine, pid)
    docs = [
        Doc("Doc1", b"compte rendu\r\n" * 100),
        Doc("Doc2", bytes(range(256)) * 40, mime_type="application/pdf"),
    ]
    assert post_iti41(client, provide_and_register(pid, docs)) == ("Success", [])
    body, got = retrieve(client, [(REPO, d.unique_id) for d in docs])
    assert body.find(f"{{{v.RS}}}RegistryResponse").get("status") == v.SUCCESS
    assert got == {d.unique_id: d.content for d in docs}
    mimes = {
        dr.findtext(f"{{{v.XDSB}}}DocumentUniqueId"): dr.findtext(f"{{{v.XDSB}}}mimeType")
        for dr in body.findall(f"{{{v.XDSB}}}DocumentResponse")
    }
    assert mimes == {d.unique_id: d.mime_type for d in docs}
    with read_session(engine) as s:
        rows = {r.unique_id: r for r in s.scalars(select(DocumentEntryRow))}
    assert {u: (r.hash, r.size) for u, r in rows.items()} == {
        d.unique_id: (d.sha1, len(d.content)) for d in docs
    }


def test_supplied_uppercase_hash_is_accepted(client, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(2)
    known(engine, pid)
    doc = Doc("Doc1", b"hello")
    doc.hash, doc.size = doc.sha1.upper(), 5
    assert post_iti41(client, provide_and_register(pid, [doc])) == ("Success", [])


@pytest.mark.parametrize(
    "defect,code",
    [
        ("hash", "XDSRepositoryMetadataError"),
        ("size", "XDSRepositoryMetadataError"),
        ("repository", "XDSRepositoryMetadataError"),
    ],
)
def test_wrong_supplied_values_are_refused_and_leave_nothing(defect, code, client, settings, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(3)
    known(engine, pid)
    doc = Doc("Doc1", b"x" * 1000)
    if defect == "hash":
        doc.hash = "0" * 40
    elif defect == "size":
        doc.size = 999
    else:
        doc.repository_unique_id = "1.2.3.4.5"
    status, errors = post_iti41(client, provide_and_register(pid, [doc, Doc("Doc2", b"fine")]))
    assert status == "Failure"
    assert [e[0] for e in errors] == [code]
    assert "Doc1" in errors[0][1]
    assert counts(engine) == (0, 0, 0)
    assert blob_files(settings) == []


def test_missing_document_and_missing_metadata(client, settings, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(4)
    known(engine, pid)
    doc = Doc("Doc1", b"abc")
    body = provide_and_register(pid, [doc], inline=False)
    status, errors = post_iti41(client, body)
    assert status == "Failure" and [e[0] for e in errors] == ["XDSMissingDocument"]
    extra = body.replace(
        "</xdsb:ProvideAndRegisterDocumentSetRequest>",
        '<xdsb:Document id="Doc1">YWJj</xdsb:Document><xdsb:Document id="Stray">YWJj</xdsb:Document>'
        "</xdsb:ProvideAndRegisterDocumentSetRequest>",
    )
    status, errors = post_iti41(client, extra)
    assert status == "Failure" and [e[0] for e in errors] == ["XDSMissingDocumentMetadata"]
    assert counts(engine) == (0, 0, 0)
    assert blob_files(settings) == []


def test_registry_error_passes_back_and_nothing_is_kept(client, settings, engine) -> None:  # type: ignore[no-untyped-def]
    # NIST 11986: a registry-side error (here: the patient is unknown) comes back through ITI-41.
    status, errors = post_iti41(client, provide_and_register(patient(5), [Doc("Doc1", b"data")]))
    assert status == "Failure" and [e[0] for e in errors] == ["XDSUnknownPatientId"]
    assert counts(engine) == (0, 0, 0)
    assert blob_files(settings) == []


def test_same_document_twice_then_different_content(client, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(6)
    known(engine, pid)
    uid = new_oid()
    assert post_iti41(client, provide_and_register(pid, [Doc("D", b"same", unique_id=uid)]))[0] == "Success"
    assert post_iti41(client, provide_and_register(pid, [Doc("D", b"same", unique_id=uid)]))[0] == "Success"
    status, errors = post_iti41(client, provide_and_register(pid, [Doc("D", b"different", unique_id=uid)]))
    assert status == "Failure" and [e[0] for e in errors] == ["XDSNonIdenticalHash"]
    assert counts(engine)[1:] == (2, 1)


def test_duplicate_unique_id_in_message(client, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(7)
    known(engine, pid)
    uid = new_oid()
    status, errors = post_iti41(
        client, provide_and_register(pid, [Doc("A", b"one", unique_id=uid), Doc("B", b"two", unique_id=uid)])
    )
    assert status == "Failure" and "XDSRepositoryDuplicateUniqueIdInMessage" in [e[0] for e in errors]


# --- Retrieve ------------------------------------------------------------------------------------


def test_retrieve_partial_success_and_failures(client, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(8)
    known(engine, pid)
    doc = Doc("Doc1", b"retrievable")
    assert post_iti41(client, provide_and_register(pid, [doc]))[0] == "Success"

    body, got = retrieve(client, [(REPO, doc.unique_id), (REPO, "1.2.3.404")])
    rr = body.find(f"{{{v.RS}}}RegistryResponse")
    assert rr.get("status") == v.PARTIAL_SUCCESS
    assert got == {doc.unique_id: b"retrievable"}
    errs = [(e.get("errorCode"), e.get("location")) for e in rr.iter(f"{{{v.RS}}}RegistryError")]
    assert errs == [("XDSDocumentUniqueIdError", "1.2.3.404")]

    body, got = retrieve(client, [(REPO, "1.2.3.404")])
    assert body.find(f"{{{v.RS}}}RegistryResponse").get("status") == v.FAILURE and got == {}

    body, got = retrieve(client, [("9.9.9", doc.unique_id)])
    rr = body.find(f"{{{v.RS}}}RegistryResponse")
    assert rr.get("status") == v.FAILURE
    assert [e.get("errorCode") for e in rr.iter(f"{{{v.RS}}}RegistryError")] == ["XDSUnknownRepositoryId"]


# --- Transport ------------------------------------------------------------------------------------


def test_doctype_is_refused_with_a_soap_fault(client) -> None:  # type: ignore[no-untyped-def]
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + envelope(
        v.ACTION_ITI43, retrieve_request([(REPO, "1.2")])
    )
    resp = client.post("/xds/repository", data=evil, content_type="application/soap+xml")
    assert resp.status_code == 400
    assert b"Fault" in resp.data and b"DOCTYPE" in resp.data
    assert b"root:" not in resp.data


def test_unknown_action_is_a_fault(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post(
        "/xds/repository", data=envelope("urn:example:nothing", "<x/>"), content_type="application/soap+xml"
    )
    assert resp.status_code == 400 and b"Fault" in resp.data


def test_anonymous_refused_unless_allowed(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.allow_anonymous = False
    resp = client.post(
        "/xds/repository",
        data=envelope(v.ACTION_ITI43, retrieve_request([(REPO, "1.2")])),
        content_type="application/soap+xml",
    )
    assert resp.status_code == 401 and b"authentication required" in resp.data


def test_wsdl_is_served(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/xds/repository", "/xds/registry"):
        resp = client.get(path + "?wsdl")
        assert resp.status_code == 200
        root = etree.fromstring(resp.data)
        assert root.tag == "{http://schemas.xmlsoap.org/wsdl/}definitions"
        address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}address").get("location")
        assert address.endswith(path)


def test_unexpected_errors_answer_a_soap_fault(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from carnet.repository import iti43

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(iti43, "parse_request", boom)
    resp = client.post(
        "/xds/repository",
        data=envelope(v.ACTION_ITI43, retrieve_request([(REPO, "1.2")])),
        content_type="application/soap+xml",
    )
    assert resp.status_code == 500 and resp.content_type.startswith("application/soap+xml")
    assert b"soap:Receiver" in resp.data and b"secret" not in resp.data
