"""Streaming MIME multipart/related (MTOM/XOP) codec for SOAP 1.2 messages.

ITI-41 (Provide and Register Document Set-b) requests and ITI-43 (Retrieve Document Set)
responses carry their documents as MTOM/XOP: a multipart/related body whose root part is the
SOAP envelope and whose other parts are the documents, pointed at from the envelope by
``<xop:Include href="cid:..."/>``.  Documents can be tens of megabytes (imaging reports, PDFs,
DICOM), so the codec here never holds a whole document in memory:

* the body is read in fixed-size chunks and the boundary found with ``bytes.find`` across chunk
  edges, instead of the stdlib ``email`` parser, which builds every part in memory and is far
  slower on large binary parts;
* each part is hashed (SHA-1 for the XDS ``hash`` slot, SHA-256 for the blob store) and sized
  while it streams past, so nothing has to re-read it;
* parts above ``memory_threshold`` are spooled to a temporary file in a directory the caller
  chooses, so the repository can ``os.replace`` it into its blob store without a copy.  Small
  parts also spill to disk once the parts already kept in memory reach ``memory_budget``, so a
  message of a thousand 1 MiB parts cannot pin a gigabyte either.

Memory stays bounded by roughly ``chunk_size + memory_budget`` whatever the document sizes.

Input is parsed tolerantly (LF as well as CRLF line ends, ``start`` with or without angle
brackets, percent-encoded ``cid:`` URLs) because real senders differ; output is exact MIME with
CRLF line ends.  Everything a sender controls is capped (part count, part size, body size,
header block size, preamble size) and every violation raises :class:`MTOMError` with a message
precise enough to put in a SOAP fault.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import os
import re
import secrets
import tempfile
import urllib.parse
from collections.abc import Callable, Generator, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import BinaryIO

from lxml import etree

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_PARTS",
    "DEFAULT_MEMORY_THRESHOLD",
    "MAX_HEADER_BLOCK",
    "ROOT_CONTENT_ID",
    "XOP_INCLUDE",
    "XOP_NS",
    "MTOMError",
    "MultipartBody",
    "MultipartMessage",
    "Part",
    "cid_url",
    "is_multipart",
    "parse_content_type",
    "read_multipart",
    "resolve_xop",
    "write_multipart",
]

XOP_NS = "http://www.w3.org/2004/08/xop/include"
XOP_INCLUDE = f"{{{XOP_NS}}}Include"

#: Content-ID of the SOAP envelope part in the messages this module writes.
ROOT_CONTENT_ID = "root.message@carnet"
_ROOT_PART_TYPE = 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'

DEFAULT_CHUNK_SIZE = 64 * 1024
DEFAULT_MEMORY_THRESHOLD = 1 << 20
DEFAULT_MAX_PARTS = 1000
#: Cap on one part's header block; real ones are a few hundred bytes.
MAX_HEADER_BLOCK = 16 * 1024
# A preamble is legal MIME but no SOAP stack sends a big one; a long preamble almost always means
# the boundary in the Content-Type does not match the body, and failing early says so clearly
# instead of reading a whole 50 MB body to report "boundary not found".
_MAX_PREAMBLE = 64 * 1024
# RFC 2046 transport padding (spaces after a delimiter) is unbounded in theory; cap the scan.
_MAX_PADDING = 1024
# RFC 2046 limits boundaries to 70 characters; accept somewhat longer ones on input because
# being lenient costs nothing here, but never write one.
_MAX_BOUNDARY_IN = 200
_MAX_BOUNDARY_OUT = 70

_CR = 0x0D
_LF = 0x0A
_WHITESPACE = b" \t\r\n\x0b\x0c"
_PASS_THROUGH_ENCODINGS = frozenset({"binary", "8bit", "7bit"})
# Headers whose duplication would let two readers disagree about a part, a classic smuggling
# shape, so a second occurrence is an error rather than "last one wins".
_SINGLETON_HEADERS = frozenset({"content-id", "content-type", "content-transfer-encoding"})

_TYPE_RE = re.compile(r"\s*([^\s;/]+/[^\s;]+)\s*")
_PARAM_RE = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.DOTALL)
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
# RFC 2046 bchars, used only for boundaries we generate or are asked to write.
_BCHARS_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


class MTOMError(ValueError):
    """The multipart body or its XOP references are malformed, unsupported or over a limit."""


# --------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------


# eq=False: parts are compared and hashed by identity; comparing two 50 MB payloads field by
# field would be both surprising and slow.
@dataclass(eq=False)
class Part:
    """One MIME part, fully read: hashed, sized, and held in memory or spooled to a file."""

    content_id: str | None
    content_type: str | None
    headers: dict[str, str]
    size: int
    sha1: str
    sha256: str
    data: bytes | None = None
    path: str | None = None

    def read(self) -> bytes:
        """The whole content; reads the spool file if the part was spooled."""
        if self.data is not None:
            return self.data
        if self.path is not None:
            with open(self.path, "rb") as fh:
                return fh.read()
        raise MTOMError(f"content of part <{self.content_id}> has been discarded")

    def open(self) -> BinaryIO:
        """A readable binary stream of the content; the caller closes it."""
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.path is not None:
            return open(self.path, "rb")  # noqa: SIM115 - the caller owns and closes the stream
        raise MTOMError(f"content of part <{self.content_id}> has been discarded")

    def discard(self) -> None:
        """Delete the spool file, if any. Safe to call twice or after the file was renamed away."""
        if self.path is not None:
            with suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = None


@dataclass(eq=False)
class MultipartMessage:
    """A parsed multipart/related message: the SOAP envelope part and the attachments."""

    root: Part
    attachments: dict[str, Part] = field(default_factory=dict)

    def discard(self) -> None:
        """Delete every spool file this message still owns."""
        self.root.discard()
        for part in self.attachments.values():
            part.discard()


# --------------------------------------------------------------------------------------------
# Content-Type
# --------------------------------------------------------------------------------------------


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into (lower-cased media type, params with lower-cased names).

    Parameter values may be quoted (with backslash escapes, and with ``;`` inside) or bare.
    """
    m = _TYPE_RE.match(value)
    if m is None:
        raise MTOMError(f"malformed Content-Type {value!r}: no type/subtype")
    media_type = m.group(1).lower()
    params: dict[str, str] = {}
    pos = m.end()
    while pos < len(value):
        pm = _PARAM_RE.match(value, pos)
        if pm is None:
            rest = value[pos:]
            # Tolerate a trailing ";" or whitespace, which several senders emit.
            if rest.strip(" \t;") == "":
                break
            raise MTOMError(f"malformed Content-Type parameter near {rest[:60]!r}")
        name = pm.group(1).lower()
        raw = pm.group(2)
        if raw.startswith('"'):
            if len(raw) < 2 or not raw.endswith('"'):
                raise MTOMError(f"unterminated quoted string in Content-Type parameter {name!r}")
            val = _QUOTED_PAIR_RE.sub(r"\1", raw[1:-1])
        else:
            val = raw.strip()
            if '"' in val:
                raise MTOMError(f"unterminated quoted string in Content-Type parameter {name!r}")
        if name in params:
            # Two boundaries (or two starts) would let different readers split differently.
            raise MTOMError(f"Content-Type parameter {name!r} is given twice")
        params[name] = val
        pos = pm.end()
        while pos < len(value) and value[pos] in " \t":
            pos += 1
    return media_type, params


def is_multipart(content_type: str | None) -> bool:
    """True for any ``multipart/*`` type.

    Deliberately broader than multipart/related: a multipart/mixed SOAP request should reach
    :func:`read_multipart` and get a precise error, not be fed to the XML parser as-is.
    """
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower().startswith("multipart/")


def _is_xml_type(media_type: str) -> bool:
    # The SOAP layer, not this codec, decides which SOAP version it accepts (and answers a
    # text/xml SOAP 1.1 root with a proper VersionMismatch fault); here we only insist the root
    # is some kind of XML.
    return media_type in ("text/xml", "application/xml") or media_type.endswith("+xml")


def _strip_angle(value: str) -> str:
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


def cid_url(content_id: str) -> str:
    """The RFC 2392 ``cid:`` URL for a Content-ID (without angle brackets), for xop:Include."""
    # ':' is encoded like the senders in the NIST fixtures do; '@' stays readable.
    return "cid:" + urllib.parse.quote(_strip_angle(content_id), safe="@!$&'()*+,;=")


def _cid_from_url(href: str) -> str:
    try:
        return _strip_angle(urllib.parse.unquote(href[4:], encoding="utf-8", errors="strict"))
    except UnicodeDecodeError as exc:
        raise MTOMError(f"xop:Include href {href!r} is not valid percent-encoded UTF-8") from exc


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class _Base64Decoder:
    """Incremental base64 decoder for a part with Content-Transfer-Encoding: base64."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._pending = b""
        self._padded = False

    def feed(self, data: memoryview) -> bytes:
        # MIME base64 is wrapped at 76 columns; line breaks (and stray blanks) carry no data.
        clean = self._pending + data.tobytes().translate(None, _WHITESPACE)
        if not clean:
            return b""
        if self._padded:
            raise MTOMError(f"{self._label}: base64 data continues after '=' padding")
        usable = len(clean) & ~3
        self._pending = clean[usable:]
        if not usable:
            return b""
        if clean[usable - 1] == 0x3D:  # '='
            self._padded = True
        try:
            return binascii.a2b_base64(clean[:usable], strict_mode=True)
        except binascii.Error as exc:
            raise MTOMError(f"{self._label}: invalid base64 content ({exc})") from exc

    def finish(self) -> None:
        if self._pending:
            raise MTOMError(
                f"{self._label}: base64 content is truncated ({len(self._pending)} stray characters)"
            )


@dataclass
class _MemoryBudget:
    """Bytes of part content held in memory across all parts of one message."""

    limit: int
    used: int = 0


class _PartWriter:
    """Receives one part's content: decodes, hashes, sizes, and stores it (memory, then file)."""

    def __init__(
        self,
        *,
        label: str,
        headers: dict[str, str],
        spool_dir: str | None,
        memory_threshold: int,
        budget: _MemoryBudget,
        max_part_size: int | None,
        spooled: list[str],
    ) -> None:
        self._label = label
        self._headers = headers
        self._spool_dir = spool_dir
        self._threshold = memory_threshold
        self._budget = budget
        self._max_part_size = max_part_size
        self._spooled = spooled
        self._sha1 = hashlib.sha1(usedforsecurity=False)  # XDS.b's hash slot is SHA-1 by spec
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._memory: io.BytesIO | None = io.BytesIO()
        self._file: io.BufferedWriter | None = None
        self._path: str | None = None
        cte = headers.get("content-transfer-encoding", "binary").strip().lower()
        self._decoder: _Base64Decoder | None = None
        if cte == "base64":
            self._decoder = _Base64Decoder(label)
        elif cte not in _PASS_THROUGH_ENCODINGS:
            raise MTOMError(
                f"{label}: unsupported Content-Transfer-Encoding {cte!r} "
                "(supported: binary, 8bit, 7bit, base64)"
            )

    def write(self, data: memoryview) -> None:
        if self._decoder is not None:
            self._accept(memoryview(self._decoder.feed(data)))
        else:
            self._accept(data)

    def _accept(self, data: memoryview) -> None:
        if not data:
            return
        self._size += len(data)
        if self._max_part_size is not None and self._size > self._max_part_size:
            raise MTOMError(f"{self._label} exceeds the maximum part size of {self._max_part_size} bytes")
        self._sha1.update(data)
        self._sha256.update(data)
        if self._file is not None:
            self._file.write(data)
            return
        assert self._memory is not None
        self._memory.write(data)
        if self._size > self._threshold or self._budget.used + self._size > self._budget.limit:
            self._spool()

    def _spool(self) -> None:
        # mkstemp: O_EXCL and mode 0600, since the content is patient data.
        fd, path = tempfile.mkstemp(prefix="carnet-mtom-", suffix=".part", dir=self._spool_dir)
        # Registered before anything else can fail, so read_multipart's cleanup sees it.
        self._spooled.append(path)
        self._path = path
        self._file = os.fdopen(fd, "wb")
        assert self._memory is not None
        with self._memory.getbuffer() as view:
            self._file.write(view)
        self._memory.close()
        self._memory = None

    def finish(self, content_id: str | None, content_type: str | None) -> Part:
        if self._decoder is not None:
            self._decoder.finish()
        data: bytes | None = None
        if self._file is not None:
            self._file.close()
            self._file = None
        else:
            assert self._memory is not None
            data = self._memory.getvalue()  # shares BytesIO's buffer, no copy
            self._memory = None
            self._budget.used += len(data)
        return Part(
            content_id=content_id,
            content_type=content_type,
            headers=self._headers,
            size=self._size,
            sha1=self._sha1.hexdigest(),
            sha256=self._sha256.hexdigest(),
            data=data,
            path=self._path,
        )

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _Scanner:
    """Boundary splitter over a binary stream, with a buffer of about one chunk."""

    def __init__(
        self, stream: BinaryIO, boundary: bytes, chunk_size: int, max_total_size: int | None
    ) -> None:
        self._read = stream.read
        self._boundary = boundary
        # Every delimiter is searched for as LF + "--" + boundary; a CR before the LF is
        # dropped from the content separately, which is what makes bare-LF bodies work.
        self._needle = b"\n--" + boundary
        # A virtual line break in front of the body lets a delimiter on the very first line
        # (the usual case: no preamble) match the same needle.
        self._buf = b"\n"
        self._chunk_size = chunk_size
        self._max_total = max_total_size
        self.total = 0
        self._eof = False

    def _more(self) -> bool:
        """Append one chunk to the buffer; False at end of stream."""
        if self._eof:
            return False
        chunk = self._read(self._chunk_size)
        if not chunk:
            self._eof = True
            return False
        self.total += len(chunk)
        if self._max_total is not None and self.total > self._max_total:
            raise MTOMError(f"multipart body exceeds the maximum total size of {self._max_total} bytes")
        self._buf += chunk
        return True

    def _need(self, end: int) -> bool:
        """Fill until the buffer holds at least ``end`` bytes; False if the stream ends first."""
        while len(self._buf) < end:
            if not self._more():
                return False
        return True

    def _delimiter_line_end(self, j: int) -> int:
        """Classify the bytes after a needle match ending at ``j``.

        Returns -1 for a close delimiter (``--``), the offset just past the line break for a
        part delimiter, or -2 when the match is only content that happens to start like a
        delimiter (RFC 2046 requires the delimiter line to end there).
        """
        if not self._need(j + 2):
            raise MTOMError(
                f"multipart body is truncated: it ends inside a delimiter line "
                f"(boundary {self._boundary.decode('ascii')!r})"
            )
        buf = self._buf
        if buf[j : j + 2] == b"--":
            return -1
        k = j
        while True:
            if not self._need(k + 2):
                raise MTOMError("multipart body is truncated: it ends inside a delimiter line")
            buf = self._buf
            if buf[k] in (0x20, 0x09):
                k += 1
                if k - j > _MAX_PADDING:
                    return -2
                continue
            if buf[k] == _LF:
                return k + 1
            if buf[k] == _CR and buf[k + 1] == _LF:
                return k + 2
            return -2

    def scan(self, sink: Callable[[memoryview], None]) -> bool:
        """Feed content to ``sink`` up to the next delimiter and consume its line.

        Returns True when that delimiter is the close delimiter.  ``sink`` gets memoryviews
        into the buffer that are only valid during the call.
        """
        needle = self._needle
        n = len(needle)
        start = 0
        while True:
            buf = self._buf
            i = buf.find(needle, start)
            if i < 0:
                # Keep the last n bytes: n-1 could be the start of a straddling needle and one
                # more could be the CR that belongs to its line break, not to the content.
                cut = len(buf) - n
                if cut > 0:
                    sink(memoryview(buf)[:cut])
                    self._buf = buf[cut:]
                if not self._more():
                    raise MTOMError(
                        "multipart body is truncated: no closing delimiter "
                        f"--{self._boundary.decode('ascii')}-- before end of stream"
                    )
                start = 0
                continue
            line_end = self._delimiter_line_end(i + n)
            if line_end == -2:
                start = i + 1
                continue
            buf = self._buf  # may have grown while classifying; offsets are unchanged
            content_end = i - 1 if i > 0 and buf[i - 1] == _CR else i
            if content_end > 0:
                sink(memoryview(buf)[:content_end])
            if line_end == -1:
                # Close delimiter: the epilogue is not read at all; nothing in it matters.
                self._buf = b""
                return True
            self._buf = buf[line_end:]
            return False

    def read_headers(self, label: str) -> dict[str, str]:
        """Parse one part's header block (up to the empty line), capped at MAX_HEADER_BLOCK."""
        headers: dict[str, str] = {}
        last: str | None = None
        pos = 0
        while True:
            nl = self._buf.find(b"\n", pos)
            while nl < 0:
                if len(self._buf) > MAX_HEADER_BLOCK:
                    raise MTOMError(f"{label}: header block exceeds {MAX_HEADER_BLOCK} bytes")
                if not self._more():
                    raise MTOMError(f"multipart body is truncated inside the headers of {label}")
                nl = self._buf.find(b"\n", pos)
            if nl + 1 > MAX_HEADER_BLOCK:
                raise MTOMError(f"{label}: header block exceeds {MAX_HEADER_BLOCK} bytes")
            raw = self._buf[pos:nl]
            pos = nl + 1
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                break
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MTOMError(f"{label}: header line is not valid UTF-8") from exc
            if line[0] in " \t":
                # RFC 5322 folding: a continuation of the previous header.
                if last is None:
                    raise MTOMError(f"{label}: header block starts with a continuation line")
                headers[last] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            name = name.strip().lower()
            if not sep or not name or any(c in name for c in " \t"):
                raise MTOMError(f"{label}: malformed header line {line[:80]!r}")
            value = value.strip()
            if name in headers:
                if name in _SINGLETON_HEADERS:
                    raise MTOMError(f"{label}: header {name!r} appears more than once")
                headers[name] += ", " + value
            else:
                headers[name] = value
            last = name
        self._buf = self._buf[pos:]
        return headers


def read_multipart(
    stream: BinaryIO,
    content_type: str,
    *,
    spool_dir: str | None = None,
    memory_threshold: int = DEFAULT_MEMORY_THRESHOLD,
    max_parts: int = DEFAULT_MAX_PARTS,
    max_part_size: int | None = None,
    max_total_size: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    memory_budget: int | None = None,
) -> MultipartMessage:
    """Read a multipart/related (MTOM/XOP or SwA-style) body from ``stream``.

    ``content_type`` is the HTTP Content-Type header value.  Parts larger than
    ``memory_threshold`` bytes, and any part that would take the total of in-memory parts over
    ``memory_budget`` (default four times the threshold), are spooled to files in ``spool_dir``
    (the system temp dir if None); the caller owns those files (see
    :meth:`MultipartMessage.discard`).  Parts are always hashed and sized.  On any error
    every file spooled so far is deleted before :class:`MTOMError` propagates.
    ``max_part_size`` applies to decoded content, ``max_total_size`` to bytes read from the
    stream.  Reading stops at the close delimiter; an epilogue is left unread.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if memory_threshold < 0:
        raise ValueError("memory_threshold must not be negative")
    if memory_budget is None:
        memory_budget = 4 * memory_threshold
    if memory_budget < 0:
        raise ValueError("memory_budget must not be negative")
    if max_parts < 1:
        raise ValueError("max_parts must be at least 1")

    media_type, params = parse_content_type(content_type)
    if media_type != "multipart/related":
        raise MTOMError(f"expected a multipart/related body, got {media_type!r}")
    boundary = params.get("boundary")
    if not boundary:
        raise MTOMError("multipart/related Content-Type has no boundary parameter")
    if len(boundary) > _MAX_BOUNDARY_IN:
        raise MTOMError(f"multipart boundary is {len(boundary)} characters long (limit {_MAX_BOUNDARY_IN})")
    if not all(" " <= c <= "~" for c in boundary):
        raise MTOMError("multipart boundary contains characters outside printable ASCII")
    root_type = params.get("type")
    if root_type is not None and not _is_xml_type(root_type.strip().lower()):
        raise MTOMError(
            f"multipart/related type parameter {root_type!r} is not an XML type "
            "(expected application/xop+xml or application/soap+xml)"
        )
    start = _strip_angle(params["start"]) if "start" in params else None

    scanner = _Scanner(stream, boundary.encode("ascii"), chunk_size, max_total_size)
    parts: list[Part] = []
    spooled: list[str] = []
    budget = _MemoryBudget(memory_budget)
    writer: _PartWriter | None = None
    try:
        preamble = 0

        def skip_preamble(data: memoryview) -> None:
            nonlocal preamble
            preamble += len(data)
            if preamble > _MAX_PREAMBLE:
                raise MTOMError(
                    f"boundary {boundary!r} not found in the first {_MAX_PREAMBLE} bytes of the body; "
                    "does the Content-Type boundary match the body?"
                )

        if scanner.scan(skip_preamble):
            raise MTOMError("multipart body contains no parts (close delimiter first)")
        while True:
            if len(parts) >= max_parts:
                raise MTOMError(f"multipart body has more than the maximum of {max_parts} parts")
            label = f"MIME part {len(parts) + 1}"
            headers = scanner.read_headers(label)
            content_id = _strip_angle(headers["content-id"]) if "content-id" in headers else None
            if content_id:
                label += f" (Content-ID <{content_id}>)"
            writer = _PartWriter(
                label=label,
                headers=headers,
                spool_dir=spool_dir,
                memory_threshold=memory_threshold,
                budget=budget,
                max_part_size=max_part_size,
                spooled=spooled,
            )
            closed = scanner.scan(writer.write)
            parts.append(writer.finish(content_id or None, headers.get("content-type")))
            writer = None
            if closed:
                break
        return _assemble(parts, start)
    except BaseException:
        # Cleanup must also run on KeyboardInterrupt and friends; the error is re-raised.
        if writer is not None:
            writer.abort()
        for path in spooled:
            with suppress(FileNotFoundError):
                os.unlink(path)
        raise


def _assemble(parts: list[Part], start: str | None) -> MultipartMessage:
    by_id: dict[str, int] = {}
    for idx, part in enumerate(parts, 1):
        if part.content_id is None:
            continue
        if part.content_id in by_id:
            raise MTOMError(
                f"duplicate Content-ID <{part.content_id}> on MIME parts {by_id[part.content_id]} and {idx}"
            )
        by_id[part.content_id] = idx
    if start is not None:
        # SAAJ sends start without angle brackets; both forms were normalised by _strip_angle.
        if start not in by_id:
            raise MTOMError(f"start parameter <{start}> matches no part's Content-ID")
        root = parts[by_id[start] - 1]
    else:
        root = parts[0]
    if root.content_type is not None:
        root_media, _ = parse_content_type(root.content_type)
        if not _is_xml_type(root_media):
            raise MTOMError(f"root MIME part has Content-Type {root_media!r}, expected an XML type")
    attachments: dict[str, Part] = {}
    for idx, part in enumerate(parts, 1):
        if part is root:
            continue
        if part.content_id is None:
            raise MTOMError(f"MIME part {idx} has no Content-ID, so nothing can reference it")
        attachments[part.content_id] = part
    return MultipartMessage(root=root, attachments=attachments)


# --------------------------------------------------------------------------------------------
# XOP
# --------------------------------------------------------------------------------------------


def resolve_xop(envelope: etree._Element, message: MultipartMessage) -> dict[etree._Element, Part]:
    """Replace every xop:Include by a mapping from its parent element to the referenced Part.

    The Include elements are removed (the parent is left with no text).  Every attachment must
    be referenced exactly once; an unknown, repeated or non-``cid:`` reference, or an
    unreferenced attachment, raises :class:`MTOMError` and leaves the tree untouched.
    """
    found: list[tuple[etree._Element, etree._Element, Part]] = []
    parents: set[etree._Element] = set()
    used: dict[int, str] = {}
    for include in envelope.iter(XOP_INCLUDE):
        href = (include.get("href") or "").strip()
        if not href:
            raise MTOMError("xop:Include element without an href attribute")
        if href[:4].lower() != "cid:":
            # Dereferencing anything but a part of this very message is how Apache CXF was made
            # to fetch attacker-chosen URLs and files (CXF-8706, CVE-2022-46364, CVE-2024-28752).
            raise MTOMError(
                f"xop:Include href {href[:200]!r} is not a cid: URL; only cid: references are accepted"
            )
        cid = _cid_from_url(href)
        part = message.attachments.get(cid)
        if part is None:
            # Some senders put the percent-encoded form in the Content-ID header as well.
            part = message.attachments.get(_strip_angle(href[4:]))
        if part is None:
            if message.root.content_id is not None and cid == message.root.content_id:
                raise MTOMError(f"xop:Include href {href!r} refers to the root part itself")
            raise MTOMError(f"xop:Include href {href!r} refers to no attachment in this message")
        assert part.content_id is not None
        if id(part) in used:
            raise MTOMError(f"attachment <{part.content_id}> is referenced by more than one xop:Include")
        used[id(part)] = part.content_id
        parent = include.getparent()
        if parent is None:
            raise MTOMError("xop:Include cannot be the document element")
        if parent in parents or sum(1 for child in parent if child.tag == XOP_INCLUDE) > 1:
            raise MTOMError(f"element {parent.tag} contains more than one xop:Include")
        # XOP 1.0 section 3: the Include must be the only child of its element.  Whitespace
        # around it is tolerated because pretty-printing senders (the NIST tools) indent it.
        if len(parent) != 1 or (parent.text or "").strip() or (include.tail or "").strip():
            raise MTOMError(
                f"xop:Include in element {parent.tag} has sibling content; it must be the only child"
            )
        parents.add(parent)
        found.append((include, parent, part))

    unreferenced = [cid for cid, part in message.attachments.items() if id(part) not in used]
    if unreferenced:
        listed = ", ".join(f"<{cid}>" for cid in unreferenced[:5])
        more = f" and {len(unreferenced) - 5} more" if len(unreferenced) > 5 else ""
        raise MTOMError(f"attachment(s) not referenced by any xop:Include: {listed}{more}")

    resolved: dict[etree._Element, Part] = {}
    for include, parent, part in found:
        parent.remove(include)  # lxml removes the Include's tail with it
        parent.text = None
        resolved[parent] = part
    return resolved


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


class MultipartBody(Iterator[bytes]):
    """The encoded body of :func:`write_multipart`, as an iterator of byte chunks.

    ``content_length`` is known before the first byte is produced, so the HTTP layer can send
    Content-Length rather than chunked transfer coding.  ``close()`` (which WSGI servers call)
    releases any open spool file.
    """

    def __init__(self, segments: list[bytes | Part], chunk_size: int) -> None:
        self.content_length = sum(len(s) if isinstance(s, bytes) else s.size for s in segments)
        self._gen = self._generate(segments, chunk_size)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()

    @staticmethod
    def _generate(segments: list[bytes | Part], chunk_size: int) -> Generator[bytes, None, None]:
        for seg in segments:
            if isinstance(seg, bytes):
                if seg:
                    yield seg
                continue
            assert seg.path is not None
            sent = 0
            with open(seg.path, "rb") as fh:
                while chunk := fh.read(chunk_size):
                    sent += len(chunk)
                    yield chunk
            if sent != seg.size:
                # Content-Length is already on the wire; a silent mismatch would corrupt framing.
                raise MTOMError(f"spool file for <{seg.content_id}> holds {sent} bytes, expected {seg.size}")


def _check_header_value(what: str, value: str) -> None:
    if not value or not all(" " <= c <= "~" for c in value):
        raise MTOMError(f"{what} {value!r} must be non-empty printable ASCII (no CR/LF)")


def write_multipart(
    root_xml: bytes,
    attachments: list[tuple[str, str, Part | bytes]],
    *,
    action: str | None = None,
    boundary: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[str, MultipartBody]:
    """Encode an MTOM message; returns (Content-Type header value, body iterator).

    ``root_xml`` is the serialised SOAP envelope, with xop:Include elements whose href is
    :func:`cid_url` of each attachment's content_id.  Each attachment is
    ``(content_id, content_type, Part or bytes)``; spooled Parts are streamed from disk.
    """
    if boundary is None:
        boundary = "MIMEBoundary_" + secrets.token_hex(24)
    elif len(boundary) > _MAX_BOUNDARY_OUT or not _BCHARS_RE.fullmatch(boundary):
        raise MTOMError(f"boundary {boundary!r} is not a valid RFC 2046 boundary")
    if action is not None:
        _check_header_value("action", action)
        if '"' in action or "\\" in action:
            raise MTOMError(f"action {action!r} must not contain quotes or backslashes")

    def part_head(content_id: str, content_type: str) -> bytes:
        return (
            f"--{boundary}\r\n"
            f"Content-Type: {content_type}\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{content_id}>\r\n"
            "\r\n"
        ).encode("ascii")

    segments: list[bytes | Part] = [part_head(ROOT_CONTENT_ID, _ROOT_PART_TYPE), root_xml]
    seen = {ROOT_CONTENT_ID}
    for content_id, content_type, content in attachments:
        cid = _strip_angle(content_id)
        _check_header_value("Content-ID", cid)
        if any(c in cid for c in "<> "):
            raise MTOMError(f"Content-ID {cid!r} must not contain angle brackets or spaces")
        if cid in seen:
            raise MTOMError(f"duplicate Content-ID <{cid}> in attachments")
        seen.add(cid)
        _check_header_value("Content-Type", content_type)
        segments.append(b"\r\n" + part_head(cid, content_type))
        if isinstance(content, bytes):
            segments.append(content)
        elif content.data is not None:
            segments.append(content.data)
        elif content.path is not None:
            segments.append(content)
        else:
            raise MTOMError(f"attachment <{cid}> has been discarded")
    segments.append(f"\r\n--{boundary}--\r\n".encode("ascii"))

    header = (
        f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
        f'start="<{ROOT_CONTENT_ID}>"; start-info="application/soap+xml"'
    )
    if action is not None:
        header += f'; action="{action}"'
    return header, MultipartBody(segments, chunk_size)
