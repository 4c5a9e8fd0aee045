"""ITI-68 Retrieve Document: ``GET <attachment.url>`` = ``GET [base]/Binary/<logical id>``.

The URL Carnet mints names the document's logical id, so it survives metadata updates (a new
version keeps the lid) and answers for the version that stands now. The bytes come from the blob
store byte for byte, by the uniqueId the repository filed them under, exactly as ITI-43 serves them.
HTTP answers follow ITI TF-2 Table 3.68.4.2.2-1: unknown URL 404; the document replaced,
deprecated or deleted 410; an ``Accept`` the stored MIME type cannot satisfy 406; a request for a
FHIR format gets the Binary resource itself (FHIR Binary read) instead of the raw bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.fhir import datatypes as fdt
from carnet.registry.schema import DocumentEntryRow, StoredDocumentRow
from carnet.registry.storedquery.queries import Hit
from carnet.xds import vocabulary as v

GONE = frozenset({v.DEPRECATED, v.DMP_DELETED})


@dataclass
class Located:
    """The DocumentEntry version a Binary id stands for, and the stored bytes if this repository has them."""

    entry: DocumentEntryRow
    stored: StoredDocumentRow | None

    @property
    def hit(self) -> Hit:
        return Hit(
            self.entry.entry_uuid,
            "DocumentEntry",
            self.entry.fragment,
            self.entry.patient_id,
            self.entry.status,
        )

    @property
    def gone(self) -> bool:
        return self.entry.status in GONE


def locate(session: Session, binary_id: str, repository_unique_id: str) -> Located | None:
    lid = fdt.entry_uuid_of(binary_id)
    if lid is None:
        return None
    de = DocumentEntryRow
    row = session.scalars(select(de).where(de.logical_id == lid).order_by(de.version.desc()).limit(1)).first()
    if row is None:
        return None
    stored = None
    if row.repository_unique_id == repository_unique_id:
        stored = session.get(StoredDocumentRow, row.unique_id)
    return Located(row, stored)


def acceptable(accept: str | None, mime_type: str) -> bool:
    """Does the Accept header admit the stored MIME type? (Carnet does not transform documents.)"""
    if not accept:
        return True
    major = mime_type.split("/", 1)[0]
    for item in accept.split(","):
        media, _, params = item.strip().partition(";")
        media = media.strip().lower()
        if "q=0" in params.replace(" ", "") and "q=0." not in params.replace(" ", ""):
            continue
        if media in ("*/*", f"{major}/*", mime_type.lower()):
            return True
    return False
