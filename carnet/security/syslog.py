"""Shipping audit records to an audit record repository by syslog (ATNA ITI-20).

RFC 5424 messages (``<85>1 TIMESTAMP HOST carnet PROCID IHE+RFC-3881 - <AuditMessage/>``, no BOM
as ITI CP-477 asks), sent over UDP (RFC 5426, one datagram per message) or TLS (RFC 5425,
octet-counting framing), the TLS peer verified against CARNET_SYSLOG_CA only, with an optional
client certificate for mutual authentication. The database is the audit record of authority; this
is its real-time copy. Records are queued after their transaction commits and sent by one
background thread, so a slow or absent repository never slows a request; a record that cannot be
sent after retries is logged, and stays in the database.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import ssl
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from carnet.security.atna import audit_message

if TYPE_CHECKING:
    from carnet.config import Settings

log = logging.getLogger(__name__)

PRI = 85  # facility 10 (security/authorization), severity 5 (notice): DICOM PS3.15 A.7
APP_NAME = "carnet"
MSGID = "IHE+RFC-3881"
MAX_UDP = 65_000


def rfc5424(message: bytes, hostname: str, procid: str, now: datetime | None = None) -> bytes:
    stamp = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    header = f"<{PRI}>1 {stamp} {hostname or '-'} {APP_NAME} {procid or '-'} {MSGID} - "
    return header.encode("ascii", "replace") + message


class SyslogShipper:
    """A background sender: ``ship`` queues, the thread formats and sends."""

    def __init__(
        self,
        url: str,
        audit_source_id: str,
        tls_context: ssl.SSLContext | None = None,
        retries: int = 3,
        max_queue: int = 10_000,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("udp", "tls") or not parts.hostname or not parts.port:
            raise ValueError(f"syslog URL '{url}' must be udp://host:port or tls://host:port")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.audit_source_id = audit_source_id
        self.tls_context = tls_context
        self.retries = retries
        self.hostname = socket.gethostname()
        self.procid = str(os.getpid())
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(max_queue)
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="carnet-syslog", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings) -> SyslogShipper:
        assert settings.syslog_url
        context = None
        if settings.syslog_url.startswith("tls://"):
            # Trust only the configured CA: create_default_context loads no system CA when given one.
            context = ssl.create_default_context(cafile=str(settings.syslog_ca))
            if settings.syslog_client_cert:
                context.load_cert_chain(
                    str(settings.syslog_client_cert), str(settings.syslog_client_key or "") or None
                )
        return cls(settings.syslog_url, settings.repository_unique_id, context)

    def ship(self, rows: list[dict[str, object]]) -> None:
        for row in rows:
            try:
                self._queue.put_nowait(dict(row))
            except queue.Full:
                log.error(
                    "syslog queue full: audit record of %s not shipped (it is in the database)",
                    row.get("transaction"),
                )

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()

    def _run(self) -> None:
        while True:
            row = self._queue.get()
            if row is None:
                return
            try:
                frame = rfc5424(audit_message(row, self.audit_source_id), self.hostname, self.procid)
            except Exception:
                log.exception("could not format the audit record of %s for syslog", row.get("transaction"))
                continue
            for attempt in range(self.retries):
                try:
                    self._send(frame)
                    break
                except OSError as exc:
                    self._drop_connection()
                    if attempt == self.retries - 1:
                        log.error(
                            "syslog %s://%s:%s unreachable, record of %s not shipped: %s",
                            self.scheme,
                            self.host,
                            self.port,
                            row.get("transaction"),
                            exc,
                        )
                    else:
                        time.sleep(0.2 * 2**attempt)

    def _send(self, frame: bytes) -> None:
        if self.scheme == "udp":
            if self._sock is None:
                self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.sendto(frame[:MAX_UDP], (self.host, self.port))
            return
        if self._sock is None:
            assert self.tls_context is not None
            raw = socket.create_connection((self.host, self.port), timeout=10)
            self._sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)
        # RFC 5425 octet counting: MSG-LEN SP SYSLOG-MSG.
        self._sock.sendall(str(len(frame)).encode() + b" " + frame)

    def _drop_connection(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
