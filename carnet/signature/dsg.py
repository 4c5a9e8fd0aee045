"""Produce signature documents (IHE DSG, ITI TF-3 §5.5) and the XDS metadata that carries them.

Two shapes are written:

- the **submission-set signature** (DSG §5.5.3.1), in the structure the DMP's senders use: SignedInfo
  references a ``ds:Manifest`` (Id ``IHEManifest``) listing ``urn:oid:<SubmissionSet.uniqueId>``
  with the zero digest ``AA==`` and ``urn:oid:<uniqueId>`` of every document with the digest of
  its bytes, plus the XAdES SignedProperties. By default with SHA-256, Canonical XML 1.1 with
  comments and XAdES 1.3.2 (DSG §5.5.2); ``legacy=True`` writes the DMP's historical form
  (RSA-SHA1, SHA-1, C14N 1.0 with comments, XAdES 1.1.1) for testing receivers that expect it;
- the **detached signature** (DSG §5.5.3): one SignedInfo reference per document.

A signature document is recognised in a submission by its formatCode (DSG detached/enveloping,
or the DMP's ``http://www.w3.org/2000/09/xmldsig#``) or its classCode "Digital Signature".
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from carnet.signature import vocabulary as sv
from carnet.signature.verify import Content
from carnet.signature.xades import build_qualifying_properties
from carnet.signature.xmldsig import (
    PrivateKey,
    Reference,
    add_reference,
    b64,
    element,
    fill_digest,
    finish,
    signature_method_for,
)
from carnet.xds import vocabulary as v
from carnet.xds.model import Association, Author, Code, DocumentEntry, Submission

MANIFEST_ID = "IHEManifest"
ZERO_DIGEST = "AA=="  # the DMP's encoding of DSG's "hash value 0" for the SubmissionSet reference


class SignerError(ValueError):
    """The signing certificate or key cannot be used."""


@dataclass(frozen=True)
class Signer:
    """A private key and its certificate chain, signer's certificate first."""

    key: PrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @classmethod
    def load(cls, cert_path: str | Path, key_path: str | Path, password: str | None = None) -> Signer:
        """Read a PEM chain (signer's certificate first) and a PEM private key; check they match."""
        try:
            chain = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())
        except (OSError, ValueError) as exc:
            raise SignerError(
                f"certificate {cert_path}: cannot be read as PEM certificates ({exc})"
            ) from None
        try:
            key = serialization.load_pem_private_key(
                Path(key_path).read_bytes(), password.encode() if password else None
            )
        except (OSError, ValueError, TypeError) as exc:
            raise SignerError(f"private key {key_path}: cannot be read ({exc})") from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SignerError(f"private key {key_path}: only RSA and EC keys can sign XML signatures here")
        der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(der, spki) != chain[0].public_key().public_bytes(der, spki):
            raise SignerError(
                f"private key {key_path} does not belong to the first certificate of {cert_path} "
                f"('{chain[0].subject.rfc4514_string()}')"
            )
        return cls(key, tuple(chain))


def content_of(unique_id: str, data: bytes) -> Content:
    """A document held in memory, with its digests computed now."""
    return Content(
        unique_id,
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
        lambda: data,
    )


def new_unique_id() -> str:
    """A fresh uniqueId under the UUID arc 2.25 (ITU-T X.667): needs no OID root of our own."""
    return f"2.25.{uuid.uuid4().int}"


def _skeleton(
    signer: Signer, c14n: str, method: str, signature_id: str
) -> tuple[etree._Element, etree._Element]:
    root = element(sv.DS, "Signature", nsmap={"ds": sv.DS}, Id=signature_id)
    si = element(sv.DS, "SignedInfo", root)
    element(sv.DS, "CanonicalizationMethod", si, Algorithm=c14n)
    element(sv.DS, "SignatureMethod", si, Algorithm=method)
    element(sv.DS, "SignatureValue", root)
    x509_data = element(sv.DS, "X509Data", element(sv.DS, "KeyInfo", root))
    for cert in signer.chain:
        element(sv.DS, "X509Certificate", x509_data, b64(cert.public_bytes(serialization.Encoding.DER)))
    return root, si


def _document_reference(parent: etree._Element, content: Content, digest_method: str) -> Reference:
    return add_reference(
        parent,
        f"urn:oid:{content.unique_id}",
        digest_method,
        digest_value=b64(content.digest_of(digest_method)),
    )


def sign_submission_set(
    submission_set: str,
    documents: Mapping[str, Content],
    signer: Signer,
    *,
    legacy: bool = False,
    purpose: str = sv.PURPOSE_SOURCE,
    signing_time: datetime | None = None,
) -> bytes:
    """A submission-set signature over ``documents`` (uniqueId -> content), as bytes to store."""
    signing_time = signing_time or datetime.now(UTC)
    digest_method = sv.SHA1 if legacy else sv.SHA256
    c14n = sv.C14N_10_COMMENTS if legacy else sv.C14N_11_COMMENTS
    # The DMP form's references carry no Transforms (C14N 1.0 applies); ours name C14N 1.1.
    transforms = () if legacy else (sv.C14N_11,)
    signature_id = f"S-{uuid.uuid4().hex}"
    root, si = _skeleton(signer, c14n, signature_method_for(signer.key, digest_method), signature_id)
    manifest_ref = add_reference(
        si, f"#{MANIFEST_ID}", digest_method, type_=sv.MANIFEST_TYPE, transforms=transforms
    )
    props_ref = add_reference(
        si,
        f"#{signature_id}-SignedProperties",
        digest_method,
        type_=sv.SIGNED_PROPERTIES_TYPE_111 if legacy else sv.SIGNED_PROPERTIES_TYPE,
        transforms=transforms,
    )
    if legacy:
        # The DMP carries the purpose here, outside what is signed; kept for receivers that read it.
        props = element(sv.DS, "SignatureProperties", element(sv.DS, "Object", root))
        element(
            sv.DS, "SignatureProperty", props, purpose, Id="purposeOfSignature", Target=f"#{signature_id}"
        )
    manifest = element(sv.DS, "Manifest", element(sv.DS, "Object", root), Id=MANIFEST_ID)
    add_reference(manifest, f"urn:oid:{submission_set}", digest_method, digest_value=ZERO_DIGEST)
    for content in documents.values():
        _document_reference(manifest, content, digest_method)
    signed_props = build_qualifying_properties(
        root,
        namespace=sv.XADES_111 if legacy else sv.XADES_132,
        target=signature_id,
        properties_id=f"{signature_id}-SignedProperties",
        certificate=signer.certificate,
        signing_time=signing_time,
        digest_method=digest_method,
        purpose=purpose,
    )
    fill_digest(manifest_ref, manifest)
    fill_digest(props_ref, signed_props)
    return finish(root, signer.key)


def sign_detached(
    documents: Mapping[str, Content],
    signer: Signer,
    *,
    purpose: str = sv.PURPOSE_AUTHOR,
    signing_time: datetime | None = None,
) -> bytes:
    """A DSG detached signature: SignedInfo references each document by urn:oid:<uniqueId>."""
    signature_id = f"S-{uuid.uuid4().hex}"
    root, si = _skeleton(
        signer, sv.C14N_11_COMMENTS, signature_method_for(signer.key, sv.SHA256), signature_id
    )
    for content in documents.values():
        _document_reference(si, content, sv.SHA256)
    props_ref = add_reference(
        si,
        f"#{signature_id}-SignedProperties",
        sv.SHA256,
        type_=sv.SIGNED_PROPERTIES_TYPE,
        transforms=(sv.C14N_11,),
    )
    signed_props = build_qualifying_properties(
        root,
        namespace=sv.XADES_132,
        target=signature_id,
        properties_id=f"{signature_id}-SignedProperties",
        certificate=signer.certificate,
        signing_time=signing_time or datetime.now(UTC),
        digest_method=sv.SHA256,
        purpose=purpose,
    )
    fill_digest(props_ref, signed_props)
    return finish(root, signer.key)


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------


def is_signature_entry(de: DocumentEntry) -> bool:
    """Whether a DocumentEntry announces a signature document (DSG §5.5.6, CI-SIS)."""
    if de.format_code is not None and de.format_code.code in sv.SIGNATURE_FORMATS:
        return True
    return de.class_code is not None and de.class_code.code == sv.CLASS_SIGNATURE


def _xon(cert: x509.Certificate) -> str | None:
    subject = cert.subject
    names = subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) or subject.get_attributes_for_oid(
        NameOID.COMMON_NAME
    )
    if not names:
        return None
    name = str(names[0].value)
    # HL7 v2 delimiters cannot appear in an XON name component.
    return "".join(" " if ch in "^&|~\\" else ch for ch in name).strip() or None


def signature_entry(
    sub: Submission,
    *,
    unique_id: str,
    signer: x509.Certificate,
    purpose: str = sv.PURPOSE_SOURCE,
) -> DocumentEntry:
    """The DocumentEntry of a submission-set signature for ``sub``, as the DMP's senders write it.

    The DRIMbox's metadata: classCode "Digital Signature", typeCode E1762, formatCode
    ``http://www.w3.org/2000/09/xmldsig#`` "Default Signature Style" (the one the DMP's value sets
    and rules know for signature documents, whatever the algorithms inside), the purpose as
    eventCode and title, languageCode ``art``, confidentiality N + MASQUE_PS + INVISIBLE_PATIENT
    (the DMP hides signature documents from everyone), service times now, legalAuthenticator
    the submission's author. Facility and practice setting come from the first document; the
    author is the signer's organisation. hash, size and repositoryUniqueId are the repository's.
    """
    ss = sub.submission_set
    assert ss is not None and sub.documents
    first = sub.documents[0]
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    institution = _xon(signer)
    title = sv.PURPOSES.get(purpose, "Digital Signature")
    legal = next((a.person for a in ss.authors if a.person), None) or first.legal_authenticator
    return DocumentEntry(
        entry_uuid=f"urn:uuid:{uuid.uuid4()}",
        title=title,
        unique_id=unique_id,
        patient_id=ss.patient_id,
        source_patient_id=first.source_patient_id or ss.patient_id,
        mime_type=sv.SIGNATURE_MIME_TYPE,
        class_code=Code(sv.CLASS_SIGNATURE, sv.CLASS_SIGNATURE_SCHEME, "Digital Signature"),
        type_code=Code(sv.TYPE_FULL_DOCUMENT, sv.TYPE_SCHEME_ASTM, "Full Document"),
        format_code=Code(sv.FORMAT_XMLDSIG, sv.FORMAT_SCHEME_URN, "Default Signature Style"),
        healthcare_facility_type_code=first.healthcare_facility_type_code,
        practice_setting_code=first.practice_setting_code,
        confidentiality_codes=[
            Code("N", "2.16.840.1.113883.5.25", "Normal"),
            Code("MASQUE_PS", sv.DMP_CONFIDENTIALITY_SCHEME, "Masqué aux professionnels de santé"),
            Code("INVISIBLE_PATIENT", sv.DMP_CONFIDENTIALITY_SCHEME, "Non visible par le patient"),
        ],
        event_codes=[Code(purpose, sv.PURPOSE_SCHEME, title)],
        authors=[Author(institutions=[institution])] if institution else list(ss.authors),
        creation_time=now,
        service_start_time=now,
        service_stop_time=now,
        legal_authenticator=legal,
        language_code=sv.LANGUAGE_ARTIFICIAL,
    )


def signature_associations(sub: Submission, entry: DocumentEntry) -> list[Association]:
    """HasMember from the SubmissionSet, and ``signs`` from the signature to the SubmissionSet (DMP)."""
    ss = sub.submission_set
    assert ss is not None
    return [
        Association(
            entry_uuid=f"urn:uuid:{uuid.uuid4()}",
            association_type=v.HAS_MEMBER,
            source=ss.entry_uuid,
            target=entry.entry_uuid,
            extra_slots={"SubmissionSetStatus": ["Original"]},
        ),
        Association(
            entry_uuid=f"urn:uuid:{uuid.uuid4()}",
            association_type=v.SIGNS,
            source=entry.entry_uuid,
            target=ss.entry_uuid,
        ),
    ]
