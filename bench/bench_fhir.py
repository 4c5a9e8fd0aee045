#!/usr/bin/env python3
"""FHIR facade benchmark of a real Carnet server: ITI-67 search latency and ITI-65 bundles/s.

Usage:
    python bench/bench_fhir.py --backend sqlite|postgresql [--entries 100000] [--patients 5000]
                               [--clients 4] [--queries 2000] [--bundles 2000] [--quick] [--json out.json]

The server and the data set are bench_xds.py's (imported, not copied): ``carnet serve`` on a free
port with a fresh data directory (and a recreated PostgreSQL database), loaded with ``--entries``
complete DocumentEntries over ``--patients`` patients by ITI-41, as an XDS source would. Then:

1. ITI-67 Find Document References, sequential, one keep-alive client, JSON:
   ``patient.identifier=<INS>&status=current`` and the same plus ``category`` (classCode) and a
   three-year ``creation`` range, each answer's ``total`` checked against what was loaded;
   p50/p95/p99 from sending the request to having read the whole body.
2. ITI-65 Provide Document Bundle from ``--clients`` threads: each bundle a Comprehensive
   SubmissionSet, two DocumentReferences with complete metadata (contained author, source patient)
   and two 10 KiB Binaries, built with fhir.resources before the clock starts; every answer must be
   200 with a transaction-response. Reported: bundles/s (and DocumentReferences/s), latency.

Any wrong answer stops the run with exit status 1 (request and answer are printed).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_xds as xds  # noqa: E402  (the loader and server harness this benchmark reuses)
from fhir.resources.R4B.bundle import Bundle  # noqa: E402

INS = xds.INS_OID
LOINC = "http://loinc.org"


@dataclass
class Settings:
    queries: int
    warmup: int
    bundles: int
    clients: int
    doc_bytes: int


class Http:
    """One keep-alive connection."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def request(
        self, method: str, path: str, body: bytes | None = None, ctype: str | None = None
    ) -> tuple[int, bytes]:
        headers = {"Accept": "application/fhir+json"}
        if ctype:
            headers["Content-Type"] = ctype
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------------------------
# ITI-67
# ---------------------------------------------------------------------------------------------


def _nir(pid: str) -> str:
    return pid.split("^", 1)[0]


def iti67(bench: xds.Bench, s: Settings) -> dict[str, Any]:
    rng = random.Random(bench.cfg.seed + 67)
    keys = sorted(bench.loaded.by_patient)
    client = Http(bench.server.port)
    out: dict[str, Any] = {}

    def one(filtered: bool) -> tuple[float, int, int]:
        patient = rng.choice(keys)
        docs = bench.loaded.by_patient[patient]
        params = [
            ("patient.identifier", f"urn:oid:{INS}|{_nir(bench.patients[patient].pid)}"),
            ("status", "current"),
        ]
        expected = len(docs)
        if filtered:
            cls = rng.choices(xds.CLASSES, xds.CLASS_WEIGHTS)[0][0]
            year = rng.randrange(2014, 2023)
            params += [
                ("category", f"{LOINC}|{cls}"),
                ("creation", f"ge{year}"),
                ("creation", f"lt{year + 3}"),
            ]
            lo, hi = f"{year}0101000000", f"{year + 3}0101000000"
            expected = sum(1 for d in docs if d.class_code == cls and lo <= d.creation < hi)
        path = "/fhir/DocumentReference?" + urllib.parse.urlencode(params)
        t0 = time.perf_counter()
        status, body = client.request("GET", path)
        elapsed = time.perf_counter() - t0
        if status != 200:
            raise xds.BenchFailure("ITI-67", f"HTTP {status} for {path}", path.encode(), body)
        answer = json.loads(body)
        if answer.get("total") != expected or len(answer.get("entry", [])) != min(expected, 50):
            raise xds.BenchFailure(
                "ITI-67",
                f"{path}: total {answer.get('total')}, expected {expected}",
                path.encode(),
                body[:4000],
            )
        return elapsed, expected, len(body)

    try:
        xds.log(f"ITI-67: {s.warmup} warm-up searches, then 2 series of {s.queries} (sequential, 1 client)")
        for j in range(s.warmup):
            one(filtered=j % 2 == 1)
        account = xds.CpuAccount(bench.server)
        for filtered in (False, True):
            name = "patient.identifier + status" if not filtered else "+ category + creation (3 years)"
            lat, counts, sizes = [], [], []
            t0 = time.perf_counter()
            for _ in range(s.queries):
                e, n, size = one(filtered)
                lat.append(e)
                counts.append(n)
                sizes.append(size)
            res = xds.latency_summary(lat)
            res.update(
                {
                    "avg_results": round(sum(counts) / len(counts), 2),
                    "avg_response_kb": round(sum(sizes) / len(sizes) / 1000, 1),
                    "searches_per_s": round(len(lat) / (time.perf_counter() - t0), 1),
                }
            )
            out[name] = res
            xds.log(f"  {name}: p50 {res['p50_ms']:.1f} ms, p95 {res['p95_ms']:.1f} ms, "
                    f"p99 {res['p99_ms']:.1f} ms, avg {res['avg_results']} results")  # fmt: skip
        out["cpu"] = account.finish()
    finally:
        client.close()
    return out


# ---------------------------------------------------------------------------------------------
# ITI-65
# ---------------------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, **({"display": display} if display else {})}]}


def provide_bundle(rng: random.Random, patient: xds.Patient, doc_bytes: int, root: str, n: int) -> bytes:
    """An ITI-65 Comprehensive bundle: SubmissionSet, two DocumentReferences, two Binaries."""
    subject = {"reference": f"Patient?identifier=urn:oid:{INS}|{_nir(patient.pid)}"}
    person, specialty = rng.choice(xds.AUTHORS)
    xcn = person.split("^")
    author = [
        {
            "resourceType": "Practitioner",
            "id": "author",
            "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": xcn[0]}],
            "name": [{"family": xcn[1], "given": [xcn[2]], "prefix": ["Dr"]}],
        }
    ]
    entries: list[dict[str, Any]] = []
    items = []
    binaries = []
    for k in range(2):
        data = os.urandom(doc_bytes)
        cls = rng.choices(xds.CLASSES, xds.CLASS_WEIGHTS)[0]
        type_code, type_display = rng.choice(cls[3])
        dr_url, bin_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
        created = datetime.fromtimestamp(rng.randrange(xds.EPOCH_FIRST, xds.EPOCH_LAST), UTC)
        hcft = rng.choice(xds.HCFT)
        dr = {
            "resourceType": "DocumentReference",
            "contained": [
                *author,
                {
                    "resourceType": "Patient",
                    "id": "source",
                    "identifier": [{"system": f"urn:oid:{INS}", "value": _nir(patient.pid)}],
                },
            ],
            "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{root}.{n}.{k + 1}"},
            "status": "current",
            "type": _coding(LOINC, type_code, type_display),
            "category": [_coding(LOINC, cls[0], cls[1])],
            "subject": subject,
            "author": [{"reference": "#author"}],
            "authenticator": {"reference": "#author"},
            "securityLabel": [_coding("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N")],
            "content": [
                {
                    "attachment": {
                        "contentType": "application/pdf",
                        "language": "fr-FR",
                        "url": bin_url,
                        "size": len(data),
                        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode(),
                        "title": cls[1],
                        "creation": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    },
                    "format": {
                        "system": "urn:oid:1.3.6.1.4.1.19376.1.2.3",
                        "code": "urn:ihe:iti:xds-sd:pdf:2008",
                    },
                }
            ],
            "context": {
                "period": {"start": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
                "facilityType": _coding(f"urn:oid:{xds.HCFT_SCHEME}", hcft[0], hcft[1]),
                "practiceSetting": _coding(f"urn:oid:{xds.PRACTICE_SCHEME}", xds.PRACTICE[0][0]),
                "sourcePatientInfo": {"reference": "#source"},
            },
        }
        entries.append(
            {"fullUrl": dr_url, "resource": dr, "request": {"method": "POST", "url": "DocumentReference"}}
        )
        binaries.append(
            {
                "fullUrl": bin_url,
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/pdf",
                    "data": base64.b64encode(data).decode(),
                },
                "request": {"method": "POST", "url": "Binary"},
            }
        )
        items.append({"item": {"reference": dr_url}})
    mhd = "https://profiles.ihe.net/ITI/MHD/StructureDefinition"
    ss = {
        "resourceType": "List",
        "contained": author,
        "extension": [
            {
                "url": f"{mhd}/ihe-designationType",
                "valueCodeableConcept": _coding(f"urn:oid:{xds.CONTENT_TYPE_SCHEME}", "04"),
            },
            {"url": f"{mhd}/ihe-sourceId", "valueIdentifier": {"value": "urn:oid:1.2.250.1.999.77.100"}},
        ],
        "identifier": [{"use": "usual", "system": "urn:ietf:rfc:3986", "value": f"urn:oid:{root}.{n}"}],
        "status": "current",
        "mode": "working",
        "code": _coding("https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "submissionset"),
        "subject": subject,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": {"reference": "#author"},
        "entry": items,
    }
    bundle = {
        "resourceType": "Bundle",
        "meta": {"profile": [f"{mhd}/IHE.MHD.Comprehensive.ProvideBundle"]},
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": ss,
                "request": {"method": "POST", "url": "List"},
            }
        ]
        + entries
        + binaries,
    }
    # Through the R4B models, as any conformant client would produce it.
    return Bundle.model_validate(bundle).model_dump_json(exclude_none=True).encode()


def iti65(bench: xds.Bench, s: Settings) -> dict[str, Any]:
    rng = random.Random(bench.cfg.seed + 65)
    root = f"1.2.250.1.999.65.{int(time.time())}"
    xds.log(
        f"ITI-65: building {s.bundles} bundles (2 DocumentReferences + 2 Binaries of {s.doc_bytes} bytes)"
    )
    bodies = [
        provide_bundle(rng, bench.patients[rng.randrange(len(bench.patients))], s.doc_bytes, root, n + 1)
        for n in range(s.bundles)
    ]
    lock = threading.Lock()
    latencies: list[float] = []

    def provide(client: Http, i: int) -> None:
        t0 = time.perf_counter()
        status, body = client.request("POST", "/fhir", bodies[i], "application/fhir+json")
        elapsed = time.perf_counter() - t0
        if status != 200 or json.loads(body).get("type") != "transaction-response":
            raise xds.BenchFailure("ITI-65", f"bundle {i}: HTTP {status}", bodies[i][:4000], body)
        with lock:
            latencies.append(elapsed)

    xds.log(f"ITI-65: {s.bundles} bundles from {s.clients} clients")
    account = xds.CpuAccount(bench.server)
    wall = xds.run_clients(s.clients, range(len(bodies)), lambda: Http(bench.server.port), provide, "ITI-65")
    res: dict[str, Any] = dict(xds.latency_summary(latencies))
    res.update(
        {
            "bundles": len(latencies),
            "clients": s.clients,
            "bundles_per_s": round(len(latencies) / wall, 1),
            "document_references_per_s": round(2 * len(latencies) / wall, 1),
            "avg_bundle_kb": round(sum(map(len, bodies)) / len(bodies) / 1000, 1),
            "cpu": account.finish(),
        }
    )
    xds.log(f"  {res['bundles_per_s']} bundles/s ({res['document_references_per_s']} DocumentReferences/s), "
            f"p50 {res['p50_ms']:.0f} ms, p95 {res['p95_ms']:.0f} ms")  # fmt: skip
    return res


def summary(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [
        f"Carnet FHIR bench, {cfg['backend']}: {cfg['entries']} DocumentEntries, {cfg['patients']} patients",
        "",
        "| ITI-67 search | p50 ms | p95 ms | p99 ms | avg results | searches/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results["iti67"].items():
        if name == "cpu":
            continue
        lines.append(f"| {name} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['avg_results']} | {r['searches_per_s']} |")  # fmt: skip
    r = results["iti65"]
    lines += [
        "",
        f"ITI-65: {r['bundles_per_s']} bundles/s ({r['document_references_per_s']} DocumentReferences/s) "
        f"from {r['clients']} clients, latency p50 {r['p50_ms']:.0f} ms / p95 {r['p95_ms']:.0f} ms, "
        f"{r['avg_bundle_kb']} kB per bundle; machine busy {r['cpu']['machine_busy_pct']} %",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], required=True)
    ap.add_argument(
        "--entries", type=int, help="DocumentEntries loaded by ITI-41 (default 100000; quick 2000)"
    )
    ap.add_argument("--patients", type=int, help="patients (default 5000; quick 100)")
    ap.add_argument(
        "--clients", type=int, default=4, help="concurrent ITI-41 load and ITI-65 clients (default 4)"
    )
    ap.add_argument("--queries", type=int, help="ITI-67 searches per series (default 2000; quick 100)")
    ap.add_argument("--bundles", type=int, help="ITI-65 bundles (default 2000; quick 100)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--pg-url", default=xds.DEFAULT_PG_URL.replace("carnet_bench", "carnet_bench_fhir"))
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    cfg = xds.Config(
        backend=a.backend,
        entries=a.entries or (2000 if a.quick else 100_000),
        patients=a.patients or (100 if a.quick else 5000),
        clients=a.clients,
        docs_per_submission=2,
        doc_bytes=10 * 1024,
        queries=0,
        warmup=0,
        retrieve_mb=0,
        batch=10,
        big_mb=0,
        sample_every=1_000_000,
        seed=a.seed,
        server_threads=8,
        pg_url=a.pg_url,
        quick=a.quick,
    )
    s = Settings(
        queries=a.queries or (100 if a.quick else 2000),
        warmup=20 if a.quick else 200,
        bundles=a.bundles or (100 if a.quick else 2000),
        clients=a.clients,
        doc_bytes=10 * 1024,
    )
    workdir = Path(tempfile.mkdtemp(prefix=f"carnet-bench-fhir-{cfg.backend}-"))
    server = xds.Server(cfg.backend, workdir, cfg.pg_url, cfg.server_threads)
    results: dict[str, Any] = {
        "config": {**cfg.__dict__, **s.__dict__},
        "machine": {"cpus": os.cpu_count(), "git": xds.git_describe()},
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    failed = False
    try:
        server.start()
        xds.log(f"server up on port {server.port} ({cfg.backend}), loading by ITI-41 (bench_xds loader)")
        bench = xds.Bench(cfg, server)
        bench.results = results
        bench.load()
        results["iti67"] = iti67(bench, s)
        results["iti65"] = iti65(bench, s)
        print(summary(results))
    except xds.BenchFailure as f:
        failed = True
        results["failure"] = {"phase": f.phase, "message": f.message}
        xds.report_failure(f, server, workdir)
    finally:
        server.stop()
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=2))
        if not failed and not a.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
