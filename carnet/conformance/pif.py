"""Patient Identity Feed for the test run: ITI-8 ``ADT^A01`` over MLLP, as NIST ``A01Sender``.

A registry under test accepts documents only for patients it was told about. The runner feeds
every patient id it allocates (the PIF tests 15817/15817b/15818, ``CreateNewPatientId``,
``NewPatientId`` and each test's own patient) to ``--target-mllp HOST:PORT`` and requires an
``AA`` acknowledgement. Without a feed address the target must learn the ids some other way
(for Carnet: ``CARNET_ACCEPT_ANY_PATIENT=1`` or ``carnet patient add``); PIF steps are then
reported as not run.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

START, END = b"\x0b", b"\x1c\x0d"
TIMEOUT_S = 30


class FeedError(Exception):
    """The feed could not be delivered or was not accepted (no AA acknowledgement)."""


@dataclass(frozen=True)
class FeedAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> FeedAddress:
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"MLLP address {text!r} is not HOST:PORT")
        return cls(host, int(port))


def a01(patient_id: str, control_id: str | None = None) -> str:
    """An ADT^A01 for ``patient_id`` (CX ``ID^^^&OID&ISO``), CR-separated (ER7)."""
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    control_id = control_id or uuid.uuid4().hex[:20]
    segments = [
        f"MSH|^~\\&|CARNET-CONFORMANCE|CARNET|REGISTRY|SUT|{now}||ADT^A01^ADT_A01|{control_id}|P|2.5",
        f"EVN|A01|{now}",
        f"PID|||{patient_id}||CONFORMANCE^TEST^^^^^L||19700101|U",
        "PV1||O",
    ]
    return "\r".join(segments) + "\r"


def send(address: FeedAddress, patient_id: str) -> str:
    """Send one A01 and return the acknowledgement; raise FeedError unless MSA-1 is AA."""
    message = a01(patient_id)
    try:
        with socket.create_connection((address.host, address.port), timeout=TIMEOUT_S) as sock:
            sock.sendall(START + message.encode("utf-8") + END)
            buf = b""
            while END not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError as exc:
        raise FeedError(f"ITI-8 feed to {address.host}:{address.port} failed: {exc}") from exc
    ack = buf.strip(START + END + b"\r\n").decode("utf-8", errors="replace")
    msa = next((seg for seg in ack.split("\r") if seg.startswith("MSA|")), "")
    code = msa.split("|")[1] if "|" in msa else ""
    if code not in ("AA", "CA"):
        raise FeedError(
            f"ITI-8 feed of {patient_id} was not accepted: {ack.replace(chr(13), ' | ') or 'no ACK'}"
        )
    return ack
