"""ITI-57 Update Document Set, ITI-62 Remove Metadata and ITI-86 Remove Documents over SOAP.

Each refusal is checked for its exact IHE code and for leaving the registry or repository as it
was; each success for what a consumer then sees through ITI-18 / ITI-43.
"""

from __future__ import annotations

import uuid
from typing import Any
from xml.sax.saxutils import quoteattr

from sqlalchemy import func, select

from carnet.db import read_session, write_transaction
from carnet.registry import patients
from carnet.registry.schema import AuditEventRow, DocumentEntryRow, StoredDocumentRow
from carnet.xds import vocabulary as v
from tests.builders import (
    Doc,
    new_oid,
    patient,
    provide_and_register,
    remove_documents,
    remove_request,
    submit_objects_request,
)
from tests.xds import post, query, register, response_status

GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
REPO = "1.2.250.1.999.1.1.1"
PID = patient(57)
OTHER = patient(58)


def known(engine, *pids: str) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(engine) as session:
        for pid in pids:
            patients.upsert(session, pid)


def entry(unique_id: str | None = None, **kw: Any) -> Doc:
    """A DocumentEntry with a fresh entryUUID, as registered by ITI-42 (hash and size given);
    ``unique_id`` of an existing document makes it the next version of that document."""
    ids = {"unique_id": unique_id} if unique_id else {}
    return Doc(
        f"urn:uuid:{uuid.uuid4()}", b"original", hash="a" * 40, size=8, repository_unique_id=REPO, **ids, **kw
    )


def submit(client, pid: str = PID, doc: Doc | None = None) -> tuple[str, Doc]:  # type: ignore[no-untyped-def]
    """Register one document with a known entryUUID; returns (entryUUID, doc)."""
    doc = doc or entry()
    status, errors = response_status(register(client, submit_objects_request(pid, [doc])))
    assert (status, errors) == ("Success", [])
    return doc.id, doc


def update_request(pid: str, doc: Doc, lid: str, previous: str, **slots: str) -> str:
    """An ITI-57 metadata update: the new version of ``lid`` as member of a new SubmissionSet."""
    body = submit_objects_request(pid, [doc])
    extra = "".join(
        f"<rim:Slot name={quoteattr(name)}><rim:ValueList><rim:Value>{value}</rim:Value>"
        f"</rim:ValueList></rim:Slot>"
        for name, value in {"PreviousVersion": previous, **slots}.items()
    )
    body = body.replace(
        f'<rim:ExtrinsicObject id="{doc.id}"', f'<rim:ExtrinsicObject id="{doc.id}" lid="{lid}"', 1
    )
    return body.replace(
        '<rim:Slot name="SubmissionSetStatus">', extra + '<rim:Slot name="SubmissionSetStatus">', 1
    )


def status_request(pid: str, target: str, original: str, new: str) -> str:
    """An ITI-57 UpdateAvailabilityStatus of ``target``."""
    body = submit_objects_request(pid, [])
    assoc = (
        f'<rim:Association id="urn:uuid:{uuid.uuid4()}" associationType="{v.UPDATE_AVAILABILITY_STATUS}" '
        f'sourceObject="SubmissionSet01" targetObject="{target}">'
        f'<rim:Slot name="OriginalStatus"><rim:ValueList><rim:Value>{original}</rim:Value>'
        f"</rim:ValueList></rim:Slot>"
        f'<rim:Slot name="NewStatus"><rim:ValueList><rim:Value>{new}</rim:Value></rim:ValueList></rim:Slot>'
        f"</rim:Association>"
    )
    return body.replace("</rim:RegistryObjectList>", assoc + "</rim:RegistryObjectList>")


def iti57(client, body: str) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    status, errors = response_status(post(client, "/xds/registry", v.ACTION_ITI57, body))
    return status, [code for code, _ in errors]


def versions(engine, logical_id: str) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    with read_session(engine) as session:
        rows = session.execute(
            select(DocumentEntryRow.version, DocumentEntryRow.status)
            .where(DocumentEntryRow.logical_id == logical_id)
            .order_by(DocumentEntryRow.version)
        ).all()
    return [(version, status) for version, status in rows]


# --- ITI-57 ---------------------------------------------------------------------------------------


def test_update_creates_version_2_and_deprecates_version_1(client, engine) -> None:
    known(engine, PID)
    first, doc = submit(client)
    new = entry(doc.unique_id, confidentiality=("R", "2.16.840.1.113883.5.25", "Restricted"))
    assert iti57(client, update_request(PID, new, first, "1")) == ("Success", [])
    assert versions(engine, first) == [(1, v.DEPRECATED), (2, v.APPROVED)]
    latest = query(client, GET_DOCUMENTS, [("$XDSDocumentEntryUniqueId", [f"('{doc.unique_id}')"])])
    assert [d.get("id") for d in latest.documents] == [new.id]  # $MetadataLevel 1: latest only
    assert latest.documents[0].get("lid") == first
    assert latest.documents[0].find(f"{{{v.RIM}}}VersionInfo").get("versionName") == "2"
    both = query(
        client, GET_DOCUMENTS, [("$XDSDocumentEntryLogicalID", [f"('{first}')"]), ("$MetadataLevel", ["2"])]
    )
    assert sorted(d.get("id") for d in both.documents) == sorted([first, new.id])


def test_update_of_an_old_version_is_a_version_error_and_changes_nothing(client, engine) -> None:
    known(engine, PID)
    first, doc = submit(client)
    new = entry(doc.unique_id)
    assert iti57(client, update_request(PID, new, first, "4")) == ("Failure", ["XDSMetadataVersionError"])
    assert versions(engine, first) == [(1, v.APPROVED)]
    unknown = f"urn:uuid:{uuid.uuid4()}"
    assert iti57(client, update_request(PID, new, unknown, "1"))[1] == ["XDSMetadataVersionError"]


def test_update_errors_name_the_rule(client, engine) -> None:
    known(engine, PID)
    first, doc = submit(client)

    def new(uid: str = doc.unique_id) -> Doc:
        return entry(uid)

    # A first version sent by ITI-57 has no lid: not an update.
    assert iti57(client, submit_objects_request(PID, [new(new_oid())]))[1] == ["XDSMetadataUpdateError"]
    assert iti57(client, update_request(PID, new(new_oid()), first, "1"))[1] == ["XDSMetadataUpdateError"]
    assert iti57(client, update_request(PID, new(), first, "one"))[1] == ["XDSMetadataUpdateOperationError"]
    bad_ap = update_request(PID, new(), first, "1", AssociationPropagation="maybe")
    assert iti57(client, bad_ap)[1] == ["XDSMetadataUpdateOperationError"]
    assert versions(engine, first) == [(1, v.APPROVED)]


def test_patient_change_needs_an_unlinked_entry(client, engine) -> None:
    known(engine, PID, OTHER)
    first, doc = submit(client)
    moved = entry(doc.unique_id)
    assert iti57(client, update_request(OTHER, moved, first, "1")) == ("Success", [])
    # Version 1 (patient PID) and version 2 (OTHER): a LeafClass answer would mix patients.
    both = query(
        client, GET_DOCUMENTS, [("$XDSDocumentEntryLogicalID", [f"('{first}')"]), ("$MetadataLevel", ["2"])]
    )
    assert (both.status, [c for c, _ in both.errors]) == ("Failure", ["XDSResultNotSinglePatient"])


def test_dmp_statuses_archived_and_deleted(client, engine) -> None:
    known(engine, PID)
    first, _ = submit(client)
    assert iti57(client, status_request(PID, first, v.APPROVED, v.DMP_ARCHIVED)) == ("Success", [])
    assert versions(engine, first) == [(1, v.DMP_ARCHIVED)]
    # OriginalStatus must be the current one.
    assert iti57(client, status_request(PID, first, v.APPROVED, v.DMP_DELETED))[1] == [
        "XDSMetadataUpdateError"
    ]
    assert iti57(client, status_request(PID, first, v.DMP_ARCHIVED, v.DMP_DELETED)) == ("Success", [])
    assert versions(engine, first) == [(1, v.DMP_DELETED)]
    assert iti57(client, status_request(PID, first, v.DMP_DELETED, "urn:example:Lost"))[1] == [
        "XDSMetadataUpdateError"
    ]
    assert iti57(client, status_request(OTHER, first, v.DMP_DELETED, v.APPROVED))[0] == "Failure"
    with read_session(engine) as session:
        events = session.scalars(
            select(AuditEventRow.outcome).where(AuditEventRow.transaction == "ITI-57")
        ).all()
    assert events.count(0) == 2 and len(events) == 5  # failures are audited too


# --- ITI-62 ---------------------------------------------------------------------------------------


def iti62(client, *ids: str) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    status, errors = response_status(post(client, "/xds/registry", v.ACTION_ITI62, remove_request(*ids)))
    return status, [code for code, _ in errors]


def test_remove_metadata_keeps_the_model_whole(client, engine) -> None:
    known(engine, PID)
    doc_id, doc = submit(client)
    assocs = query(client, GET_ASSOCIATIONS, [("$uuid", [f"('{doc_id}')"])])
    (member,) = assocs.associations
    ss_id, member_id = member.get("sourceObject"), member.get("id")
    assert iti62(client, f"urn:uuid:{uuid.uuid4()}") == ("Failure", ["UnresolvedReferenceException"])
    assert iti62(client, ss_id) == ("Failure", ["ReferencesExistException"])
    assert iti62(client, doc_id, member_id) == ("Failure", ["XDSUnreferencedObjectException"])
    assert (
        len(query(client, GET_DOCUMENTS, [("$XDSDocumentEntryEntryUUID", [f"('{doc_id}')"])]).documents) == 1
    )
    assert iti62(client, ss_id, doc_id, member_id) == ("Success", [])
    assert query(client, GET_DOCUMENTS, [("$XDSDocumentEntryEntryUUID", [f"('{doc_id}')"])]).documents == []
    # The uniqueId is free again: the same document can be registered anew.
    submit(
        client,
        doc=Doc(
            f"urn:uuid:{uuid.uuid4()}",
            b"other",
            unique_id=doc.unique_id,
            hash="b" * 40,
            size=5,
            repository_unique_id=REPO,
        ),
    )


# --- ITI-86 ---------------------------------------------------------------------------------------


def iti86(client, pairs: list[tuple[str, str]]) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    status, errors = response_status(post(client, "/xds/repository", v.ACTION_ITI86, remove_documents(pairs)))
    return status, [code for code, _ in errors]


def stored(engine) -> int:  # type: ignore[no-untyped-def]
    with read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(StoredDocumentRow)) or 0


def test_remove_documents_deletes_a_shared_blob_with_its_last_row(client, engine, settings) -> None:
    known(engine, PID)
    same = b"identical bytes in two documents"
    a, b = Doc("DocA", same), Doc("DocB", same)
    status, errors = response_status(
        post(client, "/xds/repository", v.ACTION_ITI41, provide_and_register(PID, [a, b]))
    )
    assert (status, errors) == ("Success", [])
    blobs = [p for p in settings.blob_dir.rglob("*") if p.is_file() and p.parent != settings.blob_dir / "tmp"]
    assert len(blobs) == 1  # content-addressed: one file for both

    assert iti86(client, [("9.9.9", a.unique_id)]) == ("Failure", ["XDSUnknownRepositoryId"])
    assert iti86(client, [(REPO, new_oid())]) == ("Failure", ["XDSDocumentUniqueIdError"])
    assert stored(engine) == 2
    assert iti86(client, [(REPO, a.unique_id), (REPO, new_oid())]) == (
        "PartialSuccess",
        ["XDSDocumentUniqueIdError"],
    )
    assert stored(engine) == 1 and blobs[0].exists()  # DocB still needs the bytes
    assert iti86(client, [(REPO, b.unique_id)]) == ("Success", [])
    assert stored(engine) == 0 and not blobs[0].exists()
    assert iti86(client, [(REPO, b.unique_id)]) == ("Failure", ["XDSDocumentUniqueIdError"])
