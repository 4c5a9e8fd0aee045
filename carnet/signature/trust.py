"""Trust anchors and revocation lists from one PEM file (CARNET_TRUST_STORE); chain validation.

The trust store is the only source of trust: there is no default CA bundle, and a signature is
never checked against the web PKI (signxml, for one, falls back to certifi when given no CA).
The file holds the anchors (CERTIFICATE blocks: the IGC-Santé roots in production, a test
root in tests) and may hold X509 CRL blocks. A CRL is used only if it verifies with the key of
the issuer it names; a certificate it lists is refused; an expired CRL fails closed, since it
can no longer say that a certificate is not revoked. Carnet makes no network call to fetch a
CRL or ask an OCSP responder.

Chain building and RFC 5280 path validation are ``cryptography``'s (``x509.verification``): the
CA certificates must satisfy its Web PKI CA profile (BasicConstraints, KeyUsage keyCertSign),
the signer's certificate must allow digitalSignature or nonRepudiation and must not be a CA.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


class TrustStoreError(ValueError):
    """The configured trust store cannot be used (a deployment error, reported at start-up)."""


class CertificateError(Exception):
    """A certificate of the signer's chain is not acceptable; the message names it."""

    def __init__(self, certificate: x509.Certificate | None, reason: str):
        self.certificate = certificate
        super().__init__(f"{describe(certificate)} {reason}" if certificate is not None else reason)


def describe(cert: x509.Certificate) -> str:
    """How a failure names a certificate: subject, serial and issuer, as an operator looks it up."""
    return (
        f"certificate '{cert.subject.rfc4514_string()}' (serial {cert.serial_number:X}, "
        f"issued by '{cert.issuer.rfc4514_string()}')"
    )


def _signer_key_usage(_policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    # A signing certificate: IGC-Santé "signature" certificates carry nonRepudiation, organisation
    # seals and CPS authentication certificates digitalSignature.
    if not (usage.digital_signature or usage.content_commitment):
        raise ValueError("its KeyUsage allows neither digitalSignature nor nonRepudiation")


def _not_a_ca(_policy: Policy, _cert: x509.Certificate, bc: x509.BasicConstraints | None) -> None:
    if bc is not None and bc.ca:
        raise ValueError("it is a CA certificate, not a signer's")


def _signer_policy() -> ExtensionPolicy:
    return (
        ExtensionPolicy.permit_all()
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _signer_key_usage)
        .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _not_a_ca)
    )


@dataclass(frozen=True)
class TrustStore:
    anchors: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    source: str = "the trust store"

    @classmethod
    def load(cls, path: str | Path) -> TrustStore:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise TrustStoreError(f"trust store {p}: cannot be read ({exc.strerror})") from None
        return cls.from_pem(data, str(p))

    @classmethod
    def from_pem(cls, data: bytes, source: str = "the trust store") -> TrustStore:
        anchors: list[x509.Certificate] = []
        crls: list[x509.CertificateRevocationList] = []
        for block in _PEM_BLOCK.finditer(data):
            kind = block.group(1).decode()
            if kind not in ("CERTIFICATE", "X509 CRL"):
                # A private key here would be a leak waiting to happen; say so rather than skip it.
                raise TrustStoreError(
                    f"trust store {source}: holds a '{kind}' block; only CERTIFICATE and X509 CRL "
                    "blocks belong there"
                )
            try:
                if kind == "CERTIFICATE":
                    anchors.append(x509.load_pem_x509_certificate(block.group(0)))
                else:
                    crls.append(x509.load_pem_x509_crl(block.group(0)))
            except ValueError as exc:
                raise TrustStoreError(f"trust store {source}: a {kind} block is unreadable: {exc}") from None
        if not anchors:
            raise TrustStoreError(f"trust store {source}: holds no CERTIFICATE (no trust anchor)")
        return cls(tuple(anchors), tuple(crls), source)

    def validate(
        self, leaf: x509.Certificate, intermediates: list[x509.Certificate], at: datetime | None = None
    ) -> list[x509.Certificate]:
        """The chain from ``leaf`` to an anchor of this store, valid and unrevoked at ``at``.

        Raises CertificateError naming the certificate at fault. The signer's own validity is
        checked first so an expired certificate is reported as expired, not as "no path".
        """
        at = (at or datetime.now(UTC)).astimezone(UTC)
        _check_validity(leaf, at)
        builder = (
            PolicyBuilder()
            .store(Store(list(self.anchors)))
            .time(at)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_signer_policy())
        )
        try:
            chain = builder.build_client_verifier().verify(leaf, intermediates).chain
        except VerificationError as exc:
            for cert in intermediates:
                if cert.subject == leaf.issuer:
                    _check_validity(cert, at)
            raise CertificateError(
                leaf, f"does not chain to a trust anchor of {self.source}: {exc}"
            ) from None
        for cert, issuer in zip(chain, chain[1:], strict=False):
            self._check_revocation(cert, issuer, at)
        return list(chain)

    def _check_revocation(self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> None:
        for crl in self.crls:
            if crl.issuer != cert.issuer:
                continue
            # The issuer signed the chain that was just verified: its key is a signing key.
            if not crl.is_signature_valid(cast(CertificateIssuerPublicKeyTypes, issuer.public_key())):
                raise CertificateError(
                    cert,
                    f"cannot be checked for revocation: the CRL of '{crl.issuer.rfc4514_string()}' in "
                    f"{self.source} does not verify with that issuer's key",
                )
            next_update = crl.next_update_utc
            if next_update is not None and next_update < at:
                raise CertificateError(
                    cert,
                    f"cannot be checked for revocation: the CRL of '{crl.issuer.rfc4514_string()}' in "
                    f"{self.source} expired on {next_update.isoformat()}",
                )
            revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if revoked is not None:
                raise CertificateError(
                    cert, f"is revoked since {revoked.revocation_date_utc.isoformat()} (CRL of {self.source})"
                )


def _check_validity(cert: x509.Certificate, at: datetime) -> None:
    if at < cert.not_valid_before_utc:
        raise CertificateError(cert, f"is not valid before {cert.not_valid_before_utc.isoformat()}")
    if at > cert.not_valid_after_utc:
        raise CertificateError(cert, f"expired on {cert.not_valid_after_utc.isoformat()}")


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()
