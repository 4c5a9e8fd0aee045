"""``carnet serve --workers N`` (carnet.prefork): several processes on one port, over PostgreSQL.

Run as a user runs it: the real command in a subprocess, driven over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree

from carnet.xds import vocabulary as v
from tests.builders import Doc, patient, provide_and_register
from tests.xds import envelope, response_status

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("CARNET_TEST_DATABASE_URL")


def _start(tmp_path: Path, *args: str, db_url: str | None = None) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CARNET_ALLOW_ANONYMOUS": "1",
        "CARNET_ACCEPT_ANY_PATIENT": "1",
    }
    env.pop("CARNET_DATABASE_URL", None)
    if db_url:
        env["CARNET_DATABASE_URL"] = db_url
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carnet.cli",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_workers_need_postgresql(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--workers", "2")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "needs PostgreSQL" in out


@pytest.fixture
def workers(tmp_path: Path, engine) -> Iterator[tuple[subprocess.Popen[str], str, list[int]]]:  # type: ignore[no-untyped-def]
    if engine.dialect.name != "postgresql" or not PG_URL:
        pytest.skip("--workers runs on PostgreSQL (CARNET_TEST_DATABASE_URL)")
    proc = _start(tmp_path, "--workers", "2", db_url=PG_URL)
    assert proc.stdout is not None
    listening, pids = proc.stdout.readline(), proc.stdout.readline()
    url = listening.split(" ")[3]
    yield proc, url, [int(p) for p in pids.split(":")[1].split(",")]
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def test_workers_share_the_port_and_are_replaced(workers) -> None:  # type: ignore[no-untyped-def]
    proc, url, pids = workers
    assert len(pids) == 2
    seen = {requests.get(f"{url}/health", timeout=10).json()["pid"] for _ in range(60)}
    assert seen <= set(pids) and seen  # every answer comes from a worker, not from the parent
    body = provide_and_register(patient(77), [Doc("Doc1", b"through a worker")])
    answer = requests.post(
        f"{url}/xds/repository",
        data=envelope(v.ACTION_ITI41, body),
        headers={"Content-Type": "application/soap+xml"},
        timeout=30,
    )
    assert response_status(etree.fromstring(answer.content).find(f"{{{v.SOAP12}}}Body")[0]) == ("Success", [])
    # A worker that dies after its start is replaced; the port keeps answering meanwhile.
    time.sleep(5.5)
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen = {requests.get(f"{url}/health", timeout=10).json()["pid"] for _ in range(20)}
        if seen - set(pids):
            break
        time.sleep(0.2)
    assert seen - set(pids), "no replacement worker answered"
    # SIGTERM stops the parent and every worker.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    for pid in pids[1:]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
