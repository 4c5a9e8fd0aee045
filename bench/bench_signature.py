"""Sign and verify time for a submission of 5 documents of 100 KiB (carnet.signature, in-process).

Usage:  PYTHONPATH=. python bench/bench_signature.py [--documents 5] [--kib 100] [--runs 200]

The test suite's throw-away PKI (root -> intermediate -> signer, tests/signing.py) is built first.
For each signature form the script times, per submission:

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carnet.signature.dsg import Signer, content_of, sign_submission_set  # noqa: E402
from carnet.signature.trust import TrustStore  # noqa: E402
from carnet.signature.verify import Content, verify  # noqa: E402
from tests.signing import build_pki  # noqa: E402  (the test PKI, not a second copy of it)

SS = "1.2.250.1.999.9.1"


def pki(ec_signer: bool) -> tuple[Signer, TrustStore]:
    """The test suite's PKI (root -> intermediate -> signer, tests/signing.py); the trust store
    without CRLs, as these figures have always been measured."""
    issued = build_pki()
    return (issued.doctor_ec if ec_signer else issued.doctor).signer, issued.trust(with_crl=False)


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
