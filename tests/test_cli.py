"""The pinned command line: `carnet serve --host H --port P --data-dir DIR`, `carnet patient add`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import hl7.client
import requests
from lxml import etree

from carnet.xds import vocabulary as v
from tests.builders import Doc, patient, provide_and_register
from tests.xds import envelope, response_status

ROOT = Path(__file__).resolve().parents[1]


def carnet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carnet.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_patient_add_rejects_malformed_ids(tmp_path: Path) -> None:
    res = carnet("patient", "add", "not-a-cx", "--data-dir", str(tmp_path))
    assert res.returncode == 2 and "ID^^^&OID&ISO" in res.stderr


def test_serve_end_to_end(tmp_path: Path) -> None:
    env = {k: val for k, val in os.environ.items() if not k.startswith("CARNET_")}
    env["CARNET_ALLOW_ANONYMOUS"] = "1"
    pid = patient(77)
    assert (
        carnet("patient", "add", pid, "--family", "TEST", "--data-dir", str(tmp_path), env=env).returncode
        == 0
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carnet.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--mllp-port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"http://127\.0\.0\.1:(\d+).*MLLP port (\d+)", line)
        assert match, line
        base, mllp_port = f"http://127.0.0.1:{match.group(1)}", int(match.group(2))
        health = requests.get(base + "/health", timeout=10).json()
        assert health["status"] == "ok" and health["database"] == "sqlite"
        # The patient added by the CLI is known; one fed by ITI-8 becomes known too.
        fed = patient(78)
        adt = (
            f"MSH|^~\\&|HIS|HOSP|CARNET|DMP|20240101120000||ADT^A01^ADT_A01|MSG1|P|2.5\r"
            f"EVN|A01|20240101120000\rPID|||{fed}||TEST^Second\r"
        )
        with hl7.client.MLLPClient("127.0.0.1", mllp_port) as mllp:
            ack = mllp.send_message(adt)
        assert b"MSA|AA|MSG1" in ack
        for pid_ in (pid, fed):
            body = envelope(v.ACTION_ITI41, provide_and_register(pid_, [Doc("D", b"hello")]))
            resp = requests.post(
                base + "/xds/repository",
                data=body,
                timeout=30,
                headers={"Content-Type": "application/soap+xml"},
            )
            assert response_status(etree.fromstring(resp.content).find(f"{{{v.SOAP12}}}Body")[0]) == (
                "Success",
                [],
            )
        assert (tmp_path / "carnet.sqlite3").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
