"""MLLP listener for the ITI-8 Patient Identity Feed.

The Minimal Lower Layer Protocol (HL7 v2 Implementation Guide, appendix C; IHE ITI TF-2
appendix C) frames each message as ``<VT> message <FS><CR>`` (``\\x0b ... \\x1c\\x0d``) on a
plain TCP connection. A sender may keep the connection open and send many messages, each
answered, in order, by one framed acknowledgement before the next is read.

Each connection is served by its own daemon thread (a feed blocked on a slow peer must not stop
the others), reading with a buffer that copes with frames split across reads or several frames
in one read. A frame larger than :data:`MAX_MESSAGE_BYTES` closes the connection: no ADT message
comes near that size, and buffering without bound would let one peer exhaust memory. Bytes
between frames (stray line ends, keep-alives) are ignored.

TLS (IHE ATNA secure node) is expected to be terminated in front of this listener.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from typing import Any

from sqlalchemy import Engine

from carnet.config import Settings
from carnet.pix import hl7v2, iti8

__all__ = [
    "END_BLOCK",
    "MAX_MESSAGE_BYTES",
    "START_BLOCK",
    "FrameReader",
    "FrameTooLarge",
    "MLLPServer",
    "MLLPService",
    "frame",
    "serve_mllp",
]

log = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
MAX_MESSAGE_BYTES = 1024 * 1024
# A sender that neither sends nor closes for this long has gone away without saying so.
IDLE_TIMEOUT_SECONDS = 300.0
_RECV_BYTES = 64 * 1024


def frame(payload: bytes) -> bytes:
    """Wrap one message in its MLLP block."""
    return START_BLOCK + payload + END_BLOCK


class FrameTooLarge(Exception):
    """A frame exceeded the size limit; the connection is dropped."""


class FrameReader:
    """Incremental MLLP deframer: feed it what ``recv`` returns, get complete messages back."""

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._in_frame = False
        # How far the current frame was already searched for END_BLOCK, so that a message
        # arriving in many small reads is scanned once, not once per read.
        self._scanned = 0

    @property
    def pending(self) -> bool:
        """True while a frame has started but not ended."""
        return self._in_frame

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        while True:
            if not self._in_frame:
                start = self._buffer.find(START_BLOCK)
                if start < 0:
                    self._buffer.clear()
                    return frames
                del self._buffer[: start + 1]
                self._in_frame = True
                self._scanned = 0
            end = self._buffer.find(END_BLOCK, max(0, self._scanned - 1))
            if end < 0:
                # +1: the buffer may end with the FS of an END_BLOCK whose CR is still to come.
                if len(self._buffer) > self.max_bytes + 1:
                    raise FrameTooLarge(f"MLLP frame larger than {self.max_bytes} bytes")
                self._scanned = len(self._buffer)
                return frames
            if end > self.max_bytes:
                raise FrameTooLarge(f"MLLP frame of {end} bytes; the limit is {self.max_bytes}")
            frames.append(bytes(self._buffer[:end]))
            del self._buffer[: end + len(END_BLOCK)]
            self._in_frame = False


class _Handler(socketserver.BaseRequestHandler):
    server: MLLPServer
    request: socket.socket

    def setup(self) -> None:
        self.server.track(self.request)

    def finish(self) -> None:
        self.server.untrack(self.request)

    def handle(self) -> None:
        sock = self.request
        peer = str(self.client_address[0])
        sock.settimeout(self.server.idle_timeout)
        reader = FrameReader(self.server.max_message_bytes)
        while True:
            try:
                data = sock.recv(_RECV_BYTES)
            except OSError:  # idle timeout, reset, or our own shutdown
                return
            if not data:
                if reader.pending:
                    log.warning("MLLP peer %s closed the connection in the middle of a message", peer)
                return
            try:
                messages = reader.feed(data)
            except FrameTooLarge as exc:
                log.warning("MLLP peer %s: %s; closing the connection", peer, exc)
                return
            for message in messages:
                ack = iti8.handle(self.server.engine, message, self.server.settings, source_address=peer)
                try:
                    sock.sendall(frame(hl7v2.encode(ack)))
                except OSError:
                    log.warning("MLLP peer %s went away before its acknowledgement was sent", peer)
                    return


class MLLPServer(socketserver.ThreadingTCPServer):
    """Threaded MLLP server: one daemon thread per connection, each message through ITI-8."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        engine: Engine,
        settings: Settings | None,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.engine = engine
        self.settings = settings
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)

    def close_connections(self) -> None:
        """Wake every connection thread: their ``recv`` returns and they end."""
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class MLLPService:
    """A running :class:`MLLPServer` and the thread accepting its connections."""

    def __init__(self, server: MLLPServer, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread
        self._stopped = False

    @property
    def server_address(self) -> Any:
        """``(host, port)`` actually bound: the real port when 0 was asked for."""
        return self.server.server_address

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def shutdown(self) -> None:
        """Stop accepting, end open connections, release the port. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        self.server.close_connections()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> MLLPService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def serve_mllp(engine: Engine, host: str, port: int, settings: Settings | None = None) -> MLLPService:
    """Listen for ITI-8 over MLLP on ``host:port`` (0: any free port) in a background thread."""
    server = MLLPServer((host, port), engine, settings)
    bound = server.server_address
    thread = threading.Thread(target=server.serve_forever, name=f"mllp-{bound[1]}", daemon=True)
    thread.start()
    log.info("ITI-8 Patient Identity Feed listening on MLLP %s:%s", bound[0], bound[1])
    return MLLPService(server, thread)
