"""Parse throughput and peak memory of carnet.soap.mtom for a single large attachment.

Usage:  python bench/bench_mtom.py [--size-mib 20] [--runs 5] [--email]

Builds an MTOM message (SOAP envelope + one random attachment) with write_multipart, then
times read_multipart on it, from a file on disk and from memory, spooling the attachment to a
temporary directory as the repository would.  Peak memory is measured in a separate run under
tracemalloc (which slows allocation-heavy code, so it is not timed).  The SHA-1 + SHA-256 cost
alone is printed as the ceiling the parser cannot beat, since it hashes every byte.  --email
adds the stdlib email parser on the same body for comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carnet.soap.mtom import cid_url, read_multipart, write_multipart  # noqa: E402

MIB = 1 << 20


def build_message(size: int) -> tuple[str, bytes, bytes]:
    payload = os.urandom(size)
    cid = "1.urn:uuid:0f7c3a52-5d1e-4bfb-9a9e-2f1c6d0b7a11@carnet"
    root = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:xdsb="urn:ihe:iti:xds-b:2007" xmlns:xop="http://www.w3.org/2004/08/xop/include">'
        "<s:Body><xdsb:RetrieveDocumentSetResponse><xdsb:DocumentResponse><xdsb:Document>"
        f'<xop:Include href="{cid_url(cid)}"/>'
        "</xdsb:Document></xdsb:DocumentResponse></xdsb:RetrieveDocumentSetResponse></s:Body></s:Envelope>"
    ).encode()
    content_type, body = write_multipart(root, [(cid, "application/octet-stream", payload)])
    return content_type, b"".join(body), payload


def time_runs(runs: int, fn: object) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return times


def report(label: str, nbytes: int, times: list[float]) -> None:
    best, median = min(times), statistics.median(times)
    print(f"{label:<38} best {nbytes / MIB / best:8.1f} MiB/s   median {nbytes / MIB / median:8.1f} MiB/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--email", action="store_true", help="also time the stdlib email parser")
    args = ap.parse_args()

    content_type, body, payload = build_message(args.size_mib * MIB)
    print(f"message: {len(body)} bytes ({len(body) / MIB:.2f} MiB), attachment {len(payload)} bytes")

    with tempfile.TemporaryDirectory(prefix="bench-mtom-") as tmp:
        body_path = Path(tmp) / "body.bin"
        body_path.write_bytes(body)
        spool = Path(tmp) / "spool"
        spool.mkdir()

        def hashes_only() -> None:
            hashlib.sha1(payload, usedforsecurity=False).digest()
            hashlib.sha256(payload).digest()

        def from_file() -> None:
            with body_path.open("rb") as fh:
                read_multipart(fh, content_type, spool_dir=str(spool)).discard()

        def from_memory() -> None:
            read_multipart(io.BytesIO(body), content_type, spool_dir=str(spool)).discard()

        from_file()  # warm the page cache
        report("SHA-1 + SHA-256 only (ceiling)", len(payload), time_runs(args.runs, hashes_only))
        report("read_multipart, file -> spool file", len(body), time_runs(args.runs, from_file))
        report("read_multipart, BytesIO -> spool file", len(body), time_runs(args.runs, from_memory))

        tracemalloc.start()
        with body_path.open("rb") as fh:
            message = read_multipart(fh, content_type, spool_dir=str(spool))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        part = next(iter(message.attachments.values()))
        assert part.sha256 == hashlib.sha256(payload).hexdigest() and part.path is not None
        message.discard()
        print(f"peak traced memory (read_multipart, file source): {peak / MIB:.2f} MiB")

        if args.email:
            import email.parser
            import email.policy

            def with_email() -> None:
                raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
                msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
                for p in msg.iter_parts():  # type: ignore[attr-defined]
                    data = p.get_payload(decode=True)
                    hashlib.sha1(data, usedforsecurity=False).digest()
                    hashlib.sha256(data).digest()

            report("stdlib email.parser (in memory)", len(body), time_runs(min(args.runs, 3), with_email))
            tracemalloc.start()
            with_email()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"peak traced memory (stdlib email.parser): {peak / MIB:.2f} MiB")


if __name__ == "__main__":
    main()
