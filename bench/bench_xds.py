#!/usr/bin/env python3
"""End-to-end XDS.b benchmark of a real Carnet server: ITI-41 load, ITI-18 latency, ITI-43 throughput,
and the server's peak memory while it receives a 50 MB document.

Usage:
    python bench/bench_xds.py --backend sqlite|postgresql [--entries 100000] [--patients 5000]
                              [--clients 4] [--quick] [--json out.json]

The script starts ``python -m carnet.cli serve`` as a subprocess on a free port with a fresh data
directory (and, for PostgreSQL, a freshly recreated database, ``carnet_bench`` by default), waits for
``GET /health``, then runs four phases over HTTP, as any XDS actor would:

1. load: ITI-41 Provide and Register submissions, each one SubmissionSet + 2 DocumentEntries + 2
   random documents sent as MTOM/XOP, from ``--clients`` threads with one keep-alive connection each;
2. ITI-18 FindDocuments (patient + Approved; and + classCode + creationTime range), LeafClass and
   ObjectRef, sequential, one client; every answer's size is checked against what was loaded;
3. ITI-43 Retrieve Document Set, batches of 10 documents (MTOM answers), one client then
   ``--clients``; every document's SHA-1 is checked, a sample byte for byte;
4. one ITI-41 carrying a single 50 MB document, streamed from disk, while the server's RSS is sampled
   every 10 ms (and its VmHWM reset just before); then the document is retrieved and its SHA-1 checked.

Any HTTP error, SOAP Fault, non-Success status or wrong answer stops the run: the failing request
and response are saved next to the server log and printed, and the exit status is 1.
See bench/README.md for what each number means and the latest results.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from carnet.soap.mtom import Part, cid_url, read_multipart, resolve_xop, write_multipart  # noqa: E402
from carnet.xds import vocabulary as v  # noqa: E402

MB = 1_000_000
AUTOVACUUM_NAPTIME_S = 60  # PostgreSQL's default autovacuum_naptime
MIB = 1 << 20
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/carnet_bench"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
INS_OID = "1.2.250.1.213.1.4.10"  # INS-NIR test identifiers
OT_CLASSIFICATION = v.OBJECT_TYPE_CLASSIFICATION
OT_EXTERNAL_ID = v.OBJECT_TYPE_EXTERNAL_ID
SOAP_CT = "application/soap+xml; charset=UTF-8"


# ------------------------------------------------------------------------------------------------
# Failures
# ------------------------------------------------------------------------------------------------


class BenchFailure(Exception):
    """A phase failed: the request and response are kept for the report."""

    def __init__(self, phase: str, message: str, request: bytes | None = None, response: bytes | None = None):
        super().__init__(f"{phase}: {message}")
        self.phase = phase
        self.message = message
        self.request = request
        self.response = response


# ------------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------------


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    s = sorted(x * 1000 for x in seconds)
    return {
        "n": len(s),
        "mean_ms": sum(s) / len(s) if s else float("nan"),
        "p50_ms": pct(s, 50),
        "p95_ms": pct(s, 95),
        "p99_ms": pct(s, 99),
        "max_ms": s[-1] if s else float("nan"),
    }


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# The server under test
# ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reset_postgres(url: str) -> None:
    """Drop and recreate the benchmark database (never one of the shared ones)."""
    import psycopg

    parsed = urllib.parse.urlsplit(url)
    name = parsed.path.lstrip("/")
    if not name or name in ("postgres", "test", "template0", "template1"):
        raise SystemExit(f"refusing to drop database {name!r}: pass --pg-url with a database of your own")
    admin = urllib.parse.urlunsplit(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class Server:
    def __init__(self, backend: str, workdir: Path, pg_url: str, threads: int, workers: int = 1):
        self.backend = backend
        self.workers = workers
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.pg_url = pg_url
        self.threads = threads
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.health: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        if self.backend == "postgresql":
            reset_postgres(self.pg_url)
        self.port = free_port()
        env = {k: val for k, val in os.environ.items() if not k.startswith("CARNET_")}
        env.update(CARNET_ALLOW_ANONYMOUS="1", CARNET_ACCEPT_ANY_PATIENT="1")
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        if self.backend == "postgresql":
            env["CARNET_DATABASE_URL"] = self.pg_url
        cmd = [
            sys.executable, "-m", "carnet.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data_dir), "--threads", str(self.threads), "--workers", str(self.workers),
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchFailure("start", f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/health")
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                if resp.status == 200:
                    self.health = json.loads(body)
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchFailure("start", f"no answer on /health after 90 s:\n{self.log_tail()}")

    def check_alive(self, phase: str) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchFailure(phase, f"the server process died:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def processes(self) -> list[int]:
        """The server process and, with --server-workers, its worker processes."""
        pids = [self.pid]
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == self.pid:
                            pids.append(int(entry.name))
                except (OSError, ValueError, IndexError):
                    pass
        return pids

    def _status_kib(self, key: str, pid: int | None = None) -> int:
        try:
            with open(f"/proc/{pid or self.pid}/status") as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def rss(self) -> int:
        return sum(self._status_kib("VmRSS:", p) for p in self.processes()) * 1024

    def hwm(self) -> int:
        # With workers, the peak of the one that took the big document is what matters: the largest.
        return max(self._status_kib("VmHWM:", p) for p in self.processes()) * 1024

    def reset_hwm(self) -> bool:
        """Reset the kernel's peak-RSS mark (VmHWM) of the server processes (Linux >= 4.0)."""
        try:
            for pid in self.processes():
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            return True
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.processes():
            with contextlib.suppress(OSError):  # a worker that just exited
                total += proc_cpu(pid)
        return total

    def pg_setting(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.pg_url) as conn:
            row = conn.execute(f"SHOW {name}").fetchone()
        return str(row[0]) if row else ""

    def pg_analyze(self) -> float:
        """ANALYZE the benchmark database (what autovacuum's autoanalyze would do); returns seconds."""
        import psycopg

        t0 = time.perf_counter()
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        return time.perf_counter() - t0

    def pg_scans(self) -> dict[str, dict[str, int]]:
        """Sequential vs index scans per table since the database was created."""
        import psycopg

        with psycopg.connect(self.pg_url) as conn:
            rows = conn.execute(
                "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                "WHERE seq_scan > 2 OR idx_scan > 0 ORDER BY relname"
            ).fetchall()
        return {r[0]: {"seq_scan": r[1], "seq_tup_read": r[2], "idx_scan": r[3]} for r in rows}

    def db_stats(self) -> dict[str, Any]:
        """Row counts and size of the database, read directly (not through the server)."""
        tables = ["document_entry", "submission_set", "association", "object_code", "audit_event"]
        out: dict[str, Any] = {}
        if self.backend == "sqlite":
            path = self.data_dir / "carnet.sqlite3"
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                for t in tables:
                    out[f"rows_{t}"] = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            finally:
                conn.close()
            out["db_bytes"] = sum(
                p.stat().st_size for p in self.data_dir.glob("carnet.sqlite3*") if p.is_file()
            )
        else:
            import psycopg

            with psycopg.connect(self.pg_url) as pconn:
                for t in tables:
                    out[f"rows_{t}"] = pconn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                size = pconn.execute("SELECT pg_database_size(current_database())").fetchone()
                out["db_bytes"] = size[0] if size else 0
        blob_bytes = blob_files = 0
        for dirpath, _dirs, files in os.walk(self.data_dir / "blobs"):
            if os.path.basename(dirpath) == "tmp":
                continue
            for name in files:
                blob_files += 1
                blob_bytes += os.stat(os.path.join(dirpath, name)).st_size
        out["blob_files"] = blob_files
        out["blob_bytes"] = blob_bytes
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()


class RssSampler:
    """Samples the server's VmRSS every ``interval`` seconds in a thread; keeps the maximum."""

    def __init__(self, server: Server, interval: float = 0.01):
        self.server = server
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.server.rss())
                self.samples += 1
            except (OSError, ValueError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pg_backends(dbname: str) -> dict[int, float]:
    """CPU seconds of the PostgreSQL backends serving ``dbname`` (by their process title)."""
    out: dict[int, float] = {}
    marker = f" {dbname} ".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmd = f.read()
            if cmd.startswith(b"postgres: ") and marker in cmd:
                out[int(entry.name)] = proc_cpu(int(entry.name))
        except OSError:
            continue
    return out


T = TypeVar("T")
C = TypeVar("C")


def run_clients(
    clients: int,
    items: Iterable[T],
    new_client: Callable[[], C],
    handle: Callable[[C, T], None],
    phase: str,
) -> float:
    """Hand ``items`` out to ``clients`` threads, each with its own connection (``new_client()``,
    closed at the end); ``handle(client, item)`` makes one request and raises BenchFailure on a
    wrong answer, which stops every thread. Returns the wall time; raises the first failure."""
    lock = threading.Lock()
    it = iter(items)
    failures: list[BenchFailure] = []
    done = object()

    def worker() -> None:
        client = new_client()
        try:
            while not failures:
                with lock:
                    item = next(it, done)
                if item is done:
                    return
                handle(client, item)  # type: ignore[arg-type]
        except BenchFailure as f:
            failures.append(f)
        except Exception as exc:  # noqa: BLE001 - any crash of a client is a failed run
            failures.append(BenchFailure(phase, f"client crashed: {exc!r}"))
        finally:
            client.close()  # type: ignore[attr-defined]

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise failures[0]
    return wall


class CpuAccount:
    """Where the CPU went during a phase: server, its PostgreSQL backends, this client, the rest.

    The machine is shared: "other" is everything else that ran meanwhile (other users' test runs,
    PostgreSQL work for other databases, the kernel), so a large "other" means noisy numbers.
    """

    def __init__(self, server: Server):
        self.server = server
        self.db = (
            urllib.parse.urlsplit(server.pg_url).path.lstrip("/") if server.backend == "postgresql" else None
        )
        self.t0 = time.perf_counter()
        self.m0 = machine_cpu()
        self.s0 = server.cpu_seconds()
        self.c0 = os.times()
        self.p0 = pg_backends(self.db) if self.db else {}

    def finish(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        m1, s1, c1 = machine_cpu(), self.server.cpu_seconds(), os.times()
        pg = 0.0
        if self.db:
            pg = sum(cpu - self.p0.get(pid, 0.0) for pid, cpu in pg_backends(self.db).items())
        busy = m1[0] - self.m0[0]
        server = s1 - self.s0
        client = (c1.user - self.c0.user) + (c1.system - self.c0.system)
        return {
            "wall_s": round(wall, 2),
            "machine_busy_s": round(busy, 2),
            "machine_busy_pct": round(100 * busy / max(1e-9, m1[1] - self.m0[1]), 1),
            "server_s": round(server, 2),
            "postgres_s": round(pg, 2),
            "client_s": round(client, 2),
            "other_s": round(max(0.0, busy - server - pg - client), 2),
        }


# ------------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection (http.client), as one XDS actor would hold."""

    def __init__(self, port: int, timeout: float = 600):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def post(self, path: str, content_type: str, body: bytes) -> tuple[int, str, bytes]:
        self.conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, resp.getheader("Content-Type") or "", data

    def post_stream(self, path: str, content_type: str, length: int, chunks: Iterator[bytes]) -> None:
        self.conn.putrequest("POST", path)
        self.conn.putheader("Content-Type", content_type)
        self.conn.putheader("Content-Length", str(length))
        self.conn.endheaders()
        for chunk in chunks:
            self.conn.send(chunk)

    def response(self) -> http.client.HTTPResponse:
        return self.conn.getresponse()

    def close(self) -> None:
        self.conn.close()


def soap_envelope(action: str, body: str, to: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{v.SOAP12}" xmlns:wsa="{v.WSA}">'
        f'<soap:Header><wsa:Action soap:mustUnderstand="1">{action}</wsa:Action>'
        f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>"
        "<wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>"
        f'<wsa:To soap:mustUnderstand="1">{escape(to)}</wsa:To></soap:Header>'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def soap_body(data: bytes) -> etree._Element:
    root = etree.fromstring(data)
    body = root.find(f"{{{v.SOAP12}}}Body")
    if body is None or len(body) == 0:
        raise ValueError("no SOAP Body")
    return body[0]


def registry_status(el: etree._Element) -> tuple[str, list[str]]:
    """(short status, error descriptions) of a RegistryResponse, or of the one inside ``el``."""
    if el.tag == f"{{{v.SOAP12}}}Fault":
        reason = "".join(el.itertext()).strip()
        return "SOAPFault", [reason]
    rr = el if el.tag == f"{{{v.RS}}}RegistryResponse" else el.find(f".//{{{v.RS}}}RegistryResponse")
    if rr is None:
        rr = el
    errors = [
        f"{e.get('errorCode')} ({e.get('severity', '').rsplit(':', 1)[-1]}): {e.get('codeContext')}"
        for e in rr.iter(f"{{{v.RS}}}RegistryError")
    ]
    return (rr.get("status") or "").rsplit(":", 1)[-1], errors


# ------------------------------------------------------------------------------------------------
# Realistic metadata (French-like codes; all values synthetic)
# ------------------------------------------------------------------------------------------------

LOINC = "2.16.840.1.113883.6.1"
# classCode (weight), the typeCodes that go with it, and the formats such documents come in.
CLASSES = [
    ("11488-4", "Compte rendu de consultation", 40,
     [("11488-4", "Compte rendu de consultation"), ("34133-9", "Synthèse d'épisode de soins")],
     ["cisis", "pdf"]),
    ("11502-2", "Compte rendu d'examens biologiques", 25,
     [("11502-2", "CR d'examens biologiques")], ["xdlab"]),
    ("18842-5", "Lettre de liaison à la sortie", 20,
     [("18842-5", "Lettre de liaison à la sortie d'un établissement de soins")], ["cisis", "pdf"]),
    ("18748-4", "Compte rendu d'imagerie médicale", 10,
     [("18748-4", "CR d'imagerie médicale"), ("18782-3", "Observation d'imagerie")], ["pdf"]),
    ("11506-3", "Note d'évolution", 5, [("11506-3", "Note d'évolution")], ["cisis"]),
]  # fmt: skip
CLASS_WEIGHTS = [c[2] for c in CLASSES]
FORMATS = {
    "pdf": ("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3", "Document à corps non structuré en PDF",
            "application/pdf"),
    "cisis": ("urn:asip:ci-sis:2010", "1.2.250.1.213.1.1.4.2.282", "Document à corps structuré CI-SIS",
              "text/xml"),
    "xdlab": ("urn:ihe:lab:xd-lab:2008", "1.3.6.1.4.1.19376.1.2.3", "CR d'examens biologiques XD-LAB",
              "text/xml"),
}  # fmt: skip
HCFT = [
    ("SA01", "Etablissement public de santé"),
    ("SA05", "Centre hospitalier (CH)"),
    ("SA07", "Centre hospitalier universitaire (CHU)"),
    ("SA29", "Centre de santé"),
    ("SA33", "Cabinet libéral"),
]
HCFT_SCHEME = "1.2.250.1.71.4.2.4"
PRACTICE = [("ETABLISSEMENT", "Etablissement de santé"), ("AMBULATOIRE", "Ambulatoire")]
PRACTICE_SCHEME = "1.2.250.1.213.1.1.4.9"
CONF_N = ("N", "Normal", "2.16.840.1.113883.5.25")
CONF_MASQUE = ("MASQUE_PS", "Masqué aux professionnels de santé", "1.2.250.1.213.1.1.4.13")
EVENTS = [
    ("ZBQK002", "Radiographie du thorax"),
    ("DEQP003", "Électrocardiographie sur au moins 12 dérivations"),
    ("YYYY030", "Acte de biologie médicale"),
    ("HFFA011", "Cholécystectomie par laparotomie"),
    ("JVJF004", "Séance d'épuration extrarénale"),
]
EVENT_SCHEME = "1.2.250.1.213.2.5"  # CCAM
CONTENT_TYPES = [("04", "Hospitalisation"), ("08", "Consultation"), ("12", "Biologie")]
CONTENT_TYPE_SCHEME = "1.2.250.1.213.1.1.4.4"
FAMILY = [
    "MARTIN",
    "BERNARD",
    "THOMAS",
    "PETIT",
    "ROBERT",
    "RICHARD",
    "DURAND",
    "DUBOIS",
    "MOREAU",
    "LAURENT",
]
GIVEN_F = ["Camille", "Léa", "Manon", "Chloé", "Inès", "Jeanne", "Louise", "Alice"]
GIVEN_M = ["Lucas", "Hugo", "Louis", "Jules", "Arthur", "Gabriel", "Raphaël", "Paul"]
CITIES = [
    ("Paris", "75012"),
    ("Lyon", "69003"),
    ("Marseille", "13005"),
    ("Lille", "59000"),
    ("Rennes", "35000"),
]
AUTHORS = [
    (f"8100{n:08d}^{fam}^{giv}^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS", spec)
    for n, (fam, giv, spec) in enumerate(
        [
            ("LEROY", "Nicolas", ("G15_10/SM26", "Qualifié en médecine générale")),
            ("ROUX", "Claire", ("G15_10/SM04", "Cardiologie et maladies vasculaires")),
            ("FOURNIER", "Marc", ("G15_10/SM44", "Radiodiagnostic et imagerie médicale")),
            ("GIRARD", "Sophie", ("G15_10/SM05", "Biologie médicale")),
            ("BONNET", "Pierre", ("G15_10/SM53", "Chirurgie viscérale et digestive")),
        ],
        1,
    )
]
INSTITUTIONS = [
    f"{name}^^^^^&1.2.250.1.71.4.2.2&ISO^^^^{finess}"
    for name, finess in [
        ("CHU de Test", "1750000001"),
        ("CH Exemple", "1690000002"),
        ("Centre de santé Bench", "1130000003"),
    ]
]
EPOCH_FIRST = int(datetime(2014, 1, 1, tzinfo=UTC).timestamp())
EPOCH_LAST = int(datetime(2025, 12, 31, tzinfo=UTC).timestamp())


def dtm(ts: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(ts))


def nir(i: int, sex: int, yy: int, mm: int) -> str:
    """A synthetic 15-digit NIR (INS) with a valid key: unique per patient index."""
    n13 = f"{sex}{yy:02d}{mm:02d}99{i // 1000:03d}{i % 1000:03d}"
    return f"{n13}{97 - int(n13) % 97:02d}"


@dataclass
class Patient:
    pid: str  # CX
    info: list[str]  # sourcePatientInfo values


def make_patients(n: int, rng: random.Random) -> list[Patient]:
    out = []
    for i in range(n):
        sex = 1 + (i % 2)
        yy, mm, dd = rng.randrange(30, 100), rng.randrange(1, 13), rng.randrange(1, 29)
        pid = f"{nir(i, sex, yy, mm)}^^^&{INS_OID}&ISO"
        family = rng.choice(FAMILY)
        given = rng.choice(GIVEN_M if sex == 1 else GIVEN_F)
        city, zip_code = rng.choice(CITIES)
        out.append(
            Patient(
                pid,
                [
                    f"PID-3|{pid}",
                    f"PID-5|{family}^{given}^^^^^L",
                    f"PID-7|19{yy:02d}{mm:02d}{dd:02d}",
                    f"PID-8|{'M' if sex == 1 else 'F'}",
                    f"PID-11|{rng.randrange(1, 200)} rue de la République^^{city}^^{zip_code}^FRA",
                ],
            )
        )
    return out


def new_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def slot(name: str, *values: str) -> str:
    vals = "".join(f"<rim:Value>{escape(x)}</rim:Value>" for x in values)
    return f'<rim:Slot name="{name}"><rim:ValueList>{vals}</rim:ValueList></rim:Slot>'


def name_el(value: str) -> str:
    return f'<rim:Name><rim:LocalizedString xml:lang="fr-FR" value={quoteattr(value)}/></rim:Name>'


def code_cl(scheme: str, obj: str, code: str, coding_scheme: str, display: str) -> str:
    return (
        f'<rim:Classification classificationScheme="{scheme}" classifiedObject="{obj}" id="{new_id()}" '
        f'nodeRepresentation={quoteattr(code)} objectType="{OT_CLASSIFICATION}">'
        f"{slot('codingScheme', coding_scheme)}{name_el(display)}</rim:Classification>"
    )


def author_cl(scheme: str, obj: str, person: str, institution: str, specialty: tuple[str, str]) -> str:
    return (
        f'<rim:Classification classificationScheme="{scheme}" classifiedObject="{obj}" id="{new_id()}" '
        f'nodeRepresentation="" objectType="{OT_CLASSIFICATION}">'
        f"{slot('authorPerson', person)}{slot('authorInstitution', institution)}"
        f"{slot('authorRole', '10^Médecin^1.2.250.1.71.1.2.7')}"
        f"{slot('authorSpecialty', f'{specialty[0]}^{specialty[1]}^1.2.250.1.71.4.2.5')}"
        "</rim:Classification>"
    )


def ext_id(scheme: str, obj: str, value: str, label: str) -> str:
    return (
        f'<rim:ExternalIdentifier id="{new_id()}" identificationScheme="{scheme}" '
        f'objectType="{OT_EXTERNAL_ID}" '
        f'registryObject="{obj}" value={quoteattr(value)}>{name_el(label)}</rim:ExternalIdentifier>'
    )


@dataclass
class DocSpec:
    """One DocumentEntry + Document of a submission, and what the bench remembers about it."""

    entry_uuid: str
    unique_id: str
    patient: int
    class_code: str
    creation: str  # 14-digit DTM
    sha1: str
    size: int
    mime: str
    payload: bytes | None = None  # in memory (small documents)
    part: Part | None = None  # streamed from disk (the big document)


def document_entry_xml(doc: DocSpec, patient: Patient, rng: random.Random, repository_uid: str) -> str:
    """A complete, valid XDS DocumentEntry (ITI TF-3 4.2.3.2) for ``doc``."""
    cls = next(c for c in CLASSES if c[0] == doc.class_code)
    type_code, type_display = rng.choice(cls[3])
    fmt = FORMATS[rng.choice(cls[4])] if doc.mime != "application/pdf" else FORMATS["pdf"]
    hcft = rng.choice(HCFT)
    practice = PRACTICE[0] if hcft[0] in ("SA01", "SA05", "SA07") else PRACTICE[1]
    person, specialty = rng.choice(AUTHORS)
    created = int(datetime.strptime(doc.creation, "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp())
    start = created - rng.randrange(3600, 10 * 86400)
    stop = start + rng.randrange(0, created - start + 1)
    e = doc.entry_uuid
    parts = [
        f'<rim:ExtrinsicObject id="{e}" mimeType="{doc.mime}" objectType="{v.DE_STABLE}">',
        slot("creationTime", doc.creation),
        slot("hash", doc.sha1),
        slot("languageCode", "fr-FR"),
        slot("legalAuthenticator", person),
        slot("repositoryUniqueId", repository_uid),
        slot("serviceStartTime", dtm(start)),
        slot("serviceStopTime", dtm(stop)),
        slot("size", str(doc.size)),
        slot("sourcePatientId", patient.pid),
        slot("sourcePatientInfo", *patient.info),
        name_el(f"{cls[1]} du {doc.creation[6:8]}/{doc.creation[4:6]}/{doc.creation[:4]}"),
        f'<rim:Description><rim:LocalizedString xml:lang="fr-FR" value={quoteattr(type_display)}/>'
        "</rim:Description>",
        author_cl(v.DE_AUTHOR, e, person, rng.choice(INSTITUTIONS), specialty),
        code_cl(v.DE_CLASS_CODE, e, cls[0], LOINC, cls[1]),
        code_cl(v.DE_CONFIDENTIALITY_CODE, e, CONF_N[0], CONF_N[2], CONF_N[1]),
    ]
    if rng.random() < 0.05:
        parts.append(code_cl(v.DE_CONFIDENTIALITY_CODE, e, CONF_MASQUE[0], CONF_MASQUE[2], CONF_MASQUE[1]))
    for code, display in rng.sample(EVENTS, rng.randrange(0, 3)):
        parts.append(code_cl(v.DE_EVENT_CODE, e, code, EVENT_SCHEME, display))
    parts += [
        code_cl(v.DE_FORMAT_CODE, e, fmt[0], fmt[1], fmt[2]),
        code_cl(v.DE_HCFT_CODE, e, hcft[0], HCFT_SCHEME, hcft[1]),
        code_cl(v.DE_PRACTICE_SETTING_CODE, e, practice[0], PRACTICE_SCHEME, practice[1]),
        code_cl(v.DE_TYPE_CODE, e, type_code, LOINC, type_display),
        ext_id(v.DE_PATIENT_ID, e, patient.pid, "XDSDocumentEntry.patientId"),
        ext_id(v.DE_UNIQUE_ID, e, doc.unique_id, "XDSDocumentEntry.uniqueId"),
        "</rim:ExtrinsicObject>",
    ]
    return "".join(parts)


def provide_and_register(
    docs: list[DocSpec], patient: Patient, ss_unique_id: str, rng: random.Random, repository_uid: str, to: str
) -> tuple[str, bytes | Iterator[bytes], int]:
    """An ITI-41 request as MTOM/XOP: (Content-Type, body, Content-Length)."""
    ss = new_id()
    person, specialty = rng.choice(AUTHORS)
    content_type = rng.choice(CONTENT_TYPES)
    objects = [document_entry_xml(d, patient, rng, repository_uid) for d in docs]
    objects.append(
        f'<rim:RegistryPackage id="{ss}" objectType="{v.OBJECT_TYPE_REGISTRY_PACKAGE}">'
        f"{slot('submissionTime', dtm(int(time.time())))}{name_el('Soumission Carnet bench')}"
        f"{author_cl(v.SS_AUTHOR, ss, person, rng.choice(INSTITUTIONS), specialty)}"
        f"{code_cl(v.SS_CONTENT_TYPE_CODE, ss, content_type[0], CONTENT_TYPE_SCHEME, content_type[1])}"
        f"{ext_id(v.SS_UNIQUE_ID, ss, ss_unique_id, 'XDSSubmissionSet.uniqueId')}"
        f"{ext_id(v.SS_SOURCE_ID, ss, '1.2.250.1.999.77.100', 'XDSSubmissionSet.sourceId')}"
        f"{ext_id(v.SS_PATIENT_ID, ss, patient.pid, 'XDSSubmissionSet.patientId')}"
        "</rim:RegistryPackage>"
        f'<rim:Classification classificationNode="{v.SS_NODE}" classifiedObject="{ss}" id="{new_id()}" '
        f'objectType="{OT_CLASSIFICATION}"/>'
    )
    for d in docs:
        objects.append(
            f'<rim:Association associationType="{v.HAS_MEMBER}" id="{new_id()}" '
            f'objectType="{v.OBJECT_TYPE_ASSOCIATION}" sourceObject="{ss}" targetObject="{d.entry_uuid}">'
            f"{slot('SubmissionSetStatus', 'Original')}</rim:Association>"
        )
    cids = [f"{d.entry_uuid[9:]}@bench.carnet" for d in docs]
    documents = "".join(
        f'<xdsb:Document id="{d.entry_uuid}"><xop:Include href="{cid_url(c)}"/></xdsb:Document>'
        for d, c in zip(docs, cids, strict=True)
    )
    body = (
        f'<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="{v.XDSB}" xmlns:lcm="{v.LCM}" '
        f'xmlns:rim="{v.RIM}" xmlns:xop="{v.XOP}"><lcm:SubmitObjectsRequest><rim:RegistryObjectList>'
        f"{''.join(objects)}</rim:RegistryObjectList></lcm:SubmitObjectsRequest>{documents}"
        "</xdsb:ProvideAndRegisterDocumentSetRequest>"
    )
    env = soap_envelope(v.ACTION_ITI41, body, to)
    attachments: list[tuple[str, str, Part | bytes]] = []
    for d, c in zip(docs, cids, strict=True):
        content = d.part if d.part is not None else d.payload
        assert content is not None
        attachments.append((c, d.mime, content))
    ctype, chunks = write_multipart(env, attachments, action=v.ACTION_ITI41)
    if any(d.part is not None for d in docs):
        return ctype, chunks, chunks.content_length
    data = b"".join(chunks)
    return ctype, data, len(data)


# ------------------------------------------------------------------------------------------------
# The benchmark
# ------------------------------------------------------------------------------------------------


@dataclass
class Config:
    backend: str
    entries: int
    patients: int
    clients: int
    docs_per_submission: int
    doc_bytes: int
    queries: int
    warmup: int
    retrieve_mb: float
    batch: int
    big_mb: float
    sample_every: int
    seed: int
    server_threads: int
    pg_url: str
    quick: bool
    pg_analyze: str = "auto"
    server_workers: int = 1


@dataclass
class Loaded:
    """What the bench knows the registry holds, to check every answer."""

    docs: list[DocSpec] = field(default_factory=list)
    by_patient: dict[int, list[DocSpec]] = field(default_factory=dict)
    sample: dict[str, bytes] = field(default_factory=dict)  # uniqueId -> bytes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, docs: list[DocSpec], keep_bytes: bool) -> None:
        with self.lock:
            for d in docs:
                if keep_bytes and d.payload is not None:
                    self.sample[d.unique_id] = d.payload
                d.payload = None
                self.docs.append(d)
                self.by_patient.setdefault(d.patient, []).append(d)


class Bench:
    def __init__(self, cfg: Config, server: Server):
        self.cfg = cfg
        self.server = server
        self.repository_uid = server.health["repositoryUniqueId"]
        self.repo_url = f"http://127.0.0.1:{server.port}/xds/repository"
        self.registry_url = f"http://127.0.0.1:{server.port}/xds/registry"
        rng = random.Random(cfg.seed)
        self.patients = make_patients(cfg.patients, rng)
        self.run_root = f"1.2.250.1.999.77.{int(time.time())}"
        self.loaded = Loaded()
        self.results: dict[str, Any] = {}
        self.emulate_autoanalyze = False
        if server.backend == "postgresql":
            autovacuum = server.pg_setting("autovacuum")
            self.emulate_autoanalyze = cfg.pg_analyze == "auto" and autovacuum != "on"
            server.health["pg_autovacuum"] = autovacuum
            server.health["bench_emulates_autoanalyze"] = self.emulate_autoanalyze

    # -------------------------------------------------------------------------------- ITI-41 load

    def build_submission(self, i: int) -> tuple[str, bytes, list[DocSpec], int]:
        rng = random.Random(self.cfg.seed * 1_000_003 + i)
        patient = rng.randrange(self.cfg.patients)
        docs = []
        for k in range(self.cfg.docs_per_submission):
            payload = os.urandom(self.cfg.doc_bytes)
            cls = rng.choices(CLASSES, CLASS_WEIGHTS)[0]
            mime = "application/pdf" if "cisis" not in cls[4] and "xdlab" not in cls[4] else "text/xml"
            if cls[4] == ["cisis", "pdf"] and rng.random() < 0.3:
                mime = "application/pdf"
            docs.append(
                DocSpec(
                    entry_uuid=new_id(),
                    unique_id=f"{self.run_root}.2.{i + 1}.{k + 1}",
                    patient=patient,
                    class_code=cls[0],
                    creation=dtm(rng.randrange(EPOCH_FIRST, EPOCH_LAST)),
                    sha1=hashlib.sha1(payload, usedforsecurity=False).hexdigest(),
                    size=len(payload),
                    mime=mime,
                    payload=payload,
                )
            )
        ctype, body, _ = provide_and_register(
            docs,
            self.patients[patient],
            f"{self.run_root}.1.{i + 1}",
            rng,
            self.repository_uid,
            self.repo_url,
        )
        assert isinstance(body, bytes)
        return ctype, body, docs, patient

    def load(self) -> None:
        cfg = self.cfg
        n = cfg.entries // cfg.docs_per_submission
        next_i = iter(range(n))
        take = threading.Lock()
        stop = threading.Event()
        failures: list[BenchFailure] = []
        done_at: list[float] = []  # completion times, appended under `take`
        latencies: list[float] = []
        request_bytes = [0]

        def worker() -> None:
            client = Client(self.server.port)
            try:
                while not stop.is_set():
                    with take:
                        i = next(next_i, None)
                    if i is None:
                        return
                    ctype, body, docs, _ = self.build_submission(i)
                    t0 = time.perf_counter()
                    try:
                        status, rctype, data = client.post("/xds/repository", ctype, body)
                    except (OSError, http.client.HTTPException) as exc:
                        raise BenchFailure(
                            "ITI-41 load", f"submission {i}: HTTP error {exc!r}", body
                        ) from exc
                    t1 = time.perf_counter()
                    try:
                        st, errors = registry_status(soap_body(data))
                    except (etree.XMLSyntaxError, ValueError) as exc:
                        raise BenchFailure(
                            "ITI-41 load",
                            f"submission {i}: HTTP {status}, unreadable answer ({exc})",
                            body,
                            data,
                        ) from exc
                    if status != 200 or st != "Success" or errors:
                        raise BenchFailure(
                            "ITI-41 load",
                            f"submission {i}: HTTP {status}, status {st}, errors {errors}",
                            body,
                            data,
                        )
                    self.loaded.add(docs, keep_bytes=i % cfg.sample_every == 0)
                    with take:
                        done_at.append(t1)
                        latencies.append(t1 - t0)
                        request_bytes[0] += len(body)
            except BenchFailure as f:
                failures.append(f)
                stop.set()
            except Exception as exc:  # noqa: BLE001 - any crash of a client is a failed run
                failures.append(BenchFailure("ITI-41 load", f"client crashed: {exc!r}"))
                stop.set()
            finally:
                client.close()

        log(f"ITI-41 load: {n} submissions x {cfg.docs_per_submission} documents of {cfg.doc_bytes} bytes, "
            f"{cfg.patients} patients, {cfg.clients} clients")  # fmt: skip
        account = CpuAccount(self.server)
        rss0 = self.server.rss()
        t_start = time.perf_counter()
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(cfg.clients)]
        for t in threads:
            t.start()
        step = max(1, n // 20)
        reported = 0
        last_t, last_n = t_start, 0
        analyzes: list[dict[str, float]] = []
        last_check, analyzed_at = t_start, 0
        while any(t.is_alive() for t in threads):
            time.sleep(0.5)
            k = len(done_at)
            if self.emulate_autoanalyze and time.perf_counter() - last_check >= AUTOVACUUM_NAPTIME_S:
                # What autovacuum does with its defaults: every naptime, ANALYZE a table once 10 % of
                # its rows (+50) are new. All tables grow together here, so one ANALYZE covers them.
                last_check = time.perf_counter()
                if k * 5 >= 50 + 0.1 * analyzed_at * 5:
                    took = self.server.pg_analyze()
                    analyzes.append(
                        {"at_s": round(last_check - t_start, 1), "submissions": k, "took_s": took}
                    )
                    log(f"  ANALYZE at {k} submissions ({took:.2f} s), emulating autovacuum")
                    analyzed_at = k
            if k - reported >= step or (k == n and reported < n):
                now = time.perf_counter()
                log(f"  {k}/{n} submissions, {k / (now - t_start):7.1f}/s overall, "
                    f"{(k - last_n) / (now - last_t):7.1f}/s recent, "
                    f"server RSS {self.server.rss() / MIB:.0f} MiB")  # fmt: skip
                reported, last_t, last_n = k, now, k
            if not stop.is_set() and self.server.proc is not None and self.server.proc.poll() is not None:
                failures.append(BenchFailure("ITI-41 load", f"server died:\n{self.server.log_tail()}"))
                stop.set()
        for t in threads:
            t.join()
        if failures:
            raise failures[0]
        t_end = max(done_at)
        cpu = account.finish()
        if self.emulate_autoanalyze and n >= 1.1 * analyzed_at:
            took = self.server.pg_analyze()
            analyzes.append(
                {"at_s": round(time.perf_counter() - t_start, 1), "submissions": n, "took_s": took}
            )
            log(f"  ANALYZE after the load ({took:.2f} s), emulating autovacuum")
        elapsed = t_end - t_start
        done_at.sort()
        deciles = []
        prev_t, prev_k = t_start, 0
        for d in range(1, 11):
            k = max(1, round(n * d / 10))
            tk = done_at[k - 1]
            deciles.append(round((k - prev_k) / (tk - prev_t), 1) if tk > prev_t else None)
            prev_t, prev_k = tk, k
        k90 = round(n * 0.9)
        last10 = (n - k90) / (t_end - done_at[k90 - 1])
        self.results["load"] = {
            "submissions": n,
            "document_entries": n * cfg.docs_per_submission,
            "clients": cfg.clients,
            "elapsed_s": round(elapsed, 2),
            "submissions_per_s": round(n / elapsed, 1),
            "entries_per_s": round(n * cfg.docs_per_submission / elapsed, 1),
            "last10pct_submissions_per_s": round(last10, 1),
            "last10pct_entries_per_s": round(last10 * cfg.docs_per_submission, 1),
            "submissions_per_s_by_decile": deciles,
            "latency": latency_summary(latencies),
            "non_success": 0,
            "request_mb": round(request_bytes[0] / MB, 1),
            "server_cpu_ms_per_submission": round(cpu["server_s"] * 1000 / n, 2),
            "postgres_cpu_ms_per_submission": round(cpu["postgres_s"] * 1000 / n, 2),
            "client_cpu_ms_per_submission": round(cpu["client_s"] * 1000 / n, 2),
            "cpu": cpu,
            "server_rss_before_mib": round(rss0 / MIB, 1),
            "server_rss_after_mib": round(self.server.rss() / MIB, 1),
        }
        stats = self.server.db_stats()
        self.results["load"]["db"] = stats
        if self.server.backend == "postgresql":
            self.results["load"]["pg_analyze"] = analyzes
            self.results["load"]["pg_scans"] = self.server.pg_scans()
        if stats["rows_document_entry"] != n * cfg.docs_per_submission:
            raise BenchFailure(
                "ITI-41 load",
                f"the database holds {stats['rows_document_entry']} DocumentEntries, "
                f"{n * cfg.docs_per_submission} were acknowledged",
            )
        r = self.results["load"]
        log(f"  done: {r['submissions_per_s']} submissions/s ({r['entries_per_s']} entries/s), "
            f"last 10% {r['last10pct_submissions_per_s']}/s")  # fmt: skip

    # -------------------------------------------------------------------------------- ITI-18

    def _find_query(self, rng: random.Random, filtered: bool) -> tuple[int, list[tuple[str, list[str]]], int]:
        """A FindDocuments query on a random loaded patient, and how many entries it must return."""
        patient = rng.choice(self._patient_keys)
        docs = self.loaded.by_patient[patient]
        params = [
            ("$XDSDocumentEntryPatientId", [f"'{self.patients[patient].pid}'"]),
            ("$XDSDocumentEntryStatus", [f"('{v.APPROVED}')"]),
        ]
        if not filtered:
            return patient, params, len(docs)
        cls = rng.choices(CLASSES, CLASS_WEIGHTS)[0][0]
        year = rng.randrange(2014, 2023)
        lo, hi = f"{year}0101", f"{year + 3}0101"
        params += [
            ("$XDSDocumentEntryClassCode", [f"('{cls}^^{LOINC}')"]),
            ("$XDSDocumentEntryCreationTimeFrom", [lo]),
            ("$XDSDocumentEntryCreationTimeTo", [hi]),
        ]
        lo_k, hi_k = lo + "000000", hi + "000000"
        expected = sum(1 for d in docs if d.class_code == cls and lo_k <= d.creation < hi_k)
        return patient, params, expected

    def _query_body(self, params: list[tuple[str, list[str]]], return_type: str) -> bytes:
        slots = "".join(
            f'<rim:Slot name="{name}"><rim:ValueList>'
            + "".join(f"<rim:Value>{escape(x)}</rim:Value>" for x in values)
            + "</rim:ValueList></rim:Slot>"
            for name, values in params
        )
        body = (
            f'<query:AdhocQueryRequest xmlns:query="{v.QUERY}" xmlns:rim="{v.RIM}">'
            f'<query:ResponseOption returnComposedObjects="true" returnType="{return_type}"/>'
            f'<rim:AdhocQuery id="{FIND_DOCUMENTS}">{slots}</rim:AdhocQuery></query:AdhocQueryRequest>'
        )
        return soap_envelope(v.ACTION_ITI18, body, self.registry_url)

    def _run_query(
        self, client: Client, params: list[tuple[str, list[str]]], return_type: str, expected: int
    ) -> tuple[float, int, int]:
        req = self._query_body(params, return_type)
        ctype = f'{SOAP_CT}; action="{v.ACTION_ITI18}"'
        t0 = time.perf_counter()
        try:
            status, _, data = client.post("/xds/registry", ctype, req)
        except (OSError, http.client.HTTPException) as exc:
            raise BenchFailure("ITI-18", f"HTTP error {exc!r}", req) from exc
        elapsed = time.perf_counter() - t0
        try:
            el = soap_body(data)
        except (etree.XMLSyntaxError, ValueError) as exc:
            raise BenchFailure("ITI-18", f"HTTP {status}, unreadable answer ({exc})", req, data) from exc
        st, errors = registry_status(el)
        if status != 200 or st != "Success" or errors:
            raise BenchFailure("ITI-18", f"HTTP {status}, status {st}, errors {errors}", req, data)
        rol = el.find(f"{{{v.RIM}}}RegistryObjectList")
        want = f"{{{v.RIM}}}{'ExtrinsicObject' if return_type == 'LeafClass' else 'ObjectRef'}"
        got = sum(1 for c in (rol if rol is not None else []) if c.tag == want)
        if got != expected or (rol is not None and len(rol) != got):
            raise BenchFailure(
                "ITI-18",
                f"{return_type} answer holds {got} {want.split('}')[1]} "
                f"({len(rol) if rol is not None else 0} "
                f"objects), {expected} DocumentEntries match the query",
                req,
                data,
            )
        return elapsed, got, len(data)

    def queries(self) -> None:
        cfg = self.cfg
        rng = random.Random(cfg.seed + 18)
        client = Client(self.server.port)
        out: dict[str, Any] = {}
        self._patient_keys = sorted(self.loaded.by_patient)
        account = CpuAccount(self.server)
        try:
            log(
                f"ITI-18: {cfg.warmup} warm-up queries, then 4 series of {cfg.queries} (sequential, 1 client)"
            )
            for j in range(cfg.warmup):
                _, params, expected = self._find_query(rng, filtered=j % 2 == 1)
                self._run_query(client, params, "LeafClass" if j % 4 < 2 else "ObjectRef", expected)
            for filtered in (False, True):
                for return_type in ("LeafClass", "ObjectRef"):
                    name = (
                        "FindDocuments(patient, Approved)"
                        if not filtered
                        else "FindDocuments(+classCode, creationTime 3y)"
                    ) + f" {return_type}"
                    lat, counts, sizes = [], [], []
                    t0 = time.perf_counter()
                    for _ in range(cfg.queries):
                        _, params, expected = self._find_query(rng, filtered)
                        e, got, size = self._run_query(client, params, return_type, expected)
                        lat.append(e)
                        counts.append(got)
                        sizes.append(size)
                    wall = time.perf_counter() - t0
                    res = latency_summary(lat)
                    res.update(
                        {
                            "avg_results": round(sum(counts) / len(counts), 2),
                            "max_results": max(counts),
                            "avg_response_kb": round(sum(sizes) / len(sizes) / 1000, 1),
                            "queries_per_s": round(len(lat) / wall, 1),
                        }
                    )
                    out[name] = res
                    log(f"  {name}: p50 {res['p50_ms']:.1f} ms, p95 {res['p95_ms']:.1f} ms, "
                        f"p99 {res['p99_ms']:.1f} ms, avg {res['avg_results']} results")  # fmt: skip
        finally:
            client.close()
        self.results["iti18"] = out
        self.results["iti18_cpu"] = account.finish()

    # -------------------------------------------------------------------------------- ITI-43

    def _retrieve(
        self, client: Client, docs: list[DocSpec], spool: Path, phase: str = "ITI-43"
    ) -> tuple[float, int, list[tuple[DocSpec, Part]]]:
        """One Retrieve Document Set; checks status, ids, SHA-1 (and sample bytes). Returns parts too."""
        reqs = "".join(
            f"<xdsb:DocumentRequest><xdsb:RepositoryUniqueId>{self.repository_uid}</xdsb:RepositoryUniqueId>"
            f"<xdsb:DocumentUniqueId>{d.unique_id}</xdsb:DocumentUniqueId></xdsb:DocumentRequest>"
            for d in docs
        )
        req = soap_envelope(
            v.ACTION_ITI43,
            f'<xdsb:RetrieveDocumentSetRequest xmlns:xdsb="{v.XDSB}">{reqs}'
            "</xdsb:RetrieveDocumentSetRequest>",
            self.repo_url,
        )
        t0 = time.perf_counter()
        try:
            client.conn.request(
                "POST",
                "/xds/repository",
                body=req,
                headers={"Content-Type": f'{SOAP_CT}; action="{v.ACTION_ITI43}"'},
            )
            resp = client.response()
            ctype = resp.getheader("Content-Type") or ""
            if resp.status != 200 or not ctype.lower().startswith("multipart/related"):
                data = resp.read()
                raise BenchFailure(
                    phase, f"HTTP {resp.status}, Content-Type {ctype!r} (expected MTOM)", req, data
                )
            message = read_multipart(resp, ctype, spool_dir=str(spool), memory_threshold=4 * MIB)
            resp.read()  # the epilogue, so the connection can be reused
        except (OSError, http.client.HTTPException) as exc:
            raise BenchFailure(phase, f"HTTP error {exc!r}", req) from exc
        elapsed = time.perf_counter() - t0
        root = message.root.read()
        try:
            envelope = etree.fromstring(root)
            xop = resolve_xop(envelope, message)
            body = envelope.find(f"{{{v.SOAP12}}}Body")
            assert body is not None
            rsp = body[0]
        except Exception as exc:
            message.discard()
            raise BenchFailure(phase, f"unreadable MTOM answer ({exc!r})", req, root) from exc
        st, errors = registry_status(rsp)
        if st != "Success" or errors:
            message.discard()
            raise BenchFailure(phase, f"status {st}, errors {errors}", req, root)
        wanted = {d.unique_id: d for d in docs}
        out: list[tuple[DocSpec, Part]] = []
        for dr in rsp.iter(f"{{{v.XDSB}}}DocumentResponse"):
            uid = dr.findtext(f"{{{v.XDSB}}}DocumentUniqueId")
            doc_el = dr.find(f"{{{v.XDSB}}}Document")
            d = wanted.pop(uid or "", None)
            if d is None or doc_el is None or doc_el not in xop:
                message.discard()
                raise BenchFailure(phase, f"unexpected or incomplete DocumentResponse for {uid}", req, root)
            part = xop[doc_el]
            if part.size != d.size or part.sha1 != d.sha1:
                message.discard()
                raise BenchFailure(
                    phase,
                    f"document {uid}: {part.size} bytes SHA-1 {part.sha1}, "
                    f"sent {d.size} bytes SHA-1 {d.sha1}",
                )
            sample = self.loaded.sample.get(d.unique_id)
            if sample is not None and part.read() != sample:
                message.discard()
                raise BenchFailure(phase, f"document {uid}: bytes differ from those submitted")
            out.append((d, part))
        if wanted:
            message.discard()
            raise BenchFailure(phase, f"documents missing from the answer: {sorted(wanted)[:5]}", req, root)
        return elapsed, sum(p.size for _, p in out), out

    def retrieve(self, spool: Path) -> None:
        cfg = self.cfg
        rng = random.Random(cfg.seed + 43)
        docs = self.loaded.docs
        sample_docs = [d for d in docs if d.unique_id in self.loaded.sample]
        target = int(cfg.retrieve_mb * MB)
        n_batches = -(-target // (cfg.batch * cfg.doc_bytes))
        out: dict[str, Any] = {}
        for clients in sorted({1, cfg.clients}):
            # Every batch holds one document of the in-memory sample (checked byte for byte), the others
            # drawn at random from the whole load (checked by SHA-1 and size).
            batches = []
            for _ in range(n_batches):
                first = rng.choice(sample_docs)
                others = [d for d in rng.sample(docs, cfg.batch) if d is not first][: cfg.batch - 1]
                batches.append([first, *others])
            log(f"ITI-43: {n_batches} requests x {cfg.batch} documents, {clients} client(s)")
            res = self._retrieve_batches(batches, clients, spool)
            out[f"{clients} client{'s' if clients > 1 else ''}"] = res
            log(
                f"  {res['mb_per_s']} MB/s payload, {res['documents_per_s']} documents/s, "
                f"p50 {res['p50_ms']:.1f} ms per request"
            )
        self.results["iti43"] = out

    def _retrieve_batches(self, batches: list[list[DocSpec]], clients: int, spool: Path) -> dict[str, Any]:
        lock = threading.Lock()
        lat: list[float] = []
        total = [0, 0, 0]  # bytes, documents, byte-compared documents

        def retrieve(client: Client, batch: list[DocSpec]) -> None:
            e, nbytes, parts = self._retrieve(client, batch, spool)
            compared = sum(1 for d, _ in parts if d.unique_id in self.loaded.sample)
            with lock:
                lat.append(e)
                total[0] += nbytes
                total[1] += len(parts)
                total[2] += compared

        account = CpuAccount(self.server)
        wall = run_clients(clients, batches, lambda: Client(self.server.port), retrieve, "ITI-43")
        res: dict[str, Any] = dict(latency_summary(lat))
        res.update(
            {
                "requests": len(lat),
                "documents": total[1],
                "payload_mb": round(total[0] / MB, 1),
                "mb_per_s": round(total[0] / MB / wall, 1),
                "documents_per_s": round(total[1] / wall, 1),
                "sha1_checked": total[1],
                "byte_compared": total[2],
                "cpu": account.finish(),
            }
        )
        return res

    # -------------------------------------------------------------------------------- big document

    def big_document(self, spool: Path) -> None:
        cfg = self.cfg
        size = int(cfg.big_mb * MB)
        path = spool / "big-document.bin"
        sha1, sha256 = hashlib.sha1(usedforsecurity=False), hashlib.sha256()
        with open(path, "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(MIB, left))
                sha1.update(chunk)
                sha256.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        part = Part(None, None, {}, size, sha1.hexdigest(), sha256.hexdigest(), path=str(path))
        patient = 0
        doc = DocSpec(
            entry_uuid=new_id(),
            unique_id=f"{self.run_root}.3.1",
            patient=patient,
            class_code="18748-4",
            creation=dtm(int(time.time()) - 3600),
            sha1=part.sha1,
            size=size,
            mime="application/pdf",
            part=part,
        )
        rng = random.Random(cfg.seed + 50)
        ctype, chunks, length = provide_and_register(
            [doc], self.patients[patient], f"{self.run_root}.1.0", rng, self.repository_uid, self.repo_url
        )
        assert not isinstance(chunks, bytes)
        log(f"big document: one ITI-41 with a {size / MB:.0f} MB document ({length} bytes on the wire)")
        time.sleep(1.0)
        reset = self.server.reset_hwm()
        baseline = self.server.rss()
        client = Client(self.server.port)
        try:
            with RssSampler(self.server) as sampler:
                t0 = time.perf_counter()
                try:
                    client.post_stream("/xds/repository", ctype, length, chunks)
                    resp = client.response()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    raise BenchFailure("big document ITI-41", f"HTTP error {exc!r}") from exc
                up = time.perf_counter() - t0
            hwm = self.server.hwm() if reset else 0
            st, errors = registry_status(soap_body(data))
            if resp.status != 200 or st != "Success" or errors:
                raise BenchFailure(
                    "big document ITI-41", f"HTTP {resp.status}, status {st}, errors {errors}", None, data
                )
            peak = max(sampler.peak, hwm)
            limit = size + 50 * MB
            submit = {
                "document_mb": round(size / MB, 1),
                "upload_s": round(up, 2),
                "upload_mb_per_s": round(size / MB / up, 1),
                "rss_samples": sampler.samples,
                "baseline_rss_mib": round(baseline / MIB, 1),
                "peak_rss_mib": round(peak / MIB, 1),
                "peak_sampled_rss_mib": round(sampler.peak / MIB, 1),
                "vmhwm_after_reset_mib": round(hwm / MIB, 1) if reset else None,
                "delta_mib": round((peak - baseline) / MIB, 1),
                "delta_mb": round((peak - baseline) / MB, 1),
                "limit_delta_mb": round(limit / MB, 1),
                "within_limit": (peak - baseline) < limit,
            }
            log(f"  server RSS {submit['baseline_rss_mib']} MiB -> peak {submit['peak_rss_mib']} MiB "
                f"(+{submit['delta_mib']} MiB) while receiving {submit['document_mb']} MB")  # fmt: skip

            time.sleep(0.5)
            self.server.reset_hwm()
            baseline2 = self.server.rss()
            with RssSampler(self.server) as sampler2:
                t0 = time.perf_counter()
                _, _, parts = self._retrieve(client, [doc], spool, phase="big document ITI-43")
                down = time.perf_counter() - t0
            hwm2 = self.server.hwm() if reset else 0
            got = parts[0][1]
            ok = got.sha1 == part.sha1 and got.size == size
            got.discard()
            peak2 = max(sampler2.peak, hwm2)
            retrieve = {
                "download_s": round(down, 2),
                "download_mb_per_s": round(size / MB / down, 1),
                "sha1_ok": ok,
                "baseline_rss_mib": round(baseline2 / MIB, 1),
                "peak_rss_mib": round(peak2 / MIB, 1),
                "delta_mib": round((peak2 - baseline2) / MIB, 1),
            }
            if not ok:
                raise BenchFailure("big document ITI-43", f"retrieved SHA-1 {got.sha1}, sent {part.sha1}")
            log(f"  retrieved in {down:.2f} s, SHA-1 ok, server RSS +{retrieve['delta_mib']} MiB")
        finally:
            client.close()
            path.unlink(missing_ok=True)
        self.results["big_document"] = {"submit": submit, "retrieve": retrieve}


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------


def table(rows: list[tuple[str, str]], title: str) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [title, "-" * len(title)]
    lines += [f"  {k:<{width}}  {val}" for k, val in rows]
    return "\n".join(lines)


def cpu_line(c: dict[str, float]) -> str:
    return (
        f"{c['machine_busy_pct']}% of the machine busy over {c['wall_s']} s; CPU s: server {c['server_s']}, "
        f"postgres {c['postgres_s']}, bench {c['client_s']}, other processes {c['other_s']}"
    )


def summary(res: dict[str, Any]) -> str:
    cfg = res["config"]
    out = [
        f"Carnet XDS.b benchmark - backend {cfg['backend']}, "
        f"{res['load']['document_entries']} DocumentEntries, "
        f"{cfg['patients']} patients, {cfg['clients']} clients, server {cfg['server_threads']} threads"
        f" x {cfg.get('server_workers', 1)} process(es)",
        f"machine: {res['machine']['cpus']} CPUs, load average at start {res['machine']['loadavg_start']}, "
        f"Python {res['machine']['python']}, git {res['machine']['git']}",
        "",
    ]
    ld = res["load"]
    pg_rows: list[tuple[str, str]] = []
    if "pg_scans" in ld:
        health = res["server"]["health"]
        emulated = " (emulating autoanalyze)" if health.get("bench_emulates_autoanalyze") else ""
        scans = ld["pg_scans"].get("registry_object", {"seq_scan": 0, "idx_scan": 0, "seq_tup_read": 0})
        pg_rows = [
            (
                "PostgreSQL autovacuum",
                f"{health.get('pg_autovacuum')}; bench ran ANALYZE {len(ld['pg_analyze'])} times{emulated}",
            ),
            (
                "registry_object scans",
                f"seq {scans['seq_scan']}, index {scans['idx_scan']}, "
                f"{scans['seq_tup_read']} rows read sequentially",
            ),
        ]
    out.append(
        table(
            [
                ("submissions (2 x 10 KiB docs)", f"{ld['submissions']} in {ld['elapsed_s']} s"),
                ("ITI-41 submissions/s",
                 f"{ld['submissions_per_s']}  (last 10%: {ld['last10pct_submissions_per_s']})"),
                ("DocumentEntries/s", f"{ld['entries_per_s']}  (last 10%: {ld['last10pct_entries_per_s']})"),
                ("submissions/s by decile", " ".join(str(x) for x in ld["submissions_per_s_by_decile"])),
                ("latency p50/p95/p99 ms",
                 "{p50_ms:.1f} / {p95_ms:.1f} / {p99_ms:.1f}".format(**ld["latency"])),
                ("non-Success responses", str(ld["non_success"])),
                ("CPU ms/submission", f"server {ld['server_cpu_ms_per_submission']}, postgres "
                                      f"{ld['postgres_cpu_ms_per_submission']}, bench client "
                                      f"{ld['client_cpu_ms_per_submission']}"),
                ("CPU during load", cpu_line(ld["cpu"])),
                *pg_rows,
                ("server RSS before/after",
                 f"{ld['server_rss_before_mib']} / {ld['server_rss_after_mib']} MiB"),
                ("database size", f"{ld['db']['db_bytes'] / MB:.0f} MB; "
                                  f"blobs {ld['db']['blob_bytes'] / MB:.0f} MB "
                                  f"in {ld['db']['blob_files']} files"),
            ],
            "ITI-41 Provide and Register (load)",
        )
    )  # fmt: skip
    out.append("")
    rows = []
    for name, q in res["iti18"].items():
        rows.append(
            (
                name,
                f"p50 {q['p50_ms']:6.1f}  p95 {q['p95_ms']:6.1f}  p99 {q['p99_ms']:6.1f} ms   "
                f"avg {q['avg_results']:5.2f} results ({q['avg_response_kb']} kB), {q['queries_per_s']} q/s",
            )
        )
    rows.append(("CPU during the phase", cpu_line(res["iti18_cpu"])))
    out.append(
        table(rows, f"ITI-18 Registry Stored Query ({cfg['queries']} queries per line, 1 client, over HTTP)")
    )
    out.append("")
    rows = []
    for name, r in res["iti43"].items():
        rows.append(
            (
                name,
                f"{r['mb_per_s']:6.1f} MB/s  {r['documents_per_s']:7.1f} docs/s  "
                f"request p50 {r['p50_ms']:.1f} ms "
                f"p95 {r['p95_ms']:.1f} ms  ({r['payload_mb']} MB, {r['documents']} docs SHA-1 checked, "
                f"{r['byte_compared']} byte-compared)",
            )
        )
        rows.append(("", "CPU " + cpu_line(r["cpu"])))
    out.append(table(rows, f"ITI-43 Retrieve Document Set ({cfg['batch']} documents per request)"))
    out.append("")
    b = res["big_document"]
    s, r = b["submit"], b["retrieve"]
    out.append(
        table(
            [
                ("document", f"{s['document_mb']} MB, MTOM, streamed"),
                ("upload", f"{s['upload_s']} s ({s['upload_mb_per_s']} MB/s)"),
                ("server RSS baseline", f"{s['baseline_rss_mib']} MiB"),
                ("server RSS peak", f"{s['peak_rss_mib']} MiB ({s['rss_samples']} samples at 10 ms + VmHWM)"),
                ("server RSS delta", f"+{s['delta_mib']} MiB  "
                                     f"(limit: document + 50 MB = {s['limit_delta_mb']} MB) "
                                     f"{'OK' if s['within_limit'] else 'OVER'}"),
                ("retrieve", f"{r['download_s']} s ({r['download_mb_per_s']} MB/s), SHA-1 "
                             f"{'ok' if r['sha1_ok'] else 'MISMATCH'}, server RSS +{r['delta_mib']} MiB"),
            ],
            "Big document (one ITI-41 with a single document)",
        )
    )  # fmt: skip
    return "\n".join(out)


def git_describe() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def report_failure(f: BenchFailure, server: Server | None, workdir: Path) -> None:
    print(f"\nFAILED in phase {f.phase}: {f.message}", file=sys.stderr)
    if f.request is not None:
        p = workdir / "failed-request.bin"
        p.write_bytes(f.request)
        print(f"request ({len(f.request)} bytes) saved to {p}", file=sys.stderr)
        print(f.request[:3000].decode("utf-8", "replace"), file=sys.stderr)
    if f.response is not None:
        p = workdir / "failed-response.bin"
        p.write_bytes(f.response)
        print(f"\nresponse ({len(f.response)} bytes) saved to {p}:", file=sys.stderr)
        print(f.response[:6000].decode("utf-8", "replace"), file=sys.stderr)
    if server is not None:
        print(f"\nserver log ({server.log_path}), last lines:\n{server.log_tail()}", file=sys.stderr)


def parse_args(argv: list[str] | None) -> tuple[Config, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], required=True)
    ap.add_argument("--entries", type=int, help="DocumentEntries to load (default 100000; quick 2000)")
    ap.add_argument("--patients", type=int, help="patients (default 5000; quick 100)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent ITI-41 / ITI-43 clients (default 4)")
    ap.add_argument("--quick", action="store_true", help="small smoke run (well under a minute)")
    ap.add_argument("--queries", type=int, help="ITI-18 queries per series (default 2000; quick 50)")
    ap.add_argument("--warmup", type=int, help="ITI-18 warm-up queries (default 200; quick 20)")
    ap.add_argument(
        "--retrieve-mb", type=float, help="ITI-43 payload per client setting, MB (default 105; quick 10)"
    )
    ap.add_argument("--batch", type=int, default=10, help="documents per ITI-43 request (default 10)")
    ap.add_argument("--big-mb", type=float, default=50, help="size of the big document, MB (default 50)")
    ap.add_argument("--doc-kib", type=int, default=10, help="size of each load document, KiB (default 10)")
    ap.add_argument("--sample-every", type=int, help="keep the bytes of every Nth submission (default 50)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--server-threads", type=int, default=8, help="waitress threads (carnet serve --threads)")
    ap.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="server processes (carnet serve --workers; PostgreSQL); CPU and RSS are summed over them",
    )
    ap.add_argument("--pg-url", default=DEFAULT_PG_URL, help="benchmark database; DROPPED and recreated")
    ap.add_argument(
        "--pg-analyze",
        choices=["auto", "off"],
        default="auto",
        help="auto: if the PostgreSQL server runs with autovacuum=off, ANALYZE the bench database as "
        "autovacuum would (every 60 s once 10%% of the rows are new); off: never",
    )
    ap.add_argument("--work-dir", help="where to put the server's data dir (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir (always kept after a failure)")
    ap.add_argument("--json", help="write the results as JSON to this file")
    a = ap.parse_args(argv)
    quick = a.quick
    cfg = Config(
        backend=a.backend,
        entries=a.entries or (2000 if quick else 100_000),
        patients=a.patients or (100 if quick else 5000),
        clients=a.clients,
        docs_per_submission=2,
        doc_bytes=a.doc_kib * 1024,
        queries=a.queries or (50 if quick else 2000),
        warmup=a.warmup if a.warmup is not None else (20 if quick else 200),
        retrieve_mb=a.retrieve_mb or (10 if quick else 105),
        batch=a.batch,
        big_mb=a.big_mb,
        sample_every=a.sample_every or (10 if quick else 50),
        seed=a.seed,
        server_threads=a.server_threads,
        pg_url=a.pg_url,
        quick=quick,
        pg_analyze=a.pg_analyze,
        server_workers=a.server_workers,
    )
    if cfg.entries % cfg.docs_per_submission:
        ap.error("--entries must be even (2 DocumentEntries per submission)")
    return cfg, a


def main(argv: list[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    workdir = Path(args.work_dir or tempfile.mkdtemp(prefix=f"carnet-bench-{cfg.backend}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    spool = workdir / "client-spool"
    spool.mkdir(exist_ok=True)
    server = Server(cfg.backend, workdir, cfg.pg_url, cfg.server_threads, cfg.server_workers)
    results: dict[str, Any] = {
        "config": cfg.__dict__ | {"pg_url": cfg.pg_url if cfg.backend == "postgresql" else None},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "git": git_describe(),
            "loadavg_start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        },
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    failed = False
    t0 = time.perf_counter()
    try:
        log(f"starting carnet serve ({cfg.backend}) in {workdir}")
        server.start()
        log(f"server up on port {server.port}, pid {server.pid}, health {server.health}")
        results["server"] = {"health": server.health, "threads": cfg.server_threads}
        bench = Bench(cfg, server)
        bench.results = results
        bench.load()
        server.check_alive("ITI-41 load")
        bench.queries()
        server.check_alive("ITI-18")
        bench.retrieve(spool)
        server.check_alive("ITI-43")
        bench.big_document(spool)
        server.check_alive("big document")
        results["total_s"] = round(time.perf_counter() - t0, 1)
        print(summary(results))
        print(f"\ntotal bench time {results['total_s']} s")
    except BenchFailure as f:
        failed = True
        results["failure"] = {"phase": f.phase, "message": f.message}
        report_failure(f, server, workdir)
    except KeyboardInterrupt:
        failed = True
        results["failure"] = {"phase": "interrupted", "message": "KeyboardInterrupt"}
    finally:
        server.stop()
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
            log(f"results written to {args.json}")
        if failed or args.keep:
            log(f"data dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
