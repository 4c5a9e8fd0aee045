"""Sign and verify time for a submission of 5 documents of 100 KiB (carnet.signature, in-process).

Usage:  PYTHONPATH=. python bench/bench_signature.py [--documents 5] [--kib 100] [--runs 200]

A throw-away PKI (root -> intermediate -> signer) is generated first. For each signature form the
script times, per submission:

- sign:    building the submission-set signature, given the document digests the repository
           already computed on intake (what sealing costs);
- sign+digest: the same, hashing the documents first (what `carnet sign` costs);
- verify:  chain validation against the trust store, signature value, SignedInfo and manifest
           digests checked against the intake digests (what ITI-41 costs);
- verify+digest: the same, hashing the documents again (what `carnet verify` costs).

Keys are loaded once, as the server does (loading a PEM key per signature costs tens of ms).
Prints median and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carnet.signature.dsg import Signer, content_of, sign_submission_set  # noqa: E402
from carnet.signature.trust import TrustStore  # noqa: E402
from carnet.signature.verify import Content, verify  # noqa: E402

SS = "1.2.250.1.999.9.1"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn: str, key, issuer_cn: str, issuer_key, ca: bool) -> x509.Certificate:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    usage = x509.KeyUsage(
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
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.BasicConstraints(ca=ca, path_length=0 if ca and issuer_key is not key else None), True
        )
        .add_extension(usage, True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False)
        .sign(issuer_key, hashes.SHA256())
    )


def pki(ec_signer: bool) -> tuple[Signer, TrustStore]:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    inter_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = ec.generate_private_key(ec.SECP256R1()) if ec_signer else rsa.generate_private_key(65537, 2048)
    root = _cert("Bench Root", root_key, "Bench Root", root_key, True)
    inter = _cert("Bench CA", inter_key, "Bench Root", root_key, True)
    leaf = _cert("Bench Signer", key, "Bench CA", inter_key, False)
    return Signer(key, (leaf, inter)), TrustStore((root,))


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def measure(
    signer: Signer, trust: TrustStore, legacy: bool, raw: dict[str, bytes], runs: int
) -> list[tuple[float, float]]:
    intake = {uid: content_of(uid, data) for uid, data in raw.items()}

    def cold() -> dict[str, Content]:
        return {uid: content_of(uid, data) for uid, data in raw.items()}

    signature = sign_submission_set(SS, intake, signer, legacy=legacy)
    return [
        timed(lambda: sign_submission_set(SS, intake, signer, legacy=legacy), runs),
        timed(lambda: sign_submission_set(SS, cold(), signer, legacy=legacy), runs),
        timed(lambda: verify(signature, intake, trust, submission_set=SS), runs),
        timed(lambda: verify(signature, cold(), trust, submission_set=SS), runs),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--documents", type=int, default=5)
    p.add_argument("--kib", type=int, default=100)
    p.add_argument("--runs", type=int, default=200)
    args = p.parse_args()
    raw = {f"1.2.250.1.999.9.{i + 2}": os.urandom(args.kib * 1024) for i in range(args.documents)}
    print(f"{args.documents} documents x {args.kib} KiB, {args.runs} runs, times in ms (median / p95)")
    print(f"{'form':38} {'sign':>13} {'sign+digest':>13} {'verify':>13} {'verify+digest':>14}")
    for label, ec_signer, legacy in (
        ("RSA-2048, SHA-256, XAdES 1.3.2", False, False),
        ("RSA-2048, SHA-1, XAdES 1.1.1 (DMP)", False, True),
        ("ECDSA P-256, SHA-256, XAdES 1.3.2", True, False),
    ):
        signer, trust = pki(ec_signer)
        cells = [f"{m:6.2f} / {p95:5.2f}" for m, p95 in measure(signer, trust, legacy, raw, args.runs)]
        print(f"{label:38} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} {cells[3]:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
