"""A SOAP 1.2 + WS-Addressing client over HTTP, as an XDS.b test tool needs one.

Requests go out as plain SOAP, or as MTOM/XOP when they carry documents (ITI-41, like the NIST
engine); responses are read whether plain or MTOM (ITI-43), with every ``xop:Include`` resolved
to the bytes of its part. Nothing here knows the server: the runner talks to any endpoint.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

from lxml import etree

from carnet.conformance.prepare import note_exchange
from carnet.soap import mtom
from carnet.xds import vocabulary as v
from carnet.xml import UnsafeXMLError, parse, qname

TIMEOUT_S = 120


@dataclass
class Exchange:
    """One request and its answer, kept whole for the report."""

    url: str
    action: str
    request: str
    http_status: int = 0
    response: str = ""
    body: etree._Element | None = None
    fault: str | None = None
    transport_error: str | None = None
    documents: dict[etree._Element, bytes] = field(default_factory=dict)
    content_types: dict[etree._Element, str | None] = field(default_factory=dict)


def envelope(body: etree._Element, action: str, to: str) -> bytes:
    env = etree.Element(qname(v.SOAP12, "Envelope"), nsmap={"soapenv": v.SOAP12, "wsa": v.WSA})
    header = etree.SubElement(env, qname(v.SOAP12, "Header"))
    act = etree.SubElement(header, qname(v.WSA, "Action"))
    act.set(qname(v.SOAP12, "mustUnderstand"), "1")
    act.text = action
    etree.SubElement(header, qname(v.WSA, "MessageID")).text = f"urn:uuid:{uuid.uuid4()}"
    reply = etree.SubElement(header, qname(v.WSA, "ReplyTo"))
    etree.SubElement(reply, qname(v.WSA, "Address")).text = "http://www.w3.org/2005/08/addressing/anonymous"
    etree.SubElement(header, qname(v.WSA, "To")).text = to
    etree.SubElement(env, qname(v.SOAP12, "Body")).append(body)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def call(
    url: str,
    action: str,
    body: etree._Element,
    documents: list[tuple[etree._Element, bytes, str]] | None = None,
) -> Exchange:
    """POST ``body`` to ``url``; ``documents`` are (xdsb:Document element, bytes, mime type)
    sent as MTOM parts referenced from the element by xop:Include."""
    attachments: list[tuple[str, str, mtom.Part | bytes]] = []
    for i, (el, data, mime) in enumerate(documents or []):
        cid = f"doc{i}.{uuid.uuid4().hex}@carnet.conformance"
        el.text = None
        for child in list(el):
            el.remove(child)
        etree.SubElement(el, qname(v.XOP, "Include"), nsmap={"xop": v.XOP}, href=mtom.cid_url(cid))
        attachments.append((cid, mime or "application/octet-stream", data))
    soap = envelope(body, action, url)
    shown = soap.decode("utf-8", errors="replace")
    if attachments:
        ctype, chunks = mtom.write_multipart(soap, attachments, action=action)
        data = b"".join(chunks)
        shown += "".join(
            f"\n[MTOM part <{cid}> {mime}, {len(content) if isinstance(content, bytes) else 0} bytes]"
            for cid, mime, content in attachments
        )
    else:
        ctype, data = f'application/soap+xml; charset=UTF-8; action="{action}"', soap
    exchange = Exchange(url, action, shown)
    if not url.startswith(("http://", "https://")):
        exchange.transport_error = f"endpoint {url!r} is not an http(s) URL"
        return exchange
    req = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=data, method="POST", headers={"Content-Type": ctype}
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 - scheme checked
            exchange.http_status = resp.status
            raw, resp_type = resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        exchange.http_status = exc.code
        raw, resp_type = exc.read(), exc.headers.get("Content-Type", "")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        exchange.transport_error = f"{url} could not be reached: {exc}"
        return exchange
    _read_response(exchange, raw, resp_type or "")
    note_exchange()
    return exchange


def _read_response(exchange: Exchange, raw: bytes, content_type: str) -> None:
    try:
        if mtom.is_multipart(content_type):
            message = mtom.read_multipart(io.BytesIO(raw), content_type)
            root_bytes = message.root.read()
            env = parse(root_bytes)
            parts = mtom.resolve_xop(env, message)
            exchange.documents = {el: part.read() for el, part in parts.items()}
            exchange.content_types = {el: part.content_type for el, part in parts.items()}
            exchange.response = root_bytes.decode("utf-8", errors="replace") + "".join(
                f"\n[MTOM part {part.content_type}, {part.size} bytes]" for part in parts.values()
            )
        else:
            env = parse(raw)
            exchange.response = raw.decode("utf-8", errors="replace")
    except (UnsafeXMLError, mtom.MTOMError) as exc:
        exchange.response = raw[:20000].decode("utf-8", errors="replace")
        exchange.transport_error = f"HTTP {exchange.http_status}: the answer is not a SOAP message: {exc}"
        return
    body = env.find(qname(v.SOAP12, "Body"))
    if env.tag != qname(v.SOAP12, "Envelope") or body is None:
        exchange.transport_error = f"HTTP {exchange.http_status}: the answer is not a SOAP 1.2 envelope"
        return
    first = next((c for c in body if isinstance(c.tag, str)), None)
    if first is not None and first.tag == qname(v.SOAP12, "Fault"):
        reason = first.findtext(f".//{{{v.SOAP12}}}Text") or "SOAP Fault"
        exchange.fault = reason
    exchange.body = first
