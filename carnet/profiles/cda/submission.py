"""A whole XDS submission built from a CDA document alone (simple publication).

The DocumentEntry comes from the header (header.py); the SubmissionSet around it takes the same
patient, the document's authors and title, a fresh uniqueId, the submission time, and as
contentTypeCode the document's typeCode (a single-document submission's content is that
document). sourceId is given by the caller, or else the root of ClinicalDocument/id, an OID of
the producer's own arc. The objects carry symbolic ids; the registry assigns their UUIDs.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from carnet.profiles.cda.header import NS, derive
from carnet.profiles.terminology import ProfileData
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, RegistryError, XDSError
from carnet.xds.model import Association, DocumentEntry, Submission, SubmissionSet


@dataclass
class Publication:
    submission: Submission
    entry: DocumentEntry


def new_unique_id() -> str:
    """An OID no one else can mint: 2.25 followed by a random UUID as an integer (ITU-T X.667)."""
    return f"2.25.{uuid.uuid4().int}"


def submission_for(root: etree._Element, data: ProfileData, source_id: str | None = None) -> Publication:
    """The submission publishing the CDA ``root``; XDSError when its header cannot give one."""
    derived = derive(root, data)
    if derived.problems:
        raise XDSError(
            RegistryError(ErrorCode.REGISTRY_METADATA_ERROR, f"the CDA header cannot give the metadata: {p}")
            for p in derived.problems
        )
    de = derived.entry
    doc_root = root.find("cda:id", NS)
    ss = SubmissionSet(
        entry_uuid="SubmissionSet01",
        unique_id=new_unique_id(),
        source_id=source_id or (doc_root.get("root", "") if doc_root is not None else ""),
        patient_id=de.patient_id,
        submission_time=datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        content_type_code=copy.copy(de.type_code),
        authors=copy.deepcopy(de.authors),
        title=de.title,
    )
    member = Association(
        entry_uuid="Association01",
        association_type=v.HAS_MEMBER,
        source=ss.entry_uuid,
        target=de.entry_uuid,
        extra_slots={"SubmissionSetStatus": ["Original"]},
    )
    return Publication(Submission(submission_set=ss, documents=[de], associations=[member]), de)
