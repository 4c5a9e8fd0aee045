"""Tests for the streaming MTOM/XOP codec (carnet.soap.mtom).

Real-world bodies come from the NIST XDS toolkit test kit in the shared fixtures folder (read in
place, never copied); everything else is built here byte by byte so the framing is explicit.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from carnet.soap.mtom import (
    ROOT_CONTENT_ID,
    MTOMError,
    MultipartMessage,
    Part,
    cid_url,
    is_multipart,
    parse_content_type,
    read_multipart,
    resolve_xop,
    write_multipart,
)
from carnet.xml import parse

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XDSB = "urn:ihe:iti:xds-b:2007"
XOP = "http://www.w3.org/2004/08/xop/include"

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
TESTKIT = (
    FIXTURES / "nist-testkit" / "xdstools2" / "src" / "main" / "webapp" / "toolkitx" / "testkit" / "tests"
)

needs_testkit = pytest.mark.skipif(
    not TESTKIT.is_dir(), reason=f"NIST test kit fixtures not found at {TESTKIT}"
)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class IterStream:
    """A read()-able stream over an iterator of byte chunks, holding at most one chunk."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._left = b""

    def read(self, n: int = -1) -> bytes:
        while not self._left:
            try:
                self._left = next(self._it)
            except StopIteration:
                return b""
        if n < 0 or n >= len(self._left):
            out, self._left = self._left, b""
        else:
            out, self._left = self._left[:n], self._left[n:]
        return out


def envelope(body_xml: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<s:Envelope xmlns:s="{SOAP12}" xmlns:xdsb="{XDSB}" xmlns:xop="{XOP}">'
        f"<s:Body>{body_xml}</s:Body></s:Envelope>"
    ).encode()


def include(cid: str) -> str:
    return f'<xop:Include href="{cid_url(cid)}"/>'


def pnr_envelope(*cids: str) -> bytes:
    docs = "".join(f'<xdsb:Document id="Doc{i}">{include(c)}</xdsb:Document>' for i, c in enumerate(cids))
    return envelope(
        f"<xdsb:ProvideAndRegisterDocumentSetRequest>{docs}</xdsb:ProvideAndRegisterDocumentSetRequest>"
    )


def build(
    parts: list[tuple[list[str], bytes]],
    boundary: str = "b0und4ry",
    nl: bytes = b"\r\n",
    preamble: bytes = b"",
    epilogue: bytes = b"",
) -> bytes:
    """Assemble a multipart body by hand; ``nl`` is the framing line break."""
    b = boundary.encode()
    out = [preamble]
    for headers, content in parts:
        out.append(b"--" + b + nl)
        out.extend(h.encode() + nl for h in headers)
        out.append(nl)
        out.append(content)
        out.append(nl)
    out.append(b"--" + b + b"--" + nl + epilogue)
    return b"".join(out)


def ctype(
    boundary: str = "b0und4ry", start: str | None = "<root@x>", type_: str = "application/xop+xml"
) -> str:
    value = f'multipart/related; type="{type_}"; boundary="{boundary}"'
    if start is not None:
        value += f'; start="{start}"'
    return value


ROOT_HEADERS = [
    'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"',
    "Content-Transfer-Encoding: binary",
    "Content-ID: <root@x>",
]


def att_headers(cid: str, cte: str = "binary", ctype_: str = "application/octet-stream") -> list[str]:
    return [f"Content-Type: {ctype_}", f"Content-Transfer-Encoding: {cte}", f"Content-ID: <{cid}>"]


def parse_body(body: bytes, content_type: str, **kw: object) -> MultipartMessage:
    return read_multipart(io.BytesIO(body), content_type, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# NIST test kit bodies
# ---------------------------------------------------------------------------------------------


def content_type_from_testplan(testplan: Path) -> str:
    root = parse(testplan.read_bytes())
    for headers in root.iter("Headers"):
        for line in (headers.text or "").splitlines():
            name, sep, value = line.strip().partition(":")
            if sep and name.lower() == "content-type":
                return value.strip()
    raise AssertionError(f"no Content-Type in {testplan}")


# (test dir, expected root Content-ID, expected attachment Content-IDs)
FIXTURE_BODIES = [
    (
        "PnrXop/Xop",
        "0.85b57d7287e4fa4b528a8f050c41f8ad829c20332f23b48d@apache.org",
        ["1.b5b57d7287e4fa4b528a8f050c41f8ad829c20332f23b48d@apache.org"],
    ),
    # Despite its name, PnrNoXop/submit sends the document as an XOP attachment.
    (
        "PnrNoXop/submit",
        "0.85b57d7287e4fa4b528a8f050c41f8ad829c20332f23b48d@apache.org",
        ["1.b5b57d7287e4fa4b528a8f050c41f8ad829c20332f23b48d@apache.org"],
    ),
    # href is cid:...@urn%3Aihe%3Aiti%3Axds-b%3A2007, the Content-ID header is not encoded.
    (
        "PnrXop/encodedURL",
        "0.85b57d7287e4fa4b528a8f050c41f8ad829c20332f23b48d@apache.org",
        ["fdf975cc-9f08-4d94-b7f6-99f4807f3654-1@urn:ihe:iti:xds-b:2007"],
    ),
    # MTOM packaging but the document inline as base64: a one-part multipart.
    ("PnrXop/NoXop", "0.85b57d7287e4fa4b528a8f050c41f8ad829c20332f23b48d@apache.org", []),
    # .NET/WCF: LF before the first delimiter, headers in another order, 8bit, unprefixed
    # default-namespace XDS elements, and a small DICOM object inline as base64.
    ("PnrXop/dicom", "http://tempuri.org/0", []),
]


@needs_testkit
@pytest.mark.parametrize(
    ("test_dir", "root_cid", "attachment_cids"), FIXTURE_BODIES, ids=[f[0] for f in FIXTURE_BODIES]
)
def test_nist_fixture_bodies(
    tmp_path: Path, test_dir: str, root_cid: str, attachment_cids: list[str]
) -> None:
    d = TESTKIT / test_dir
    content_type = content_type_from_testplan(d / "testplan.xml")
    assert is_multipart(content_type)
    with (d / "body.txt").open("rb") as fh:
        message = read_multipart(fh, content_type, spool_dir=str(tmp_path))

    assert message.root.content_id == root_cid
    assert sorted(message.attachments) == sorted(attachment_cids)
    env = parse(message.root.read())
    assert env.tag == f"{{{SOAP12}}}Envelope"
    pnr = env.find(f"{{{SOAP12}}}Body/{{{XDSB}}}ProvideAndRegisterDocumentSetRequest")
    assert pnr is not None

    resolved = resolve_xop(env, message)
    docs = pnr.findall(f"{{{XDSB}}}Document")
    assert len(docs) == 1
    assert env.find(f".//{{{XOP}}}Include") is None
    assert set(resolved.values()) == set(message.attachments.values())

    my_document = d / "my_document.txt"
    if attachment_cids:
        part = resolved[docs[0]]
        assert part.content_id == attachment_cids[0]
        assert part.sha1 == sha1(part.read())
        assert part.sha256 == sha256(part.read())
        assert part.size == len(part.read())
        assert not docs[0].text
        assert my_document.exists()
        assert part.sha1 == sha1(my_document.read_bytes())
    else:
        inline = base64.b64decode(docs[0].text or "", validate=False)
        if my_document.exists():
            # The inline base64 in NoXop encodes "...\r\n\r\nIt is great!\r\n": CRLF line ends and
            # one line break fewer than my_document.txt, so the SHA-1s differ; compare the text.
            expected = my_document.read_bytes()
            assert inline.replace(b"\r\n", b"\n") == expected.rstrip(b"\n") + b"\n"
        else:
            assert inline[128:132] == b"DICM"  # DICOM Part 10 preamble + magic
    assert list(tmp_path.iterdir()) == []  # tiny parts never touch the disk


@needs_testkit
@pytest.mark.parametrize("chunk_size", [1, 2, 7, 61, 62, 63, 64, 65, 1000, 4096])
def test_nist_fixture_any_chunk_size(chunk_size: int) -> None:
    d = TESTKIT / "PnrXop" / "encodedURL"
    content_type = content_type_from_testplan(d / "testplan.xml")
    body = (d / "body.txt").read_bytes()
    reference = parse_body(body, content_type)
    message = parse_body(body, content_type, chunk_size=chunk_size)
    assert message.root.read() == reference.root.read()
    assert {k: p.read() for k, p in message.attachments.items()} == {
        k: p.read() for k, p in reference.attachments.items()
    }


# ---------------------------------------------------------------------------------------------
# framing
# ---------------------------------------------------------------------------------------------

BINARY = bytes(range(256)) + b"\r\n--b0und4ryX is not a delimiter\r\n--b0und4ry-ish\n\r\r\n"
TEXT = b"plain text \xc3\xa9\r\n"


def small_message(nl: bytes) -> bytes:
    b64 = base64.encodebytes(TEXT * 20)  # wrapped at 76 columns with LF
    return build(
        [
            (ROOT_HEADERS, pnr_envelope("bin@x", "b64@x")),
            (att_headers("bin@x"), BINARY),
            (att_headers("b64@x", cte="base64", ctype_="text/plain"), b64),
        ],
        nl=nl,
        preamble=b"This is the preamble." + nl,
        epilogue=b"This is the epilogue, never read." + nl,
    )


@pytest.mark.parametrize("nl", [b"\r\n", b"\n"], ids=["CRLF", "LF"])
def test_every_chunk_size_gives_the_same_parts(nl: bytes) -> None:
    body = small_message(nl)
    for chunk_size in range(1, 51):
        message = parse_body(body, ctype(), chunk_size=chunk_size)
        assert message.root.content_id == "root@x"
        assert message.attachments["bin@x"].read() == BINARY, chunk_size
        assert message.attachments["b64@x"].read() == TEXT * 20, chunk_size
        assert message.attachments["bin@x"].sha1 == sha1(BINARY)
        env = parse(message.root.read())
        assert len(resolve_xop(env, message)) == 2


def test_short_reads_from_the_stream() -> None:
    # Sockets return fewer bytes than asked for; feed 1..13-byte pieces regardless of chunk_size.
    body = small_message(b"\r\n")
    pieces = []
    pos, step = 0, 1
    while pos < len(body):
        pieces.append(body[pos : pos + step])
        pos += step
        step = step % 13 + 1
    message = read_multipart(IterStream(pieces), ctype())  # type: ignore[arg-type]
    assert message.attachments["bin@x"].read() == BINARY


def test_transport_padding_and_mixed_line_ends() -> None:
    body = (
        b"--b0und4ry \t\r\n"
        + "\r\n".join(ROOT_HEADERS).encode()
        + b"\n\r\n"
        + pnr_envelope("a@x")
        + b"\n--b0und4ry  \n"
        + "\n".join(att_headers("a@x")).encode()
        + b"\r\n\r\n"
        + b"DATA"
        + b"\r\n--b0und4ry--"
    )
    message = parse_body(body, ctype())
    assert message.attachments["a@x"].read() == b"DATA"
    assert message.root.read().endswith(b"</s:Envelope>")


def test_folded_and_duplicate_headers() -> None:
    headers = [
        "Content-Type: application/octet-stream;",
        '  name="x.bin"',
        "X-Note: a",
        "X-Note: b",
        "Content-ID: <a@x>",
    ]
    message = parse_body(build([(ROOT_HEADERS, pnr_envelope("a@x")), (headers, b"z")]), ctype())
    part = message.attachments["a@x"]
    assert part.content_type == 'application/octet-stream; name="x.bin"'
    assert part.headers["x-note"] == "a, b"
    assert part.headers["content-id"] == "<a@x>"


def test_empty_part_is_kept() -> None:
    message = parse_body(build([(ROOT_HEADERS, pnr_envelope("e@x")), (att_headers("e@x"), b"")]), ctype())
    part = message.attachments["e@x"]
    assert part.size == 0 and part.data == b"" and part.sha1 == sha1(b"")


# ---------------------------------------------------------------------------------------------
# Content-Type, root selection, content IDs
# ---------------------------------------------------------------------------------------------


def test_parse_content_type() -> None:
    media, params = parse_content_type(
        'Multipart/Related; Boundary="uuid:376733a6+id=17";type="application/xop+xml";'
        ' start="<http://tempuri.org/0>"; start-info="application/soap+xml";'
        ' action="urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b";'
    )
    assert media == "multipart/related"
    assert params == {
        "boundary": "uuid:376733a6+id=17",
        "type": "application/xop+xml",
        "start": "<http://tempuri.org/0>",
        "start-info": "application/soap+xml",
        "action": "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
    }
    assert parse_content_type("multipart/related;boundary=MIME_b ; start = <a@b>") == (
        "multipart/related",
        {"boundary": "MIME_b", "start": "<a@b>"},
    )
    assert parse_content_type(r'text/plain; x="a;b \"c\" \\"')[1] == {"x": 'a;b "c" \\'}
    for bad in [
        "",
        "multipart",
        'multipart/related; boundary="abc',
        "multipart/related; boundary",
        "multipart/related; boundary=a; boundary=b",
        'multipart/related; a="x"y',
    ]:
        with pytest.raises(MTOMError):
            parse_content_type(bad)


def test_is_multipart() -> None:
    assert is_multipart('multipart/related; type="application/xop+xml"; boundary=x')
    assert is_multipart("Multipart/Mixed")
    assert not is_multipart('application/soap+xml; charset=UTF-8; action="urn:x"')
    assert not is_multipart(None)
    assert not is_multipart("")


def test_wrong_media_type_and_missing_boundary() -> None:
    body = build([(ROOT_HEADERS, pnr_envelope())])
    with pytest.raises(MTOMError, match="expected a multipart/related"):
        parse_body(body, "multipart/mixed; boundary=b0und4ry")
    with pytest.raises(MTOMError, match="no boundary"):
        parse_body(body, 'multipart/related; type="application/xop+xml"')
    with pytest.raises(MTOMError, match="not an XML type"):
        parse_body(body, ctype(type_="text/plain"))


@pytest.mark.parametrize("start", ["<root@x>", "root@x"], ids=["bracketed", "SAAJ-bare"])
def test_root_found_by_start_even_when_not_first(start: str) -> None:
    body = build([(att_headers("a@x"), b"attachment first"), (ROOT_HEADERS, pnr_envelope("a@x"))])
    message = parse_body(body, ctype(start=start))
    assert message.root.content_id == "root@x"
    assert list(message.attachments) == ["a@x"]


def test_start_matching_nothing_is_an_error() -> None:
    body = build([(ROOT_HEADERS, pnr_envelope())])
    with pytest.raises(MTOMError, match="start parameter <nope@x> matches no part"):
        parse_body(body, ctype(start="<nope@x>"))


def test_root_defaults_to_first_part_and_swa_style_is_accepted() -> None:
    root_headers = ["Content-Type: application/soap+xml; charset=UTF-8", "Content-ID: <r@x>"]
    body = build([(root_headers, pnr_envelope("a@x")), (att_headers("a@x"), b"doc")])
    message = parse_body(body, ctype(start=None, type_="application/soap+xml"))
    assert message.root.content_id == "r@x"
    env = parse(message.root.read())
    assert [p.read() for p in resolve_xop(env, message).values()] == [b"doc"]


def test_root_must_be_xml() -> None:
    body = build([(["Content-Type: image/png", "Content-ID: <root@x>"], b"\x89PNG")])
    with pytest.raises(MTOMError, match="root MIME part has Content-Type 'image/png'"):
        parse_body(body, ctype())


def test_duplicate_content_id() -> None:
    body = build(
        [(ROOT_HEADERS, pnr_envelope("a@x")), (att_headers("a@x"), b"1"), (att_headers("a@x"), b"2")]
    )
    with pytest.raises(MTOMError, match=r"duplicate Content-ID <a@x> on MIME parts 2 and 3"):
        parse_body(body, ctype())


def test_duplicate_content_id_header_in_one_part() -> None:
    headers = [*att_headers("a@x"), "Content-ID: <b@x>"]
    with pytest.raises(MTOMError, match="'content-id' appears more than once"):
        parse_body(build([(ROOT_HEADERS, pnr_envelope("a@x")), (headers, b"1")]), ctype())


def test_attachment_without_content_id() -> None:
    body = build([(ROOT_HEADERS, pnr_envelope()), (["Content-Type: text/plain"], b"orphan")])
    with pytest.raises(MTOMError, match="MIME part 2 has no Content-ID"):
        parse_body(body, ctype())


# ---------------------------------------------------------------------------------------------
# XOP resolution
# ---------------------------------------------------------------------------------------------


def test_percent_encoded_cid_url() -> None:
    cid = "1.urn:uuid:5117AAE1-2E4F-4F8B-9B0F-7A2F0E2E5D3C@apache.org"
    root = envelope(
        '<xdsb:Document id="d">'
        '<xop:Include href="cid:1.urn%3Auuid%3A5117AAE1-2E4F-4F8B-9B0F-7A2F0E2E5D3C%40apache.org"/>'
        "</xdsb:Document>"
    )
    message = parse_body(build([(ROOT_HEADERS, root), (att_headers(cid), b"x")]), ctype())
    env = parse(message.root.read())
    ((parent, part),) = resolve_xop(env, message).items()
    assert parent.get("id") == "d" and part.content_id == cid and parent.text is None and len(parent) == 0
    assert cid_url(cid) == "cid:1.urn%3Auuid%3A5117AAE1-2E4F-4F8B-9B0F-7A2F0E2E5D3C@apache.org"


@pytest.mark.parametrize("href", ["http://evil.example/doc", "file:///etc/passwd", "urn:x", "CID"])
def test_non_cid_href_is_refused(href: str) -> None:
    root = envelope(f'<xdsb:Document><xop:Include href="{href}"/></xdsb:Document>')
    message = parse_body(build([(ROOT_HEADERS, root)]), ctype())
    env = parse(message.root.read())
    with pytest.raises(MTOMError, match="is not a cid: URL"):
        resolve_xop(env, message)
    assert env.find(f".//{{{XOP}}}Include") is not None  # tree untouched on error


def test_unreferenced_attachment() -> None:
    body = build(
        [(ROOT_HEADERS, pnr_envelope("a@x")), (att_headers("a@x"), b"1"), (att_headers("extra@x"), b"2")]
    )
    message = parse_body(body, ctype())
    env = parse(message.root.read())
    with pytest.raises(MTOMError, match=r"not referenced by any xop:Include: <extra@x>"):
        resolve_xop(env, message)
    assert env.find(f".//{{{XOP}}}Include") is not None


def test_attachment_referenced_twice() -> None:
    body = build([(ROOT_HEADERS, pnr_envelope("a@x", "a@x")), (att_headers("a@x"), b"1")])
    message = parse_body(body, ctype())
    with pytest.raises(MTOMError, match="referenced by more than one xop:Include"):
        resolve_xop(parse(message.root.read()), message)


def test_unknown_cid() -> None:
    message = parse_body(build([(ROOT_HEADERS, pnr_envelope("ghost@x"))]), ctype())
    with pytest.raises(MTOMError, match="refers to no attachment"):
        resolve_xop(parse(message.root.read()), message)


def test_include_must_be_only_child() -> None:
    root = envelope(f"<xdsb:Document>text{include('a@x')}</xdsb:Document>")
    message = parse_body(build([(ROOT_HEADERS, root), (att_headers("a@x"), b"1")]), ctype())
    with pytest.raises(MTOMError, match="must be the only child"):
        resolve_xop(parse(message.root.read()), message)


# ---------------------------------------------------------------------------------------------
# Content-Transfer-Encoding
# ---------------------------------------------------------------------------------------------


def test_base64_transfer_encoding_is_decoded_while_streaming(tmp_path: Path) -> None:
    payload = os.urandom(200_000)
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    body = build([(ROOT_HEADERS, pnr_envelope("a@x")), (att_headers("a@x", cte="BASE64"), encoded)])
    message = parse_body(body, ctype(), spool_dir=str(tmp_path), memory_threshold=50_000, chunk_size=4093)
    part = message.attachments["a@x"]
    assert part.path is not None and part.data is None
    assert part.size == len(payload)
    assert part.sha1 == sha1(payload) and part.sha256 == sha256(payload)
    assert part.read() == payload
    message.discard()


@pytest.mark.parametrize(
    ("encoded", "message"),
    [(b"QUJD!!!!", "invalid base64"), (b"QUJDRA", "truncated"), (b"QQ==QUJD", "after '=' padding")],
)
def test_bad_base64(encoded: bytes, message: str) -> None:
    body = build([(ROOT_HEADERS, pnr_envelope("a@x")), (att_headers("a@x", cte="base64"), encoded)])
    with pytest.raises(MTOMError, match=message):
        parse_body(body, ctype(), chunk_size=5)


def test_unsupported_transfer_encoding() -> None:
    body = build([(ROOT_HEADERS, pnr_envelope("a@x")), (att_headers("a@x", cte="quoted-printable"), b"=41")])
    with pytest.raises(MTOMError, match="unsupported Content-Transfer-Encoding 'quoted-printable'"):
        parse_body(body, ctype())


# ---------------------------------------------------------------------------------------------
# limits and malformed bodies
# ---------------------------------------------------------------------------------------------


def three_part_body() -> bytes:
    return build(
        [
            (ROOT_HEADERS, pnr_envelope("a@x", "b@x")),
            (att_headers("a@x"), b"A" * 1000),
            (att_headers("b@x"), b"B"),
        ]
    )


def test_max_parts() -> None:
    assert len(parse_body(three_part_body(), ctype(), max_parts=3).attachments) == 2
    with pytest.raises(MTOMError, match="more than the maximum of 2 parts"):
        parse_body(three_part_body(), ctype(), max_parts=2)


def test_max_part_size() -> None:
    assert len(pnr_envelope("a@x", "b@x")) < 999  # so the 1000-byte attachment is the biggest part
    parse_body(three_part_body(), ctype(), max_part_size=1000)
    with pytest.raises(
        MTOMError, match=r"MIME part 2 \(Content-ID <a@x>\) exceeds the maximum part size of 999"
    ):
        parse_body(three_part_body(), ctype(), max_part_size=999)


def test_max_total_size() -> None:
    body = three_part_body()
    parse_body(body, ctype(), max_total_size=len(body))
    with pytest.raises(MTOMError, match=f"exceeds the maximum total size of {len(body) - 1} bytes"):
        parse_body(body, ctype(), max_total_size=len(body) - 1)


def test_spool_files_are_removed_on_error(tmp_path: Path) -> None:
    body = build([(ROOT_HEADERS, pnr_envelope("a@x")), (att_headers("a@x"), os.urandom(300_000))])
    with pytest.raises(MTOMError, match="maximum total size"):
        parse_body(
            body, ctype(), spool_dir=str(tmp_path), memory_threshold=1000, max_total_size=len(body) - 10
        )
    assert list(tmp_path.iterdir()) == []
    # ...and also when the failure comes after the spooled part is complete.
    body = build(
        [
            (ROOT_HEADERS, pnr_envelope("a@x")),
            (att_headers("a@x"), os.urandom(3000)),
            (att_headers("a@x"), b"dup"),
        ]
    )
    with pytest.raises(MTOMError, match="duplicate Content-ID"):
        parse_body(body, ctype(), spool_dir=str(tmp_path), memory_threshold=1000)
    assert list(tmp_path.iterdir()) == []


def test_memory_budget_spills_small_parts_to_disk(tmp_path: Path) -> None:
    cids = [f"p{i}@x" for i in range(10)]
    parts = [(ROOT_HEADERS, pnr_envelope(*cids))] + [(att_headers(c), os.urandom(100_000)) for c in cids]
    message = parse_body(build(parts), ctype(), spool_dir=str(tmp_path), memory_budget=350_000)
    in_memory = [p for p in message.attachments.values() if p.data is not None]
    on_disk = [p for p in message.attachments.values() if p.path is not None]
    # The root (well under 1 KB) and three 100 KB parts fit the budget; the rest spill.
    assert len(in_memory) == 3 and len(on_disk) == 7
    assert all(
        p.read() == content for p, (_, content) in zip(message.attachments.values(), parts[1:], strict=True)
    )
    message.discard()
    assert list(tmp_path.iterdir()) == []


def test_header_block_limit() -> None:
    headers = [*att_headers("a@x"), "X-Padding: " + "p" * 17_000]
    with pytest.raises(MTOMError, match="header block exceeds 16384 bytes"):
        parse_body(build([(ROOT_HEADERS, pnr_envelope("a@x")), (headers, b"1")]), ctype())
    # Many short lines count too.
    headers = [*att_headers("a@x"), *[f"X-{i}: v" for i in range(3000)]]
    with pytest.raises(MTOMError, match="header block exceeds"):
        parse_body(build([(ROOT_HEADERS, pnr_envelope("a@x")), (headers, b"1")]), ctype())


def test_wrong_boundary_fails_fast() -> None:
    body = build([(ROOT_HEADERS, pnr_envelope()), (att_headers("a@x"), b"x" * 1_000_000)])
    stream = io.BytesIO(body)
    with pytest.raises(MTOMError, match="boundary 'other' not found in the first 65536 bytes"):
        read_multipart(stream, ctype(boundary="other"))
    assert stream.tell() <= 3 * 65536  # gave up after the preamble cap, not at end of body


@pytest.mark.parametrize("cut", [1, 5, 20, -40, -16, -13, -3], ids=lambda c: f"cut{c}")
def test_truncated_body(cut: int) -> None:
    body = build([(ROOT_HEADERS, pnr_envelope("a@x")), (att_headers("a@x"), b"payload")])
    truncated = body[:cut] if cut > 0 else body[: len(body) + cut]
    with pytest.raises(MTOMError, match="truncated|no parts|not found"):
        parse_body(truncated, ctype(), chunk_size=7)


def test_missing_final_line_break_is_fine() -> None:
    body = build([(ROOT_HEADERS, pnr_envelope("a@x")), (att_headers("a@x"), b"payload")]).rstrip(b"\r\n")
    assert body.endswith(b"--b0und4ry--")
    assert parse_body(body, ctype(), chunk_size=3).attachments["a@x"].read() == b"payload"


def test_close_delimiter_without_parts() -> None:
    with pytest.raises(MTOMError, match="contains no parts"):
        parse_body(b"--b0und4ry--\r\n", ctype())


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def test_write_multipart_exact_shape() -> None:
    root = b"<s:Envelope/>"
    header, body = write_multipart(
        root,
        [("doc1@x", "text/plain", b"hello")],
        action="urn:ihe:iti:2007:RetrieveDocumentSetResponse",
        boundary="MIMEBoundary_test",
    )
    assert header == (
        'multipart/related; type="application/xop+xml"; boundary="MIMEBoundary_test"; '
        'start="<root.message@carnet>"; start-info="application/soap+xml"; '
        'action="urn:ihe:iti:2007:RetrieveDocumentSetResponse"'
    )
    data = b"".join(body)
    assert data == (
        b"--MIMEBoundary_test\r\n"
        b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <root.message@carnet>\r\n"
        b"\r\n"
        b"<s:Envelope/>\r\n"
        b"--MIMEBoundary_test\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <doc1@x>\r\n"
        b"\r\n"
        b"hello\r\n"
        b"--MIMEBoundary_test--\r\n"
    )
    assert body.content_length == len(data)
    header2, _ = write_multipart(root, [])
    media, params = parse_content_type(header2)
    assert "action" not in params and len(params["boundary"]) <= 70


@pytest.mark.parametrize(
    ("attachments", "kwargs", "message"),
    [
        ([("a@x", "text/plain", b""), ("<a@x>", "text/plain", b"")], {}, "duplicate Content-ID"),
        ([(ROOT_CONTENT_ID, "text/plain", b"")], {}, "duplicate Content-ID"),
        ([("a@x", "text/plain\r\nX-Evil: 1", b"")], {}, "printable ASCII"),
        ([("a b@x", "text/plain", b"")], {}, "angle brackets or spaces"),
        ([], {"action": 'urn:x" evil="1'}, "quotes"),
        ([], {"boundary": "bad\nboundary"}, "not a valid RFC 2046 boundary"),
        ([], {"boundary": "x" * 71}, "not a valid RFC 2046 boundary"),
    ],
)
def test_write_multipart_rejects_bad_input(
    attachments: list[tuple[str, str, bytes]], kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(MTOMError, match=message):
        write_multipart(b"<x/>", list(attachments), **kwargs)  # type: ignore[arg-type]


def retrieve_response(*cids: str) -> bytes:
    docs = "".join(
        f"<xdsb:DocumentResponse><xdsb:Document>{include(c)}</xdsb:Document></xdsb:DocumentResponse>"
        for c in cids
    )
    return envelope(f"<xdsb:RetrieveDocumentSetResponse>{docs}</xdsb:RetrieveDocumentSetResponse>")


def test_round_trip_with_a_spooled_3_mib_attachment(tmp_path: Path) -> None:
    store = tmp_path / "store"
    spool = tmp_path / "spool"
    store.mkdir()
    spool.mkdir()
    big = os.urandom(3 << 20)
    (store / "big.bin").write_bytes(big)
    big_part = Part(
        content_id=None,
        content_type="application/pdf",
        headers={},
        size=len(big),
        sha1=sha1(big),
        sha256=sha256(big),
        data=None,
        path=str(store / "big.bin"),
    )
    small = b"<ClinicalDocument/>"
    cids = ["1.urn:uuid:aa@carnet", "2.urn:uuid:bb@carnet"]
    header, body = write_multipart(
        retrieve_response(*cids),
        [(cids[0], "application/pdf", big_part), (cids[1], "text/xml", small)],
        action="urn:ihe:iti:2007:RetrieveDocumentSetResponse",
    )
    chunks = list(body)
    assert max(len(c) for c in chunks) <= 3 << 20
    assert body.content_length == sum(len(c) for c in chunks)

    message = read_multipart(IterStream(chunks), header, spool_dir=str(spool))  # type: ignore[arg-type]
    assert message.root.content_id == ROOT_CONTENT_ID
    got = message.attachments[cids[0]]
    assert got.path is not None and Path(got.path).parent == spool and got.data is None
    assert (got.size, got.sha1, got.sha256) == (len(big), sha1(big), sha256(big))
    with got.open() as fh:
        assert fh.read() == big
    assert message.attachments[cids[1]].data == small

    env = parse(message.root.read())
    resolved = resolve_xop(env, message)
    assert [p.content_id for p in resolved.values()] == cids
    message.discard()
    message.discard()  # idempotent
    assert list(spool.iterdir()) == []
    assert (store / "big.bin").exists()  # the source Part was only read


def test_discarded_part_cannot_be_read_or_written(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    part = Part("c@x", "text/plain", {}, 3, sha1(b"abc"), sha256(b"abc"), None, str(path))
    assert part.read() == b"abc"
    part.discard()
    assert not path.exists()
    with pytest.raises(MTOMError, match="discarded"):
        part.read()
    with pytest.raises(MTOMError, match="discarded"):
        write_multipart(b"<x/>", [("c@x", "text/plain", part)])


# ---------------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------------


def test_50_mb_attachment_in_bounded_memory(tmp_path: Path) -> None:
    block = os.urandom(64 * 1024)
    blocks = (50 * 1024 * 1024) // len(block)
    expected = hashlib.sha256()
    head = build([(ROOT_HEADERS, pnr_envelope("big@x"))]).rsplit(b"--b0und4ry--", 1)[0]
    head += b"--b0und4ry\r\n" + "\r\n".join(att_headers("big@x")).encode() + b"\r\n\r\n"

    def generate() -> Iterator[bytes]:
        yield head
        for _ in range(blocks):
            expected.update(block)
            yield block
        yield b"\r\n--b0und4ry--\r\n"

    tracemalloc.start()
    try:
        message = read_multipart(IterStream(generate()), ctype(), spool_dir=str(tmp_path))  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    part = message.attachments["big@x"]
    assert part.size == blocks * len(block)
    assert part.sha256 == expected.hexdigest()
    assert part.path is not None and os.path.getsize(part.path) == part.size
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak} bytes"
    message.discard()
