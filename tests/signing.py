"""A test PKI built with ``cryptography`` once per session, and ITI-41 requests carrying signatures.

root CA -> intermediate CA (pathlen 0) -> leaves: a professional's RSA signing certificate, an
ECDSA one, the organisation seal, an expired one, a revoked one (listed by the intermediate's
CRL); plus an unrelated root with its own leaf (the "wrong CA"). The CAs are backdated ten
years so a leaf's validity can be moved around without invalidating its issuers.
"""

from __future__ import annotations

import atexit
import base64
import functools
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from carnet.signature import vocabulary as sv
from carnet.signature.dsg import Signer
from carnet.signature.trust import TrustStore
from carnet.xds import vocabulary as v
from tests.builders import Doc, submit_objects_request

NOW = datetime.now(UTC)


def _name(cn: str, org: str = "Hopital Test") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)  # issuers below the root

    @property
    def signer(self) -> Signer:
        return Signer(self.key, (self.cert, *self.chain))

    def pem_chain(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (self.cert, *self.chain))

    def pem_key(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _issue(
    cn: str,
    issuer: Issued | None,
    *,
    ca: bool,
    pathlen: int | None = None,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    org: str = "Hopital Test",
) -> Issued:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(cn, org)
    issuer_name = issuer.cert.subject if issuer else subject
    issuer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(days=3650))
        .not_valid_after(not_after or NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen), critical=True)
        .add_extension(_usage(ca=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    cert = builder.sign(issuer_key, hashes.SHA256())
    # The root never travels in a chain: it is the trust anchor.
    chain = [c for c in ([issuer.cert, *issuer.chain] if issuer else []) if c.subject != c.issuer]
    return Issued(cert, key, chain)


@dataclass
class PKI:
    root: Issued
    intermediate: Issued
    doctor: Issued
    doctor_ec: Issued
    seal: Issued
    expired: Issued
    revoked: Issued
    other_root: Issued
    stranger: Issued
    crl: x509.CertificateRevocationList
    directory: Path

    def trust(self, *, with_crl: bool = True) -> TrustStore:
        return TrustStore.load(self.trust_file if with_crl else self.trust_file_no_crl)

    @property
    def trust_file(self) -> Path:
        return self.directory / "trust.pem"

    @property
    def trust_file_no_crl(self) -> Path:
        return self.directory / "trust-no-crl.pem"

    def files(self, who: Issued, name: str) -> tuple[Path, Path]:
        """PEM chain and key of ``who`` written under the PKI directory."""
        cert, key = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        cert.write_bytes(who.pem_chain())
        key.write_bytes(who.pem_key())
        return cert, key


def crl_of(
    issuer: Issued,
    revoked: list[x509.Certificate],
    *,
    next_update: datetime | None = None,
    signing_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(NOW - timedelta(days=1))
        .next_update(next_update or NOW + timedelta(days=7))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(NOW - timedelta(hours=1))
            .build()
        )
    return builder.sign(signing_key or issuer.key, hashes.SHA256())


def pem(*items: x509.Certificate | x509.CertificateRevocationList) -> bytes:
    return b"".join(i.public_bytes(serialization.Encoding.PEM) for i in items)


@functools.cache
def build_pki() -> PKI:
    root = _issue("Carnet Test Root CA", None, ca=True, pathlen=1)
    inter = _issue("Carnet Test Signing CA", root, ca=True, pathlen=0)
    doctor = _issue("Dr Alice MEDECIN", inter, ca=False)
    doctor_ec = _issue("Dr Bob EC", inter, ca=False, key=ec.generate_private_key(ec.SECP256R1()))
    seal = _issue("Hopital Test cachet", inter, ca=False, org="Hopital Test")
    expired = _issue(
        "Dr Expired",
        inter,
        ca=False,
        not_before=NOW - timedelta(days=730),
        not_after=NOW - timedelta(days=365),
    )
    revoked = _issue("Dr Revoked", inter, ca=False)
    other_root = _issue("Some Other Root CA", None, ca=True, pathlen=1)
    stranger = _issue("Dr Stranger", other_root, ca=False)
    crl = crl_of(inter, [revoked.cert])
    directory = Path(tempfile.mkdtemp(prefix="carnet-test-pki-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    (directory / "trust.pem").write_bytes(pem(root.cert, crl))
    (directory / "trust-no-crl.pem").write_bytes(pem(root.cert))
    return PKI(root, inter, doctor, doctor_ec, seal, expired, revoked, other_root, stranger, crl, directory)


# --- ITI-41 requests with a signature document ----------------------------------------------


def signature_entry_xml(
    entry_id: str,
    unique_id: str,
    pid: str,
    *,
    format_code: str = sv.FORMAT_XMLDSIG,
    format_scheme: str = sv.FORMAT_SCHEME_URN,
) -> str:
    """A signature DocumentEntry as the DMP's senders write it (DRIMbox), by hand."""

    def slot(name: str, *values: str) -> str:
        vals = "".join(f"<rim:Value>{escape(val)}</rim:Value>" for val in values)
        return f"<rim:Slot name={quoteattr(name)}><rim:ValueList>{vals}</rim:ValueList></rim:Slot>"

    def code(scheme_uuid: str, code_value: str, coding_scheme: str, display: str, n: str) -> str:
        return (
            f'<rim:Classification classificationScheme="{scheme_uuid}" classifiedObject="{entry_id}" '
            f'nodeRepresentation={quoteattr(code_value)} id="{entry_id}-{n}">'
            f"{slot('codingScheme', coding_scheme)}"
            f"<rim:Name><rim:LocalizedString value={quoteattr(display)}/></rim:Name></rim:Classification>"
        )

    return (
        f'<rim:ExtrinsicObject id="{entry_id}" mimeType="text/xml" objectType="{v.DE_STABLE}">'
        f"{slot('creationTime', '20240115110000')}{slot('languageCode', 'art')}{slot('sourcePatientId', pid)}"
        f'<rim:Name><rim:LocalizedString value="Source"/></rim:Name>'
        f'<rim:Classification classificationScheme="{v.DE_AUTHOR}" classifiedObject="{entry_id}" '
        f'nodeRepresentation="" id="{entry_id}-au">'
        f"{slot('authorInstitution', 'Hopital Test^^^^^&1.2.250.1.71.4.2.2&ISO^^^^123456789')}"
        f"</rim:Classification>"
        + code(v.DE_CLASS_CODE, sv.CLASS_SIGNATURE, "URN", "Digital Signature", "cl")
        + code(v.DE_TYPE_CODE, "E1762", "ASTM", "Full Document", "ty")
        + code(v.DE_FORMAT_CODE, format_code, format_scheme, "Default Signature Style", "fo")
        + code(v.DE_HCFT_CODE, "SA01", "1.2.250.1.71.4.2.4", "Etablissement public de sante", "hc")
        + code(v.DE_PRACTICE_SETTING_CODE, "ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement", "ps")
        + code(v.DE_CONFIDENTIALITY_CODE, "N", "2.16.840.1.113883.5.25", "Normal", "cf")
        + code(v.DE_EVENT_CODE, sv.PURPOSE_SOURCE, sv.PURPOSE_SCHEME, "Source", "ev")
        + f'<rim:ExternalIdentifier identificationScheme="{v.DE_PATIENT_ID}" value={quoteattr(pid)} '
        f'id="{entry_id}-pid" registryObject="{entry_id}"><rim:Name>'
        f'<rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name></rim:ExternalIdentifier>'
        f'<rim:ExternalIdentifier identificationScheme="{v.DE_UNIQUE_ID}" value="{unique_id}" '
        f'id="{entry_id}-uid" registryObject="{entry_id}"><rim:Name>'
        f'<rim:LocalizedString value="XDSDocumentEntry.uniqueId"/></rim:Name></rim:ExternalIdentifier>'
        f"</rim:ExtrinsicObject>"
    )


def association(assoc_id: str, kind: str, source: str, target: str, member: bool = False) -> str:
    status = (
        '<rim:Slot name="SubmissionSetStatus"><rim:ValueList><rim:Value>Original</rim:Value>'
        "</rim:ValueList></rim:Slot>"
        if member
        else ""
    )
    return (
        f'<rim:Association id="{assoc_id}" associationType="{kind}" sourceObject="{source}" '
        f'targetObject="{target}">{status}</rim:Association>'
    )


def signed_request(
    pid: str,
    docs: list[Doc],
    signature: bytes | None,
    *,
    ss_unique_id: str,
    signature_unique_id: str,
    format_code: str = sv.FORMAT_XMLDSIG,
    format_scheme: str = sv.FORMAT_SCHEME_URN,
    signs: list[str] | None = None,
) -> str:
    """A ProvideAndRegisterDocumentSetRequest with ``docs`` and the signature document "Sig01".

    ``signs`` lists the targets of the signature's ``signs`` associations (default: the
    SubmissionSet, as the DMP does).
    """
    sig_id = "Sig01"
    extra = ""
    if signature is not None:
        extra = signature_entry_xml(
            sig_id, signature_unique_id, pid, format_code=format_code, format_scheme=format_scheme
        ) + association("asSig", v.HAS_MEMBER, "SubmissionSet01", sig_id, member=True)
        for i, target in enumerate(signs or ["SubmissionSet01"]):
            extra += association(f"asSigns{i}", v.SIGNS, sig_id, target)
    sor = submit_objects_request(pid, docs, extra=extra, ss_unique_id=ss_unique_id)
    documents = "".join(
        f'<xdsb:Document id="{d.id}">{base64.b64encode(d.content).decode()}</xdsb:Document>' for d in docs
    )
    if signature is not None:
        documents += f'<xdsb:Document id="{sig_id}">{base64.b64encode(signature).decode()}</xdsb:Document>'
    return (
        f'<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="{v.XDSB}">{sor}{documents}'
        f"</xdsb:ProvideAndRegisterDocumentSetRequest>"
    )
