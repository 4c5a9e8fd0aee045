"""The signature step of Provide and Register: ITI-41, and ITI-65 through the same submission flow.

``check_signatures`` runs once the repository has paired every DocumentEntry with its document and
computed their digests, and before anything is staged. It recognises the signature documents of
the submission and, unless CARNET_SIGNATURE_POLICY is ``off``, verifies each (DSG levels 1 to 3,
``carnet.signature.verify``) and the submission-set rule (level 4: the manifest names this
SubmissionSet and every other document of it); ``require`` also refuses a submission that is
unsigned or has a document no verified signature covers. A submission that arrives unsigned is
then sealed when the repository has a seal: a submission-set signature by the organisation
certificate is added to it, with its DocumentEntry and associations, as a DMP sender would.

Every failure is XDSRepositoryMetadataError (the documents received do not match what the
signature document of the same request says about them: the code ITI-41 gives to hash and
size mismatches), with a codeContext naming the signature DocumentEntry and the reference or
certificate at fault; all failures of a request are listed together. Nothing is staged or
written before this step passes, so a refused submission leaves nothing behind.

The returned ``SignedSubmission.record(session)`` writes what was verified in the submission's
own transaction (``carnet.signature.records``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from carnet.signature import dsg, records
from carnet.signature import vocabulary as sv
from carnet.signature.seal import seal_submission
from carnet.signature.service import SignaturePolicy, Signatures
from carnet.signature.trust import TrustStore, fingerprint
from carnet.signature.verify import Content, SignatureError, Verification, verify
from carnet.xds.errors import ErrorCode, ErrorCollector, XDSError
from carnet.xds.model import DocumentEntry, Submission

if TYPE_CHECKING:
    from carnet.app import Carnet
    from carnet.repository.iti41 import ProvidedDocument

REPO_META = ErrorCode.REPOSITORY_METADATA_ERROR
# xsd:dateTime, as XAdES SigningTime must be; anything else is not recorded as a time.
_DATETIME = re.compile(r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


@dataclass
class Verified:
    entry: DocumentEntry
    verification: Verification
    sealed: bool = False

    @property
    def covered(self) -> list[str]:
        """uniqueIds of the documents proven intact; an enveloping signature covers itself."""
        if self.verification.form == sv.FORM_ENVELOPING:
            return [self.entry.unique_id]
        return self.verification.covered


@dataclass
class SignedSubmission:
    """The signatures verified (or produced) for one submission, to record in its transaction."""

    submission: Submission
    verified: list[Verified] = field(default_factory=list)

    def record(self, session: Session) -> None:
        """Write the signature and coverage rows; entryUUIDs are final once the registry assigned them."""
        if not self.verified:
            return
        ss = self.submission.submission_set
        uuid_of = {de.unique_id: de.entry_uuid for de in self.submission.documents}
        signatures: list[dict[str, object]] = []
        coverage: list[dict[str, object]] = []
        for item in self.verified:
            de, ver = item.entry, item.verification
            signing_time = (
                ver.signing_time if ver.signing_time and _DATETIME.fullmatch(ver.signing_time) else None
            )
            signatures.append(
                {
                    "signature_uuid": de.entry_uuid,
                    "unique_id": de.unique_id,
                    "patient_id": de.patient_id,
                    "submission_set_uuid": ss.entry_uuid if ss else None,
                    "form": ver.form,
                    "status": records.STATUS_VALID,
                    "legacy": ver.legacy,
                    "sealed": item.sealed,
                    "signer_subject": ver.signer.subject.rfc4514_string(),
                    "signer_issuer": ver.signer.issuer.rfc4514_string(),
                    "signer_serial": f"{ver.signer.serial_number:X}",
                    "signer_sha256": fingerprint(ver.signer),
                    "signing_time": signing_time,
                    "purposes": " ".join(ver.purposes) or None,
                    "verified_at": ver.verified_at,
                }
            )
            coverage += [
                {
                    "signature_uuid": de.entry_uuid,
                    "document_uuid": uuid_of[uid],
                    "document_unique_id": uid,
                    "patient_id": de.patient_id,
                }
                for uid in dict.fromkeys(item.covered)
            ]
        records.insert_records(session, signatures, coverage)


def content(unique_id: str, doc: ProvidedDocument) -> Content:
    sha1, sha256, _ = doc.digests()
    return Content(unique_id, sha1, sha256, doc.content)


def _format_problem(de: DocumentEntry) -> str | None:
    code = de.format_code.code if de.format_code is not None else None
    if code in sv.SIGNATURE_FORMATS:
        return None
    return (
        f"formatCode '{code}' is not a signature format Carnet verifies ({sv.FORMAT_DSG_DETACHED}, "
        f"{sv.FORMAT_DSG_ENVELOPING}, {sv.FORMAT_XMLDSIG})"
    )


def _form_problem(de: DocumentEntry, ver: Verification) -> str | None:
    code = de.format_code.code if de.format_code is not None else None
    if code == sv.FORMAT_DSG_ENVELOPING and ver.form != sv.FORM_ENVELOPING:
        return f"formatCode {code} announces an enveloping signature, but the signature is {ver.form}"
    if code != sv.FORMAT_DSG_ENVELOPING and ver.form == sv.FORM_ENVELOPING:
        return f"formatCode {code} announces a detached signature, but the signature envelops its document"
    return None


def verify_submission(
    sub: Submission, documents: Mapping[str, Content], trust: TrustStore, *, at: datetime | None = None
) -> list[Verified]:
    """Verify every signature document of ``sub`` (``documents``: uniqueId -> content, all of them).

    Raises XDSError listing every signature that fails, each naming what is at fault.
    """
    ss = sub.submission_set
    errors = ErrorCollector()
    verified: list[Verified] = []
    for de in sub.documents:
        if not dsg.is_signature_entry(de) or de.unique_id not in documents:
            continue
        owner = f"signature DocumentEntry {de.entry_uuid} (uniqueId {de.unique_id})"
        problem = _format_problem(de)
        if problem:
            errors.add(REPO_META, f"{owner}: {problem}")
            continue
        others = {uid: c for uid, c in documents.items() if uid != de.unique_id}
        try:
            ver = verify(
                documents[de.unique_id].read(),
                others,
                trust,
                submission_set=ss.unique_id if ss else None,
                at=at,
            )
        except SignatureError as exc:
            errors.add(REPO_META, f"{owner}: {exc}")
            continue
        problem = _form_problem(de, ver)
        if problem:
            errors.add(REPO_META, f"{owner}: {problem}")
            continue
        if ver.form == sv.FORM_SUBMISSION_SET:
            # DSG §5.5.5: the manifest lists the complete SubmissionSet (signature documents aside).
            missing = [
                d
                for d in sub.documents
                if not dsg.is_signature_entry(d)
                and d.unique_id in documents
                and d.unique_id not in ver.covered
            ]
            for d in missing:
                errors.add(
                    REPO_META,
                    f"{owner}: DocumentEntry {d.entry_uuid} (uniqueId {d.unique_id}) of the SubmissionSet "
                    f"is missing from the signature's manifest (no reference 'urn:oid:{d.unique_id}')",
                )
            if missing:
                continue
        verified.append(Verified(de, ver))
    errors.raise_if_any()
    return verified


def check_signatures(
    ctx: Carnet, sub: Submission, pairs: list[tuple[DocumentEntry, ProvidedDocument]]
) -> SignedSubmission:
    """Apply the signature policy to a paired submission; seal it if it is unsigned and a seal is set.

    Sealing adds the signature DocumentEntry and its associations to ``sub`` and the signature
    document to ``pairs``, so the rest of the flow stores and registers it like any other.
    """
    service: Signatures = ctx.signatures
    signed = SignedSubmission(sub)
    if sub.submission_set is None:
        return signed  # the registry refuses it with the precise error
    signature_entries = [de for de, _ in pairs if dsg.is_signature_entry(de)]
    if service.policy != SignaturePolicy.OFF:
        assert service.trust is not None
        documents = {de.unique_id: content(de.unique_id, doc) for de, doc in pairs}
        signed.verified = verify_submission(sub, documents, service.trust)
        if service.policy == SignaturePolicy.REQUIRE:
            _require(pairs, signature_entries, signed.verified)
    if not signature_entries and service.sealer is not None and pairs:
        signed.verified.append(_seal(ctx, service, sub, pairs))
    return signed


def _require(
    pairs: list[tuple[DocumentEntry, ProvidedDocument]],
    signature_entries: list[DocumentEntry],
    verified: list[Verified],
) -> None:
    if not any(not dsg.is_signature_entry(de) for de, _ in pairs):
        return  # no document to cover: a metadata-only submission (folders, associations)
    if not signature_entries:
        raise XDSError.of(
            REPO_META,
            "the submission carries no signature document, and this repository accepts only signed "
            "submissions (CARNET_SIGNATURE_POLICY=require)",
        )
    covered = {uid for item in verified for uid in item.covered}
    errors = ErrorCollector()
    for de, _ in pairs:
        if not dsg.is_signature_entry(de) and de.unique_id not in covered:
            errors.add(
                REPO_META,
                f"DocumentEntry {de.entry_uuid} (uniqueId {de.unique_id}) is covered by no verified "
                "signature (CARNET_SIGNATURE_POLICY=require)",
            )
    errors.raise_if_any()


def _seal(
    ctx: Carnet, service: Signatures, sub: Submission, pairs: list[tuple[DocumentEntry, ProvidedDocument]]
) -> Verified:
    from carnet.repository.iti41 import ProvidedDocument

    assert service.sealer is not None and service.trust is not None and sub.submission_set is not None
    documents = {de.unique_id: content(de.unique_id, doc) for de, doc in pairs}
    entry, data = seal_submission(sub, documents, service.sealer)
    # What the repository fills for every document it receives (ITI-41).
    entry.repository_unique_id = ctx.settings.repository_unique_id
    pairs.append((entry, ProvidedDocument(entry.entry_uuid, data=data)))
    try:
        # Verified like any signature: proves the seal and yields the record of what it covers.
        ver = verify(data, documents, service.trust, submission_set=sub.submission_set.unique_id)
    except SignatureError as exc:
        raise XDSError.of(REPO_META, f"the repository's seal cannot be verified: {exc}") from None
    return Verified(entry, ver, sealed=True)
