"""ITI-41 Provide and Register Document Set-b: the repository's side of a submission.

The repository pairs every DocumentEntry with its Document (XDSMissingDocument /
XDSMissingDocumentMetadata), computes size and SHA-1 itself (while the MTOM parser streamed the
part, or from the inline base64), checks them against values the source supplied
(XDSRepositoryMetadataError), sets repositoryUniqueId, stages the bytes, and has the registry
register the metadata: in the same database transaction when the registry is local, by ITI-42
when it is remote. Only after the commit are the bytes published; on any failure the staged files
are deleted, so a refused submission leaves no file and no row.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from carnet.db import write_transaction
from carnet.profiles.cda.validation import check_provided
from carnet.profiles.validation import profile_for
from carnet.registry.endpoint import db_errors
from carnet.registry.iti42 import RegisterOptions, RegisterResult, assign_uuids, register
from carnet.registry.schema import StoredDocumentRow
from carnet.repository.blobstore import Staged
from carnet.repository.registry_client import register_remote
from carnet.security import audit
from carnet.security.audit import AuditEvent
from carnet.signature.submission import check_signatures
from carnet.soap import mtom
from carnet.xds import ebrim
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, ErrorCollector, RegistryError, XDSError
from carnet.xds.model import DocumentEntry, Submission
from carnet.xml import qname

if TYPE_CHECKING:
    from carnet.app import Carnet

REPO_META = ErrorCode.REPOSITORY_METADATA_ERROR


@dataclass
class ProvidedDocument:
    """A Document of the request: its id, and its bytes either in memory or spooled to disk."""

    id: str
    part: mtom.Part | None = None
    data: bytes | None = None

    def content(self) -> bytes:
        return self.part.read() if self.part is not None else self.data or b""

    def digests(self) -> tuple[str, str, int]:
        if self.part is not None:
            return self.part.sha1, self.part.sha256, self.part.size
        assert self.data is not None
        return (
            # XDS names SHA-1 as the document hash: an identifier here, not a security control.
            hashlib.sha1(self.data, usedforsecurity=False).hexdigest(),
            hashlib.sha256(self.data).hexdigest(),
            len(self.data),
        )


@dataclass
class ProvideRequest:
    submission: Submission
    documents: dict[str, ProvidedDocument]


def parse_request(body: etree._Element, xop: dict[etree._Element, mtom.Part] | None) -> ProvideRequest:
    if body.tag != qname(v.XDSB, "ProvideAndRegisterDocumentSetRequest"):
        raise XDSError.of(
            ErrorCode.REPOSITORY_ERROR, f"expected xdsb:ProvideAndRegisterDocumentSetRequest, got {body.tag}"
        )
    sor = body.find(qname(v.LCM, "SubmitObjectsRequest"))
    rol = sor.find(qname(v.RIM, "RegistryObjectList")) if sor is not None else None
    if rol is None:
        raise XDSError.of(
            ErrorCode.REPOSITORY_ERROR, "the request has no SubmitObjectsRequest/RegistryObjectList"
        )
    errors = ErrorCollector()
    sub = ebrim.parse_submission(rol, errors)
    errors.raise_if_any()
    documents: dict[str, ProvidedDocument] = {}
    for doc in body.findall(qname(v.XDSB, "Document")):
        did = doc.get("id") or ""
        if did in documents:
            raise XDSError.of(REPO_META, f"Document id '{did}' appears more than once")
        part = (xop or {}).get(doc)
        if part is not None:
            documents[did] = ProvidedDocument(did, part=part)
            continue
        try:
            data = base64.b64decode((doc.text or "").encode(), validate=False)
        except (binascii.Error, ValueError) as exc:
            raise XDSError.of(
                REPO_META, f"Document '{did}' is neither an XOP include nor valid base64"
            ) from exc
        documents[did] = ProvidedDocument(did, data=data)
    return ProvideRequest(sub, documents)


def check_documents(
    req: ProvideRequest, repository_unique_id: str
) -> list[tuple[DocumentEntry, ProvidedDocument]]:
    """Pair entries with documents, compute and check size and hash; fill the repository's slots."""
    errors = ErrorCollector()
    entries = {de.entry_uuid: de for de in req.submission.documents}
    pairs: list[tuple[DocumentEntry, ProvidedDocument]] = []
    seen_uids: set[str] = set()
    for de in req.submission.documents:
        if de.unique_id and de.unique_id in seen_uids:
            errors.add(
                ErrorCode.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
                f"DocumentEntry {de.entry_uuid}: uniqueId '{de.unique_id}' appears twice in the request",
            )
        seen_uids.add(de.unique_id)
        if de.on_demand:
            continue
        doc = req.documents.get(de.entry_uuid)
        if doc is None:
            errors.add(
                ErrorCode.MISSING_DOCUMENT, f"DocumentEntry {de.entry_uuid} has no Document in the request"
            )
            continue
        sha1, _, size = doc.digests()
        if de.hash is not None and de.hash.strip().lower() != sha1:
            errors.add(
                REPO_META,
                f"DocumentEntry {de.entry_uuid}: hash {de.hash} does not match the document "
                f"received (SHA-1 {sha1})",
            )
        if de.size is not None and de.size != size:
            errors.add(
                REPO_META,
                f"DocumentEntry {de.entry_uuid}: size {de.size} does not match the document "
                f"received ({size} bytes)",
            )
        if de.repository_unique_id and de.repository_unique_id != repository_unique_id:
            errors.add(
                REPO_META,
                f"DocumentEntry {de.entry_uuid}: repositoryUniqueId {de.repository_unique_id} "
                f"is not this repository ({repository_unique_id})",
            )
        de.hash, de.size, de.repository_unique_id = sha1, size, repository_unique_id
        pairs.append((de, doc))
    for did in req.documents:
        if did not in entries:
            errors.add(
                ErrorCode.MISSING_DOCUMENT_METADATA, f"Document '{did}' has no DocumentEntry in the metadata"
            )
    errors.raise_if_any()
    return pairs


def stage(
    ctx: Carnet, pairs: list[tuple[DocumentEntry, ProvidedDocument]]
) -> list[tuple[DocumentEntry, Staged]]:
    staged: list[tuple[DocumentEntry, Staged]] = []
    try:
        for de, doc in pairs:
            if doc.part is not None and doc.part.path is not None:
                s = ctx.blobs.stage_file(doc.part.path, doc.part.sha256, doc.part.sha1, doc.part.size)
                doc.part.path = None  # ownership moved to the blob store
            else:
                s = ctx.blobs.stage_bytes(doc.part.read() if doc.part is not None else (doc.data or b""))
            staged.append((de, s))
        # One directory fsync makes every staged name durable before the metadata commits.
        ctx.blobs.sync_staging()
    except BaseException:
        for _, s in staged:
            ctx.blobs.discard(s)
        raise
    return staged


def record_documents(session: Session, staged: list[tuple[DocumentEntry, Staged]]) -> None:
    """Repository rows; an identical document resubmitted under its uniqueId is stored once."""
    table: Table = StoredDocumentRow.__table__  # type: ignore[assignment]
    rows = [
        {
            "unique_id": de.unique_id,
            "repository_unique_id": de.repository_unique_id,
            "sha256": s.sha256,
            "sha1": s.sha1,
            "size": s.size,
            "mime_type": de.mime_type,
        }
        for de, s in staged
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    session.execute(ins.on_conflict_do_nothing(index_elements=["unique_id"]), rows)


def provide_and_register(
    ctx: Carnet, session: Session, sub: Submission, staged: list[tuple[DocumentEntry, Staged]]
) -> RegisterResult:
    """Register locally and record the documents, in the caller's transaction."""
    options = RegisterOptions(
        accept_any_patient=ctx.settings.accept_any_patient,
        require_repository_attrs=True,
        profile=profile_for(ctx.settings),
    )
    result = register(session, sub, options)
    record_documents(session, staged)
    return result


def store_and_register(
    ctx: Carnet, sub: Submission, pairs: list[tuple[DocumentEntry, ProvidedDocument]], event: AuditEvent
) -> list[RegistryError]:
    """Commit a checked submission: ITI-41 and ITI-65 (the FHIR facade) both end here.

    The bytes are staged first; the registry's metadata, the repository's rows and the audit
    record are one database transaction (the remote registry's ITI-42 answer comes before ours);
    the bytes are published only after the commit and deleted on any failure, so a refused
    submission leaves no row and no file. Returns the registry's warnings.
    """
    # CI-SIS content rules on CDA documents (CARNET_CDA_VALIDATION), before anything is staged.
    content_warnings = check_provided(ctx.settings, [(de, doc.content) for de, doc in pairs])
    # Signature documents checked by CARNET_SIGNATURE_POLICY, or the submission sealed; recorded below.
    signed = check_signatures(ctx, sub, pairs)
    staged = stage(ctx, pairs)
    try:
        warnings: list[RegistryError] = []
        try:
            if ctx.settings.remote_registry_url:
                # The remote registry validates and assigns UUIDs; our rows only follow its success.
                assign_uuids(sub)
                warnings = register_remote(ctx.settings.remote_registry_url, sub, event.principal.credential)
                with write_transaction(ctx.engine) as session:
                    record_documents(session, staged)
                    signed.record(session)
                    audit.record_in(session, event)
            else:
                with write_transaction(ctx.engine) as session:
                    warnings = provide_and_register(ctx, session, sub, staged).warnings
                    signed.record(session)
                    audit.record_in(session, event)
        except (IntegrityError, OperationalError) as exc:
            raise db_errors(exc, ErrorCode.REPOSITORY_ERROR) from exc
        for _, s in staged:
            ctx.blobs.publish(s)
        staged = []
        return content_warnings + warnings
    finally:
        for _, s in staged:
            ctx.blobs.discard(s)
