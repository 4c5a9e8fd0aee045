"""A local test authority (``carnet pki init``) and the loading of trust material.

The authority mimics the shape of the IGC-Santé chain a DMP deployment trusts: a root CA and one
"cachet" (organisation signing) certificate issued by it, which signs the VIHF assertions and JWTs
that ``carnet token issue`` mints. It is for test harnesses and editors only; its files live under
``<data dir>/pki`` and the server trusts them only when told to (CARNET_TRUST_STORE,
CARNET_JWT_KEYS). Nothing here ever falls back to a public CA bundle.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import NameOID

PKI_DIR = "pki"
AUTHORITY_CERT = "authority.pem"
AUTHORITY_KEY = "authority.key"
SIGNER_CERT = "signer.pem"
SIGNER_KEY = "signer.key"


class TrustError(ValueError):
    """Trust material is missing or unusable; the message names the file and the problem."""


@dataclass(frozen=True)
class AuthorityFiles:
    directory: Path

    @property
    def authority_cert(self) -> Path:
        return self.directory / AUTHORITY_CERT

    @property
    def authority_key(self) -> Path:
        return self.directory / AUTHORITY_KEY

    @property
    def signer_cert(self) -> Path:
        return self.directory / SIGNER_CERT

    @property
    def signer_key(self) -> Path:
        return self.directory / SIGNER_KEY


@dataclass(frozen=True)
class Signer:
    """A signing key with its certificate chain (leaf first), as signxml and PyJWT want them."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate]

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def kid(self) -> str:
        """RFC 7638-like key id: the SHA-256 of the certificate, as JWT ``kid``."""
        return certificate_thumbprint(self.certificate)


def certificate_thumbprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()[:32]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Carnet test authority (not for production)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def init(directory: Path, force: bool = False, now: datetime | None = None) -> AuthorityFiles:
    """Create the test authority and its signing certificate under ``directory``.

    Refuses to replace an existing authority unless ``force``: tokens already issued by it, and
    deployments that trust it, would silently stop working.
    """
    files = AuthorityFiles(directory)
    if files.authority_cert.exists() and not force:
        raise TrustError(f"a test authority already exists in {directory} (use --force to replace it)")
    directory.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name("Carnet Test Authority")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        # Backdated so that tests can verify "as of" a past instant inside the validity window.
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Carnet test cachet ORG_SIGN"))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1095))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    plain = serialization.NoEncryption()
    _write_private(files.authority_key, ca_key.private_bytes(pem, pkcs8, plain))
    _write_private(files.signer_key, leaf_key.private_bytes(pem, pkcs8, plain))
    files.authority_cert.write_bytes(ca_cert.public_bytes(pem))
    files.signer_cert.write_bytes(leaf_cert.public_bytes(pem))
    return files


def load_signer(directory: Path, cert: Path | None = None, key: Path | None = None) -> Signer:
    """The signing key and chain of the test authority in ``directory`` (or explicit files)."""
    files = AuthorityFiles(directory)
    cert_path, key_path = cert or files.signer_cert, key or files.signer_key
    try:
        key_obj: PrivateKeyTypes = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
    except FileNotFoundError as exc:
        raise TrustError(f"{exc.filename} not found: run 'carnet pki init' first") from exc
    except ValueError as exc:
        raise TrustError(f"cannot read the signing key or certificate: {exc}") from exc
    if not isinstance(key_obj, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TrustError(f"{key_path}: only RSA and EC signing keys are supported")
    if cert is None and files.authority_cert.exists():
        chain += x509.load_pem_x509_certificates(files.authority_cert.read_bytes())
    return Signer(key_obj, chain)


def load_certificates(path: Path, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except FileNotFoundError as exc:
        raise TrustError(f"{what} {path} does not exist") from exc
    except ValueError as exc:
        raise TrustError(f"{what} {path} holds no readable PEM certificate: {exc}") from exc
    return certs


def load_public_keys(path: Path) -> dict[str, PublicKeyTypes]:
    """JWT verification keys, by ``kid``: PEM certificates (kid = thumbprint) or public keys."""
    data = Path(path).read_bytes() if Path(path).exists() else None
    if data is None:
        raise TrustError(f"JWT key file {path} does not exist")
    keys: dict[str, PublicKeyTypes] = {}
    if b"CERTIFICATE" in data:
        for cert in x509.load_pem_x509_certificates(data):
            keys[certificate_thumbprint(cert)] = cert.public_key()
    for block in data.split(b"-----END PUBLIC KEY-----")[:-1]:
        pem = block[block.index(b"-----BEGIN PUBLIC KEY-----") :] + b"-----END PUBLIC KEY-----\n"
        public = serialization.load_pem_public_key(pem)
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        keys[hashlib.sha256(der).hexdigest()[:32]] = public
    if not keys:
        raise TrustError(f"JWT key file {path} holds no PEM certificate or public key")
    return keys
