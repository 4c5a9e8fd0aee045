"""Seal a submission: add the submission-set signature a DMP-compatible sender would have added.

The DMP expects every submission set signed, by the professional's card or by the structure's
seal (cachet d'organisation, IGC-Santé ORG_SIGN). A repository that receives unsigned
submissions from sources it trusts (FHIR apps through ITI-65, internal systems) can seal them
itself with CARNET_SEAL_CERT / CARNET_SEAL_KEY; ``carnet sign --submission`` does the same to a
request file. The seal is a submission-set signature over every document of the submission
(``dsg.sign_submission_set``), carried by a new DocumentEntry with the DMP's signature metadata,
a HasMember from the SubmissionSet and a ``signs`` association to the SubmissionSet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from carnet.signature import dsg
from carnet.signature.verify import Content
from carnet.xds.model import DocumentEntry, Submission


def seal_submission(
    sub: Submission, documents: Mapping[str, Content], signer: dsg.Signer, *, legacy: bool = False
) -> tuple[DocumentEntry, bytes]:
    """Sign ``documents`` (every document of ``sub``, by uniqueId) and add the signature to ``sub``.

    Returns the signature DocumentEntry (hash and size filled) and the signature document's bytes.
    """
    ss = sub.submission_set
    if ss is None or not sub.documents:
        raise ValueError("only a submission with a SubmissionSet and documents can be sealed")
    data = dsg.sign_submission_set(ss.unique_id, documents, signer, legacy=legacy)
    entry = dsg.signature_entry(sub, unique_id=dsg.new_unique_id(), signer=signer.certificate)
    entry.hash = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    entry.size = len(data)
    sub.documents.append(entry)
    sub.associations.extend(dsg.signature_associations(sub, entry))
    return entry, data
