"""ITI-86 Remove Documents: a Document Administrator deletes stored documents from the repository.

``rmd:RemoveDocumentsRequest`` (namespace ``urn:ihe:iti:rmd:2017``) lists ``xdsb:DocumentRequest``s
as a retrieve does. Each is answered on its own: a repositoryUniqueId that is not this repository
is ``XDSUnknownRepositoryId``, a document it does not hold ``XDSDocumentUniqueIdError``; the
answer is Success, PartialSuccess (some removed) or Failure (none). The registry's metadata is not
touched (that is ITI-62).

The blob store is content-addressed: a file is shared by every stored_document row with the
same SHA-256, so it is deleted only when the last row naming that digest goes. The check and the
move of the file out of the store happen while the transaction holds the writer lock (SQLite
``BEGIN IMMEDIATE``; on PostgreSQL an explicit table lock), so a concurrent ITI-41 storing the same
bytes either sees the row count first or publishes its own copy after; the moved file is unlinked
only after the commit and put back if the transaction fails.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from carnet.registry.schema import DocumentEntryRow, StoredDocumentRow
from carnet.repository.blobstore import BlobStore
from carnet.repository.iti43 import DocumentRequest
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, RegistryError, XDSError
from carnet.xml import qname


@dataclass
class Removal:
    """What one request removed, and the blob files moved aside until the commit."""

    removed: list[StoredDocumentRow] = field(default_factory=list)
    errors: list[RegistryError] = field(default_factory=list)
    moved: list[tuple[Path, Path]] = field(default_factory=list)  # (content address, aside)

    def finish(self) -> None:
        """After the commit: the bytes of removed documents are gone for good."""
        for _, aside in self.moved:
            aside.unlink(missing_ok=True)
        self.moved = []

    def undo(self) -> None:
        """The transaction failed: put every moved file back at its content address."""
        for final, aside in self.moved:
            if aside.exists():
                os.replace(aside, final)
        self.moved = []


def parse_request(body: etree._Element) -> list[DocumentRequest]:
    if body.tag != qname(v.RMD, "RemoveDocumentsRequest"):
        raise XDSError.of(ErrorCode.REPOSITORY_ERROR, f"expected rmd:RemoveDocumentsRequest, got {body.tag}")
    out = []
    for dr in body.findall(qname(v.XDSB, "DocumentRequest")):

        def text_of(name: str, el: etree._Element = dr) -> str:
            return (el.findtext(qname(v.XDSB, name)) or "").strip()

        out.append(
            DocumentRequest(
                text_of("RepositoryUniqueId"), text_of("DocumentUniqueId"), text_of("HomeCommunityId") or None
            )
        )
    if not out:
        raise XDSError.of(ErrorCode.REPOSITORY_ERROR, "RemoveDocumentsRequest holds no DocumentRequest")
    return out


def documents_of(session: Session, requests: list[DocumentRequest]) -> list[tuple[str | None, str]]:
    """(patient, uniqueId) of the documents named, the patient as far as the local registry knows
    it (None for a document it does not register: a stand-alone repository's remote registry)."""
    uids = list(dict.fromkeys(r.document_unique_id for r in requests))
    known = dict(
        session.execute(
            select(DocumentEntryRow.unique_id, DocumentEntryRow.patient_id).where(
                DocumentEntryRow.unique_id.in_(uids)
            )
        ).all()
    )
    return [(known.get(uid), uid) for uid in uids]


def remove_documents(
    session: Session, blobs: BlobStore, requests: list[DocumentRequest], repository_unique_id: str
) -> Removal:
    """Delete the rows of the documents named, in the caller's write transaction; move aside the
    files no remaining row needs. The caller commits, then calls ``finish`` (or ``undo``)."""
    if session.get_bind().dialect.name == "postgresql":
        # Serialise with ITI-41 inserts of the same content (SQLite writers already are).
        session.execute(text("LOCK TABLE stored_document IN SHARE ROW EXCLUSIVE MODE"))
    out = Removal()
    seen: set[str] = set()
    for r in requests:
        uid = r.document_unique_id
        if r.repository_unique_id != repository_unique_id:
            out.errors.append(
                RegistryError(
                    ErrorCode.UNKNOWN_REPOSITORY_ID,
                    f"repositoryUniqueId '{r.repository_unique_id}' is not this repository "
                    f"({repository_unique_id})",
                    uid,
                )
            )
            continue
        row = session.get(StoredDocumentRow, uid) if uid not in seen else None
        if row is None:
            out.errors.append(
                RegistryError(
                    ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, f"document '{uid}' is not in this repository", uid
                )
            )
            continue
        seen.add(uid)
        out.removed.append(row)
        session.execute(delete(StoredDocumentRow).where(StoredDocumentRow.unique_id == uid))
    try:
        for sha256 in sorted({row.sha256 for row in out.removed}):
            still = session.scalar(
                select(func.count()).select_from(StoredDocumentRow).where(StoredDocumentRow.sha256 == sha256)
            )
            final = blobs.path(sha256)
            if still or not final.exists():
                continue
            aside = blobs.tmp_dir / f"removed-{sha256}-{uuid.uuid4().hex}"
            os.replace(final, aside)
            out.moved.append((final, aside))
    except OSError as exc:
        out.undo()
        raise XDSError.of(
            ErrorCode.REMOVE_DOCUMENTS_ERROR, f"the document bytes could not be removed: {exc}"
        ) from exc
    return out
