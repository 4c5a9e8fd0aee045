"""Verify one signature document against the documents it names (IHE DSG §5.5.5 levels 1 to 3).

In order: the document is a ``ds:Signature`` using accepted algorithms (SHA-256 or stronger;
SHA-1 only in the DMP legacy form, XAdES 1.1.1); the signer's certificate chains to the trust
store and is valid and unrevoked now; the SignatureValue verifies over SignedInfo with that
certificate's key; every SignedInfo reference digest matches; XAdES SignedProperties are signed
and name that certificate; every ``ds:Manifest`` reference names a document received and its
digest matches those bytes. The first failure raises SignatureError naming the reference or
the certificate at fault. Level 4 (a submission-set signature lists exactly the documents of
its SubmissionSet) needs the submission and is checked by ``carnet.signature.submission``.

What verifies is what was signed; nothing is read from unsigned parts of the signature, and a
reference is resolved once, so the element whose digest was checked is the element read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from lxml import etree

from carnet.signature import vocabulary as sv
from carnet.signature.trust import CertificateError, TrustStore, describe, fingerprint
from carnet.signature.xades import (
    SignedProperties,
    is_signed_properties,
    names_certificate,
    read_signed_properties,
)
from carnet.signature.xmldsig import (
    ParsedSignature,
    Reference,
    XMLDSigError,
    apply_transforms,
    canonicalize,
    check_reference,
    check_signature_value,
    digest,
    ds,
    parse_signature,
    read_reference,
    same_document_target,
)
from carnet.xml import qname

URN_OID = "urn:oid:"


class SignatureError(Exception):
    """A signature does not verify; the message names the reference or certificate at fault."""


@dataclass(frozen=True)
class Content:
    """A document a signature may reference: the digests computed on intake, the bytes on demand.

    Raw-byte references digested with SHA-1 or SHA-256 are checked against the digests the
    repository computed while it received the document, without reading it again.
    """

    unique_id: str
    sha1: str
    sha256: str
    read: Callable[[], bytes]

    def digest_of(self, algorithm: str) -> bytes:
        if algorithm == sv.SHA1:
            return bytes.fromhex(self.sha1)
        if algorithm == sv.SHA256:
            return bytes.fromhex(self.sha256)
        return digest(algorithm, self.read())


@dataclass
class Verification:
    """What a verified signature proves."""

    form: str
    legacy: bool
    signer: x509.Certificate
    chain: list[x509.Certificate]
    verified_at: datetime
    signing_time: str | None = None
    purposes: list[str] = field(default_factory=list)
    # uniqueIds of the documents whose digests verified, in the order the signature lists them.
    covered: list[str] = field(default_factory=list)
    submission_set: str | None = None


def verify(
    data: bytes,
    documents: Mapping[str, Content],
    trust: TrustStore,
    *,
    submission_set: str | None = None,
    at: datetime | None = None,
) -> Verification:
    """Verify signature document ``data``.

    ``documents`` maps uniqueIds to the documents a reference may name; ``submission_set`` is
    the uniqueId of the SubmissionSet the signature travels in (its manifest reference carries
    no digest). ``at`` is the time certificates must be valid at (now by default: a claimed
    SigningTime proves nothing without a trusted timestamp).
    """
    at = (at or datetime.now(UTC)).astimezone(UTC)
    try:
        return _verify(data, documents, trust, submission_set, at)
    except XMLDSigError as exc:
        raise SignatureError(str(exc)) from None
    except CertificateError as exc:
        raise SignatureError(f"signer: {exc}") from None
    except (ValueError, UnsupportedAlgorithm, etree.LxmlError) as exc:
        # Whatever else the input makes the libraries refuse (an unusable key or certificate
        # encoding, say) is still a signature this repository cannot accept, not a server error.
        raise SignatureError(f"the signature cannot be processed: {exc}") from None


def _verify(
    data: bytes, documents: Mapping[str, Content], trust: TrustStore, submission_set: str | None, at: datetime
) -> Verification:
    sig = parse_signature(data)
    legacy = any(True for _ in sig.root.iter(qname(sv.XADES_111, "QualifyingProperties")))
    _check_algorithm(sig.signature_method, legacy, "SignatureMethod")
    for ref in sig.references:
        _check_algorithm(ref.digest_method, legacy, f"reference '{ref.uri}'")

    signer, others = _signer(sig.certificates)
    chain = trust.validate(signer, others, at)
    signed_info = canonicalize(sig.signed_info, sig.c14n_method, inclusive_prefixes=sig.inclusive_prefixes)
    try:
        check_signature_value(sig.signature_method, signer.public_key(), sig.signature_value, signed_info)
    except XMLDSigError as exc:
        raise SignatureError(f"{exc} ({describe(signer)})") from None

    result = Verification(sv.FORM_DETACHED, legacy, signer, chain, at)
    props: SignedProperties | None = None
    for ref in sig.references:
        if not ref.is_local:
            _check_external(ref, documents, submission_set, result, in_manifest=False)
            continue
        target = same_document_target(sig.root, ref.uri)
        octets = apply_transforms(ref, target)
        check_reference(ref, octets)
        if target.tag == ds("Manifest"):
            _check_manifest(target, documents, submission_set, result)
        elif is_signed_properties(target):
            if props is not None:
                raise SignatureError("SignedInfo references two xades:SignedProperties")
            props = read_signed_properties(target)
        elif target.tag == ds("Object") and target.getparent() is sig.root:
            # The signed document itself: base64 as DSG §5.5.4 says, or inline XML (signxml's form).
            result.form = sv.FORM_ENVELOPING
        # Other local references (signxml also signs KeyInfo) only needed their digest checked.

    _check_properties(sig, props, signer, legacy)
    assert props is not None
    result.signing_time, result.purposes = props.signing_time, props.purposes
    if result.form != sv.FORM_ENVELOPING and not result.covered:
        raise SignatureError(
            "the signature references no document (no urn:oid: reference, nothing enveloped)"
        )
    if result.form == sv.FORM_ENVELOPING and result.covered:
        raise SignatureError("an enveloping signature signs the document it envelops, not other documents")
    return result


def _check_algorithm(algorithm: str, legacy: bool, where: str) -> None:
    if algorithm in sv.LEGACY_ONLY and not legacy:
        raise SignatureError(
            f"{where} uses '{algorithm}': SHA-1 is accepted only in the DMP legacy form (XAdES 1.1.1); "
            "sign with SHA-256"
        )


def _signer(certs: list[x509.Certificate]) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The certificate that signed: among KeyInfo's, the one that issued none of the others."""
    if not certs:
        raise SignatureError("KeyInfo carries no X509Certificate: the signer's certificate is required")
    certs = list({fingerprint(c): c for c in certs}.values())  # the same certificate sent twice
    leaves = [
        c
        for c in certs
        if not any(o is not c and o.issuer == c.subject and o.subject != c.subject for o in certs)
    ]
    if len(leaves) != 1:
        raise SignatureError(
            f"KeyInfo holds {len(certs)} certificates that do not form one chain: cannot tell which "
            "one signed"
        )
    return leaves[0], [c for c in certs if c is not leaves[0]]


def _check_external(
    ref: Reference,
    documents: Mapping[str, Content],
    submission_set: str | None,
    result: Verification,
    *,
    in_manifest: bool,
) -> None:
    where = "manifest reference" if in_manifest else "reference"
    if not ref.uri.startswith(URN_OID):
        raise SignatureError(f"{where} '{ref.uri}' is neither '#Id' nor 'urn:oid:<uniqueId>'")
    uid = ref.uri[len(URN_OID) :]
    if submission_set is not None and uid == submission_set:
        if not in_manifest:
            # DSG §5.5.3.1 gives the SubmissionSet reference the hash value "0", which no XMLDSig
            # verifier can accept in SignedInfo: it belongs in a ds:Manifest.
            raise SignatureError(
                f"reference '{ref.uri}' names the SubmissionSet in SignedInfo; it belongs in a ds:Manifest"
            )
        if result.submission_set is not None:
            raise SignatureError(f"the manifest names the SubmissionSet '{uid}' twice")
        result.submission_set = uid
        result.form = sv.FORM_SUBMISSION_SET
        return
    content = documents.get(uid)
    if content is None:
        raise SignatureError(f"{where} '{ref.uri}' names no document of this submission")
    if uid in result.covered:
        raise SignatureError(f"{where} '{ref.uri}' names a document the signature already covers")
    if ref.transforms or ref.digest_method not in (sv.SHA1, sv.SHA256):
        value = digest(ref.digest_method, apply_transforms(ref, content.read()))
    else:
        value = content.digest_of(ref.digest_method)
    if value != ref.digest_value():
        raise SignatureError(
            f"{where} '{ref.uri}': the digest does not match the document received (uniqueId {uid}): "
            "the document was altered after it was signed"
        )
    result.covered.append(uid)


def _check_manifest(
    manifest: etree._Element,
    documents: Mapping[str, Content],
    submission_set: str | None,
    result: Verification,
) -> None:
    refs = [read_reference(el) for el in manifest.findall(ds("Reference"))]
    if not refs:
        raise SignatureError(f"ds:Manifest '{manifest.get('Id')}' holds no reference")
    for ref in refs:
        if ref.is_local:
            raise SignatureError(f"manifest reference '{ref.uri}': a manifest lists documents by urn:oid:")
        uid = ref.uri[len(URN_OID) :] if ref.uri.startswith(URN_OID) else None
        if uid is None or uid != submission_set:
            _check_algorithm(ref.digest_method, result.legacy, f"manifest reference '{ref.uri}'")
        _check_external(ref, documents, submission_set, result, in_manifest=True)


def _check_properties(
    sig: ParsedSignature, props: SignedProperties | None, signer: x509.Certificate, legacy: bool
) -> None:
    if props is None:
        present = any(is_signed_properties(el) for el in sig.root.iter())
        raise SignatureError(
            "xades:SignedProperties is not referenced by SignedInfo: its claims are not signed"
            if present
            else "the signature has no XAdES SignedProperties (DSG and the DMP sign with XAdES)"
        )
    if props.legacy != legacy:
        raise SignatureError("the signed XAdES properties are not the signature's QualifyingProperties")
    if not props.certificates:
        raise SignatureError("SignedProperties has no SigningCertificate")
    for cd in props.certificates:
        _check_algorithm(cd.algorithm, legacy, "SigningCertificate CertDigest")
    if not names_certificate(props, signer):
        raise SignatureError(
            f"SignedProperties/SigningCertificate does not name the signer's {describe(signer)}"
        )
