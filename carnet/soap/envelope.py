"""SOAP 1.2 envelopes with WS-Addressing: read a request, write a response or a Fault.

XDS.b requires SOAP 1.2 and WS-Addressing (ITI TF-2x V.3). A response carries wsa:Action (the
request's action + "Response"), wsa:RelatesTo (the request's MessageID) and a fresh MessageID. A
SOAP Fault is reserved for SOAP-level failures (not an envelope, unknown action, security header
refused); everything about XDS content is a RegistryResponse with an IHE error code.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from lxml import etree

from carnet.xds import vocabulary as v
from carnet.xml import UnsafeXMLError, parse, qname

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


class SOAPFault(Exception):
    """A SOAP 1.2 Fault: code Sender/Receiver, optional subcode (QName text) and reason."""

    def __init__(self, reason: str, code: str = "Sender", subcode: str | None = None, http_status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.subcode = subcode
        self.http_status = http_status


@dataclass
class SOAPRequest:
    envelope: etree._Element
    body: etree._Element  # the first element child of soap:Body
    action: str | None
    message_id: str | None
    header: etree._Element | None
    soap11: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def read_envelope(data: bytes | etree._Element, http_action: str | None = None) -> SOAPRequest:
    try:
        root = data if isinstance(data, etree._Element) else parse(data)
    except UnsafeXMLError as exc:
        raise SOAPFault(f"the request is not acceptable XML: {exc}") from exc
    if root.tag == qname(v.SOAP11, "Envelope"):
        raise SOAPFault("SOAP 1.1 is not supported: XDS.b requires SOAP 1.2", subcode="VersionMismatch")
    if root.tag != qname(v.SOAP12, "Envelope"):
        raise SOAPFault(f"expected a SOAP 1.2 Envelope, got {root.tag}")
    header = root.find(qname(v.SOAP12, "Header"))
    body = root.find(qname(v.SOAP12, "Body"))
    if body is None:
        raise SOAPFault("the SOAP Envelope has no Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if not children:
        raise SOAPFault("the SOAP Body is empty")
    action = message_id = None
    if header is not None:
        a = header.find(qname(v.WSA, "Action"))
        m = header.find(qname(v.WSA, "MessageID"))
        action = a.text.strip() if a is not None and a.text else None
        message_id = m.text.strip() if m is not None and m.text else None
    # WS-Addressing is the XDS.b rule; an action in the Content-Type header is accepted as a fallback.
    return SOAPRequest(root, children[0], action or http_action, message_id, header)


def _header(action: str, relates_to: str | None, assertion: str | None = None) -> str:
    relates = f"<wsa:RelatesTo>{escape(relates_to)}</wsa:RelatesTo>" if relates_to else ""
    security = f'<wsse:Security xmlns:wsse="{WSSE}">{assertion}</wsse:Security>' if assertion else ""
    return (
        f'<soap:Header><wsa:Action soap:mustUnderstand="1">{escape(action)}</wsa:Action>'
        f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>{relates}"
        f"<wsa:To>http://www.w3.org/2005/08/addressing/anonymous</wsa:To>{security}</soap:Header>"
    )


def envelope(
    body_xml: str, action: str, relates_to: str | None = None, assertion: str | None = None
) -> bytes:
    """A SOAP 1.2 envelope with WS-Addressing, and the SAML ``assertion`` (XML) in WS-Security."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{v.SOAP12}" xmlns:wsa="{v.WSA}">'
        f"{_header(action, relates_to, assertion)}<soap:Body>{body_xml}</soap:Body></soap:Envelope>"
    ).encode()


def fault(f: SOAPFault, relates_to: str | None = None) -> bytes:
    sub = ""
    if f.subcode:
        # A subcode is a QName: WS-Security faults (XUA) need their prefix declared.
        ns = f' xmlns:wsse="{WSSE}"' if f.subcode.startswith("wsse:") else ""
        sub = f"<soap:Subcode><soap:Value{ns}>{escape(f.subcode)}</soap:Value></soap:Subcode>"
    body = (
        f"<soap:Fault><soap:Code><soap:Value>soap:{f.code}</soap:Value>{sub}</soap:Code>"
        f'<soap:Reason><soap:Text xml:lang="en">{escape(f.reason)}</soap:Text></soap:Reason></soap:Fault>'
    )
    return envelope(body, "http://www.w3.org/2005/08/addressing/soap/fault", relates_to)
