"""Registry behaviour beyond the dcm4chee/NIST data: lifecycle side effects, query errors, audit,
and a repository running alone that forwards its metadata to a remote registry by ITI-42."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from carnet.app import build, create_app
from carnet.config import Settings
from carnet.db import make_engine, read_session, write_transaction
from carnet.registry import patients
from carnet.registry.schema import AuditEventRow, StoredDocumentRow
from carnet.xds import vocabulary as v
from tests.builders import (
    Doc,
    _code,
    _ext,
    _slot,
    new_oid,
    patient,
    provide_and_register,
    submit_objects_request,
)
from tests.xds import QueryAnswer, envelope, query, register, response_status

FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_FOLDER_AND_CONTENTS = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
APPROVED = f"('{v.APPROVED}')"


def known(engine, *pids: str) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(engine) as s:
        for pid in pids:
            patients.upsert(s, pid)


def with_hash(doc: Doc) -> Doc:
    doc.hash, doc.size, doc.repository_unique_id = doc.sha1, len(doc.content), "1.2.250.1.999.1.1.1"
    return doc


def folder_xml(pid: str, fid: str, members: list[str]) -> str:
    """A new Folder holding ``members`` (ids in the same submission), each membership in the SS."""
    out = (
        f'<rim:RegistryPackage id="{fid}">{_slot("lastUpdateTime", "20240101000000")}'
        f'<rim:Name><rim:LocalizedString value="Dossier {fid}"/></rim:Name>'
        + _code(v.FOLDER_CODE_LIST, fid, "CARDIO", "1.2.250.1.999.5", "Cardiologie")
        + _ext(v.FOLDER_PATIENT_ID, fid, pid, "XDSFolder.patientId")
        + _ext(v.FOLDER_UNIQUE_ID, fid, new_oid(), "XDSFolder.uniqueId")
        + f'</rim:RegistryPackage><rim:Classification id="fc{fid}" classifiedObject="{fid}" '
        f'classificationNode="{v.FOLDER_NODE}"/>'
        f'<rim:Association id="ssf{fid}" associationType="{v.HAS_MEMBER}" sourceObject="SubmissionSet01" '
        f'targetObject="{fid}"/>'
    )
    for i, m in enumerate(members):
        out += (
            f'<rim:Association id="fm{fid}{i}" associationType="{v.HAS_MEMBER}" sourceObject="{fid}" '
            f'targetObject="{m}"/><rim:Association id="ssfm{fid}{i}" associationType="{v.HAS_MEMBER}" '
            f'sourceObject="SubmissionSet01" targetObject="fm{fid}{i}"/>'
        )
    return out


def replaces(new: str, old: str) -> str:
    return (
        f'<rim:Association id="r{new}" associationType="{v.RPLC}" sourceObject="{new}" targetObject="{old}"/>'
    )


def find(client, pid: str, statuses: str = APPROVED) -> QueryAnswer:  # type: ignore[no-untyped-def]
    return query(
        client, FIND, [("$XDSDocumentEntryPatientId", [f"'{pid}'"]), ("$XDSDocumentEntryStatus", [statuses])]
    )


def test_symbolic_ids_become_uuids_and_status_is_approved(client, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(10)
    known(engine, pid)
    assert response_status(register(client, submit_objects_request(pid, [with_hash(Doc("Doc1", b"a"))]))) == (
        "Success",
        [],
    )
    ans = find(client, pid)
    [de] = ans.documents
    assert de.get("id").startswith("urn:uuid:") and de.get("lid") == de.get("id")
    assert de.get("status") == v.APPROVED
    # Every classification and identifier got a UUID too, and points at the entry.
    for child in de.findall(f"{{{v.RIM}}}Classification") + de.findall(f"{{{v.RIM}}}ExternalIdentifier"):
        assert child.get("id").startswith("urn:uuid:")
        assert de.get("id") in (child.get("classifiedObject"), child.get("registryObject"))


def test_rplc_deprecates_and_carries_folder_membership(client, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(11)
    known(engine, pid)
    original = with_hash(Doc("Doc1", b"v1"))
    sub = submit_objects_request(pid, [original], extra=folder_xml(pid, "Folder1", ["Doc1"]))
    assert response_status(register(client, sub))[0] == "Success"
    [old] = find(client, pid).documents
    fol_ans = query(
        client,
        "urn:uuid:958f3006-baad-4929-a4de-ff1114824431",
        [("$XDSFolderPatientId", [f"'{pid}'"]), ("$XDSFolderStatus", [APPROVED])],
    )
    [folder] = fol_ans.folders
    before = folder.find(
        f"{{{v.RIM}}}Slot[@name='lastUpdateTime']/{{{v.RIM}}}ValueList/{{{v.RIM}}}Value"
    ).text
    assert before != "20240101000000"  # the registry sets lastUpdateTime, not the sender

    replacement = with_hash(Doc("Doc2", b"v2"))
    rplc = (
        f'<rim:Association id="r1" associationType="{v.RPLC}" sourceObject="Doc2" '
        f'targetObject="{old.get("id")}"/>'
    )
    assert response_status(register(client, submit_objects_request(pid, [replacement], extra=rplc))) == (
        "Success",
        [],
    )
    approved = find(client, pid)
    assert [QueryAnswer.name(d) for d in approved.documents] == ["Document Doc2"]
    deprecated = find(client, pid, f"('{v.DEPRECATED}')")
    assert [d.get("id") for d in deprecated.documents] == [old.get("id")]

    contents = query(client, GET_FOLDER_AND_CONTENTS, [("$XDSFolderEntryUUID", [f"'{folder.get('id')}'"])])
    assert sorted(QueryAnswer.name(d) for d in contents.documents) == ["Document Doc1", "Document Doc2"]

    # A deprecated entry cannot be replaced again.
    again = with_hash(Doc("Doc3", b"v3"))
    rplc2 = replaces("Doc3", old.get("id"))
    status, errors = response_status(register(client, submit_objects_request(pid, [again], extra=rplc2)))
    assert status == "Failure" and [e[0] for e in errors] == ["XDSRegistryDeprecatedDocumentError"]


def test_rplc_of_another_patients_document_is_refused(client, engine) -> None:  # type: ignore[no-untyped-def]
    a, b = patient(12), patient(13)
    known(engine, a, b)
    assert (
        response_status(register(client, submit_objects_request(a, [with_hash(Doc("D", b"x"))])))[0]
        == "Success"
    )
    [orig] = find(client, a).documents
    rplc = replaces("D", orig.get("id"))
    status, errors = response_status(
        register(client, submit_objects_request(b, [with_hash(Doc("D", b"y"))], extra=rplc))
    )
    assert status == "Failure" and [e[0] for e in errors] == ["XDSPatientIdDoesNotMatch"]


@pytest.mark.parametrize(
    "params,code",
    [
        ([("$XDSDocumentEntryStatus", [APPROVED])], "XDSStoredQueryMissingParam"),
        (
            [
                ("$XDSDocumentEntryPatientId", ["'a^^^&1.2&ISO'", "'b^^^&1.2&ISO'"]),
                ("$XDSDocumentEntryStatus", [APPROVED]),
            ],
            "XDSStoredQueryParamNumber",
        ),
        (
            [
                ("$XDSDocumentEntryPatientId", ["('a^^^&1.2&ISO','b^^^&1.2&ISO')"]),
                ("$XDSDocumentEntryStatus", [APPROVED]),
            ],
            "XDSStoredQueryParamNumber",
        ),
    ],
)
def test_query_parameter_errors(client, params, code) -> None:  # type: ignore[no-untyped-def]
    ans = query(client, FIND, params)
    assert ans.status == "Failure" and [e[0] for e in ans.errors] == [code]


def test_unknown_stored_query(client) -> None:  # type: ignore[no-untyped-def]
    ans = query(client, "urn:uuid:00000000-0000-0000-0000-000000000000", [])
    assert ans.status == "Failure" and [e[0] for e in ans.errors] == ["XDSUnknownStoredQuery"]


def test_empty_result_is_plain_success(client) -> None:  # type: ignore[no-untyped-def]
    ans = find(client, patient(14))
    assert (ans.status, ans.errors, ans.documents) == ("Success", [], [])


def test_leafclass_across_patients_is_refused(client, engine) -> None:  # type: ignore[no-untyped-def]
    a, b = patient(15), patient(16)
    known(engine, a, b)
    da, db = with_hash(Doc("A", b"a")), with_hash(Doc("B", b"b"))
    register(client, submit_objects_request(a, [da]))
    register(client, submit_objects_request(b, [db]))
    params = [("$XDSDocumentEntryUniqueId", [f"('{da.unique_id}','{db.unique_id}')"])]
    ans = query(client, GET_DOCUMENTS, params)
    assert ans.status == "Failure" and [e[0] for e in ans.errors] == ["XDSResultNotSinglePatient"]
    assert len(query(client, GET_DOCUMENTS, params, "ObjectRef").object_refs) == 2


def test_every_transaction_is_audited(client, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(17)
    known(engine, pid)
    register(client, submit_objects_request(pid, [with_hash(Doc("D", b"x"))]))
    register(client, submit_objects_request(patient(18), [with_hash(Doc("D", b"x"))]))  # unknown patient
    find(client, pid)
    with read_session(engine) as s:
        rows = s.scalars(select(AuditEventRow).order_by(AuditEventRow.id)).all()
    assert [(r.transaction, r.outcome) for r in rows] == [("ITI-42", 0), ("ITI-42", 8), ("ITI-18", 0)]
    assert rows[0].patient_id == pid and json.loads(rows[0].principal)["kind"] == "anonymous"
    assert "XDSUnknownPatientId" in rows[1].detail
    assert json.loads(rows[2].objects)[0]["id"] == FIND


def test_repository_alone_forwards_to_a_remote_registry(live_server, engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """CARNET_REMOTE_REGISTRY_URL: metadata goes by ITI-42 to the other server, bytes stay here."""
    pid = patient(19)
    known(engine, pid)
    repo_settings = Settings(
        data_dir=tmp_path / "repo",
        allow_anonymous=True,
        remote_registry_url=live_server + "/xds/registry",
        repository_unique_id="1.2.250.1.999.1.1.7",
    )
    repo_engine = make_engine(f"sqlite:///{tmp_path / 'repo.sqlite3'}")
    repo = create_app(repo_settings, build(repo_settings, repo_engine)).test_client()

    doc = Doc("Doc1", b"stored here, registered there")
    resp = repo.post(
        "/xds/repository",
        data=envelope(v.ACTION_ITI41, provide_and_register(pid, [doc])),
        content_type="application/soap+xml",
    )
    assert response_status(etree.fromstring(resp.data).find(f"{{{v.SOAP12}}}Body")[0]) == ("Success", [])
    # The registry (the live server) holds the entry, with the repository's id, hash and size.
    import requests

    ans = QueryAnswer.read(
        etree.fromstring(
            requests.post(
                live_server + "/xds/registry",
                timeout=30,
                headers={"Content-Type": "application/soap+xml"},
                data=envelope(
                    v.ACTION_ITI18,
                    __import__("tests.xds", fromlist=["adhoc_query"]).adhoc_query(
                        FIND,
                        [
                            ("$XDSDocumentEntryPatientId", [f"'{pid}'"]),
                            ("$XDSDocumentEntryStatus", [APPROVED]),
                        ],
                    ),
                ),
            ).content
        ).find(f"{{{v.SOAP12}}}Body")[0]
    )
    [de] = ans.documents
    slots = {
        s.get("name"): s.findtext(f"{{{v.RIM}}}ValueList/{{{v.RIM}}}Value")
        for s in de.findall(f"{{{v.RIM}}}Slot")
    }
    assert (slots["repositoryUniqueId"], slots["hash"], slots["size"]) == (
        "1.2.250.1.999.1.1.7",
        doc.sha1,
        str(len(doc.content)),
    )
    with read_session(repo_engine) as s:
        assert [r.unique_id for r in s.scalars(select(StoredDocumentRow))] == [doc.unique_id]

    # A registry refusal comes back through the repository, and the repository keeps nothing.
    resp = repo.post(
        "/xds/repository",
        data=envelope(v.ACTION_ITI41, provide_and_register(patient(20), [Doc("D", b"z")])),
        content_type="application/soap+xml",
    )
    status, errors = response_status(etree.fromstring(resp.data).find(f"{{{v.SOAP12}}}Body")[0])
    assert status == "Failure" and [e[0] for e in errors] == ["XDSUnknownPatientId"]
    with read_session(repo_engine) as s:
        assert len(s.scalars(select(StoredDocumentRow)).all()) == 1
    assert list((tmp_path / "repo" / "blobs" / "tmp").iterdir()) == []
    assert len([p for p in (tmp_path / "repo" / "blobs").rglob("*") if p.is_file()]) == 1
