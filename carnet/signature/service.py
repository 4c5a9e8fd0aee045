"""The deployment's signature settings, loaded and checked once at start-up.

CARNET_SIGNATURE_POLICY decides what a Provide and Register must carry:

- ``require``: a submission without a signature document, with a signature that does not
  verify, or with a document no verified signature covers, is refused;
- ``verify``: every signature document is verified and a failing one refuses the submission;
  unsigned submissions pass;
- ``off`` (the default): signature documents are stored like any document, unverified.

``verify`` and ``require`` need CARNET_TRUST_STORE: without it Carnet refuses to start rather
than trust a default CA bundle. Sealing (CARNET_SEAL_CERT + CARNET_SEAL_KEY) needs it too: the
seal is verified like any signature, so its certificate must chain to the trust store.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from carnet.signature.dsg import Signer, SignerError
from carnet.signature.trust import CertificateError, TrustStore, TrustStoreError

if TYPE_CHECKING:
    from carnet.config import Settings


class SignaturePolicy(enum.StrEnum):
    REQUIRE = "require"
    VERIFY = "verify"
    OFF = "off"


class SignatureConfigError(ValueError):
    """The signature settings cannot work; the message names the variable to fix."""


@dataclass(frozen=True)
class Signatures:
    policy: SignaturePolicy = SignaturePolicy.OFF
    trust: TrustStore | None = None
    sealer: Signer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Signatures:
        try:
            policy = SignaturePolicy(settings.signature_policy)
        except ValueError:
            raise SignatureConfigError(
                f"CARNET_SIGNATURE_POLICY='{settings.signature_policy}': use require, verify or off"
            ) from None
        try:
            trust = TrustStore.load(settings.trust_store) if settings.trust_store else None
        except TrustStoreError as exc:
            raise SignatureConfigError(f"CARNET_TRUST_STORE: {exc}") from None
        if policy != SignaturePolicy.OFF and trust is None:
            raise SignatureConfigError(
                f"CARNET_SIGNATURE_POLICY={policy} needs CARNET_TRUST_STORE (a PEM file of trust anchors): "
                "Carnet never falls back to a default CA bundle"
            )
        sealer = None
        if settings.seal_cert or settings.seal_key:
            if not (settings.seal_cert and settings.seal_key):
                raise SignatureConfigError("sealing needs both CARNET_SEAL_CERT and CARNET_SEAL_KEY")
            try:
                sealer = Signer.load(settings.seal_cert, settings.seal_key, settings.seal_key_password)
            except SignerError as exc:
                raise SignatureConfigError(f"CARNET_SEAL_CERT/CARNET_SEAL_KEY: {exc}") from None
            if trust is None:
                raise SignatureConfigError(
                    "sealing (CARNET_SEAL_CERT) needs CARNET_TRUST_STORE: the seal is verified like any "
                    "signature"
                )
            try:
                trust.validate(sealer.certificate, list(sealer.chain[1:]))
            except CertificateError as exc:
                raise SignatureConfigError(f"CARNET_SEAL_CERT: the seal {exc}") from None
        return cls(policy, trust, sealer)
