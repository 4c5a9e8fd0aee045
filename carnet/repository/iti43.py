"""ITI-43 Retrieve Document Set: DocumentRequests in, documents out by MTOM, byte-exact.

Each DocumentRequest is answered on its own: an unknown repositoryUniqueId is
XDSUnknownRepositoryId, an unknown document XDSDocumentUniqueIdError; some found and some not is
PartialSuccess, none found is Failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.registry.schema import DocumentEntryRow, StoredDocumentRow
from carnet.xds import response
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, RegistryError, XDSError
from carnet.xml import qname


@dataclass
class DocumentRequest:
    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None = None


@dataclass
class Found:
    request: DocumentRequest
    stored: StoredDocumentRow
    patient_id: str | None


def parse_request(body: etree._Element) -> list[DocumentRequest]:
    if body.tag != qname(v.XDSB, "RetrieveDocumentSetRequest"):
        raise XDSError.of(
            ErrorCode.REPOSITORY_ERROR, f"expected xdsb:RetrieveDocumentSetRequest, got {body.tag}"
        )
    out = []
    for dr in body.findall(qname(v.XDSB, "DocumentRequest")):

        def text(name: str, el: etree._Element = dr) -> str | None:
            child = el.find(qname(v.XDSB, name))
            return child.text.strip() if child is not None and child.text else None

        out.append(
            DocumentRequest(
                text("RepositoryUniqueId") or "", text("DocumentUniqueId") or "", text("HomeCommunityId")
            )
        )
    if not out:
        raise XDSError.of(ErrorCode.REPOSITORY_ERROR, "RetrieveDocumentSetRequest holds no DocumentRequest")
    return out


def lookup(
    session: Session, requests: list[DocumentRequest], repository_unique_id: str
) -> tuple[list[Found], list[RegistryError]]:
    errors: list[RegistryError] = []
    found: list[Found] = []
    wanted = [r.document_unique_id for r in requests if r.repository_unique_id == repository_unique_id]
    stored = (
        {
            row.unique_id: row
            for row in session.scalars(
                select(StoredDocumentRow).where(StoredDocumentRow.unique_id.in_(wanted))
            )
        }
        if wanted
        else {}
    )
    owners = (
        dict(
            session.execute(
                select(DocumentEntryRow.unique_id, DocumentEntryRow.patient_id).where(
                    DocumentEntryRow.unique_id.in_(list(stored))
                )
            ).all()
        )
        if stored
        else {}
    )
    for r in requests:
        if r.repository_unique_id != repository_unique_id:
            errors.append(
                RegistryError(
                    ErrorCode.UNKNOWN_REPOSITORY_ID,
                    f"repositoryUniqueId '{r.repository_unique_id}' is not this repository "
                    f"({repository_unique_id})",
                    r.document_unique_id,
                )
            )
        elif r.document_unique_id not in stored:
            errors.append(
                RegistryError(
                    ErrorCode.DOCUMENT_UNIQUE_ID_ERROR,
                    f"document '{r.document_unique_id}' is not in this repository",
                    r.document_unique_id,
                )
            )
        else:
            found.append(Found(r, stored[r.document_unique_id], owners.get(r.document_unique_id)))
    return found, errors


def content_id(index: int) -> str:
    return f"doc{index}@carnet"


def render(found: list[Found], errors: list[RegistryError]) -> str:
    """The RetrieveDocumentSetResponse body; documents travel as XOP includes doc<i>@carnet."""
    partial = bool(found) and bool(errors)
    if not found and not errors:
        status = v.SUCCESS
    else:
        status = response.status_of(errors, partial=partial)
    rr = (
        f'<rs:RegistryResponse xmlns:rs="{v.RS}" status="{status}">'
        f"{response.error_list(errors)}</rs:RegistryResponse>"
    )
    docs = []
    for i, f in enumerate(found):
        home = (
            f"<xdsb:HomeCommunityId>{escape(f.request.home_community_id)}</xdsb:HomeCommunityId>"
            if f.request.home_community_id
            else ""
        )
        docs.append(
            f"<xdsb:DocumentResponse>{home}"
            f"<xdsb:RepositoryUniqueId>{escape(f.stored.repository_unique_id)}</xdsb:RepositoryUniqueId>"
            f"<xdsb:DocumentUniqueId>{escape(f.stored.unique_id)}</xdsb:DocumentUniqueId>"
            f"<xdsb:mimeType>{escape(f.stored.mime_type)}</xdsb:mimeType>"
            f'<xdsb:Document><xop:Include xmlns:xop="{v.XOP}" href={quoteattr("cid:" + content_id(i))}/>'
            f"</xdsb:Document></xdsb:DocumentResponse>"
        )
    body = "".join(docs)
    root = "xdsb:RetrieveDocumentSetResponse"
    return f'<{root} xmlns:xdsb="{v.XDSB}">{rr}{body}</{root}>'
