"""GetSignedDocuments: the registry's answer to "which of these documents does a valid signature cover?".

A Carnet extension stored query (ITI-18 binding, the registry's catalogue). Parameters, one of:
``$XDSDocumentEntryEntryUUID`` or ``$XDSDocumentEntryUniqueId`` (lists, as GetDocuments) or
``$XDSDocumentEntryPatientId`` (all of a patient's entries). It returns those of the named
DocumentEntries that a signature verified by this repository covers, each as stored plus slots
describing its signatures, values aligned by position (one per covering signature, oldest first):

    urn:carnet:signature:entryUUID   the signature DocumentEntry (GetDocuments / ITI-43 it to re-verify)
    urn:carnet:signature:status      valid
    urn:carnet:signature:form        submission-set | detached | enveloping
    urn:carnet:signature:signer      the signer's certificate subject (RFC 4514)
    urn:carnet:signature:verifiedAt  when the repository verified it (UTC, DTM)

Those slots are computed for this answer and never stored: the stored fragment stays the
submitter's metadata. IHE's own way, GetRelatedDocuments with ``signs``, still works for DSG
detached signatures; it cannot answer for the DMP form, whose ``signs`` points at the
SubmissionSet, hence this query. Documents no signature covers are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.registry import patients
from carnet.registry.schema import DocumentEntryRow
from carnet.signature import records
from carnet.signature.records import SignatureCoverageRow as Coverage
from carnet.xds import vocabulary as v
from carnet.xml import parse, qname

if TYPE_CHECKING:
    from carnet.registry.storedquery.params import Params
    from carnet.registry.storedquery.queries import QueryResult

QUERY_ID = "urn:uuid:7c5f0a43-1d6e-4b8a-9f2e-3c41d8a9e6b5"
QUERY_NAME = "GetSignedDocuments"
PARAMS = (
    ("$XDSDocumentEntryEntryUUID", "str", True, False),
    ("$XDSDocumentEntryUniqueId", "str", True, False),
    ("$XDSDocumentEntryPatientId", "str", False, False),
    ("$homeCommunityId", "str", False, False),
)
ONE_OF = (("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId", "$XDSDocumentEntryPatientId"),)
SLOT_PREFIX = "urn:carnet:signature:"


def get_signed_documents(session: Session, p: Params) -> QueryResult:
    from carnet.registry.storedquery.queries import Hit, QueryResult

    DE = DocumentEntryRow  # noqa: N806 - the registry's alias for the table
    if p.has("$XDSDocumentEntryEntryUUID"):
        ids = set(p.many("$XDSDocumentEntryEntryUUID"))
    elif p.has("$XDSDocumentEntryUniqueId"):
        ids = set(
            session.scalars(
                select(DE.entry_uuid).where(DE.unique_id.in_(p.many("$XDSDocumentEntryUniqueId")))
            )
        )
    else:
        pid = p.one("$XDSDocumentEntryPatientId")
        assert pid is not None
        # Only the patient's covered entries: the join keeps the id list as short as the answer.
        ids = set(
            session.scalars(
                select(DE.entry_uuid)
                .join(Coverage, Coverage.document_uuid == DE.entry_uuid)
                .where(DE.patient_id.in_(patients.query_ids(session, pid)))
            )
        )
    covering = records.covering(session, ids)
    if not covering:
        return QueryResult()
    rows = session.scalars(select(DE).where(DE.entry_uuid.in_(covering)).order_by(DE.entry_uuid))
    return QueryResult(
        documents=[
            Hit(
                row.entry_uuid,
                "DocumentEntry",
                with_signature_slots(row.fragment, covering[row.entry_uuid]),
                row.patient_id,
                row.status,
            )
            for row in rows
        ]
    )


def with_signature_slots(fragment: str, signatures: list[records.SignatureRecord]) -> str:
    """The stored ExtrinsicObject with the signature slots after its own (ebRIM: Slots come first)."""
    el = parse(fragment.encode("utf-8"))
    values = {
        "entryUUID": [s.signature_uuid for s in signatures],
        "status": [s.status for s in signatures],
        "form": [s.form for s in signatures],
        "signer": [s.signer for s in signatures],
        "verifiedAt": [s.verified_at.strftime("%Y%m%d%H%M%S") for s in signatures],
    }
    position = len(el.findall(qname(v.RIM, "Slot")))
    for offset, (name, vals) in enumerate(values.items()):
        slot = etree.Element(qname(v.RIM, "Slot"), name=SLOT_PREFIX + name)
        value_list = etree.SubElement(slot, qname(v.RIM, "ValueList"))
        for val in vals:
            etree.SubElement(value_list, qname(v.RIM, "Value")).text = val
        el.insert(position + offset, slot)
    return etree.tostring(el, encoding="unicode")
