"""The one hardened XML parser every inbound document goes through.

No DTD, no entity expansion, no network, libxml2's size guards kept on (no ``huge_tree``);
a DOCTYPE is refused outright, since no IHE message carries one and it is the door to XXE.
"""

from __future__ import annotations

import threading

from lxml import etree

MAX_XML_BYTES = 64 * 1024 * 1024


class UnsafeXMLError(ValueError):
    """The input is not well-formed XML, carries a DOCTYPE, or exceeds a limit."""


_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers are not thread-safe: one per thread.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=False,
            remove_pis=False,
        )
        _local.parser = parser
    return parser


def parse(data: bytes) -> etree._Element:
    """Parse bytes into an element tree, or raise UnsafeXMLError with a precise reason."""
    if len(data) > MAX_XML_BYTES:
        raise UnsafeXMLError(f"XML document of {len(data)} bytes exceeds the {MAX_XML_BYTES}-byte limit")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXMLError(f"not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        raise UnsafeXMLError("DOCTYPE declarations are not accepted")
    return root


def qname(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def localname(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]
