"""Test helpers that speak XDS on the wire: SOAP envelopes, AdhocQueryRequests, response reading."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from carnet.xds import vocabulary as v

NS = {
    "rim": v.RIM,
    "rs": v.RS,
    "query": v.QUERY,
    "lcm": v.LCM,
    "xdsb": v.XDSB,
    "soap": v.SOAP12,
    "wsa": v.WSA,
}


def envelope(action: str, body: str | bytes) -> bytes:
    if isinstance(body, bytes):
        body = body.decode()
    if body.startswith("<?xml"):
        body = body[body.index("?>") + 2 :]
    return (
        f'<soap:Envelope xmlns:soap="{v.SOAP12}" xmlns:wsa="{v.WSA}"><soap:Header>'
        f"<wsa:Action>{action}</wsa:Action><wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>"
        f"</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def post(client, path: str, action: str, body: str | bytes) -> etree._Element:  # type: ignore[no-untyped-def]
    resp = client.post(path, data=envelope(action, body), content_type="application/soap+xml; charset=UTF-8")
    root = etree.fromstring(resp.data)
    return root.find(f"{{{v.SOAP12}}}Body")[0]


def register(client, submit_objects_request: str | bytes) -> etree._Element:  # type: ignore[no-untyped-def]
    return post(client, "/xds/registry", v.ACTION_ITI42, submit_objects_request)


def adhoc_query(query_id: str, params: list[tuple[str, list[str]]], return_type: str = "LeafClass") -> str:
    slots = "".join(
        f"<rim:Slot name={quoteattr(name)}><rim:ValueList>"
        + "".join(f"<rim:Value>{escape(val)}</rim:Value>" for val in values)
        + "</rim:ValueList></rim:Slot>"
        for name, values in params
    )
    return (
        f'<query:AdhocQueryRequest xmlns:query="{v.QUERY}" xmlns:rim="{v.RIM}">'
        f'<query:ResponseOption returnComposedObjects="true" returnType="{return_type}"/>'
        f'<rim:AdhocQuery id="{query_id}">{slots}</rim:AdhocQuery></query:AdhocQueryRequest>'
    )


def query(
    client,
    query_id: str,
    params: list[tuple[str, list[str]]],  # type: ignore[no-untyped-def]
    return_type: str = "LeafClass",
) -> QueryAnswer:
    return QueryAnswer.read(
        post(client, "/xds/registry", v.ACTION_ITI18, adhoc_query(query_id, params, return_type))
    )


@dataclass
class QueryAnswer:
    status: str
    errors: list[tuple[str, str]] = field(default_factory=list)
    documents: list[etree._Element] = field(default_factory=list)
    submission_sets: list[etree._Element] = field(default_factory=list)
    folders: list[etree._Element] = field(default_factory=list)
    associations: list[etree._Element] = field(default_factory=list)
    object_refs: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, el: etree._Element) -> QueryAnswer:
        ans = cls(el.get("status", "").rsplit(":", 1)[-1])
        ans.errors = [(e.get("errorCode"), e.get("codeContext")) for e in el.iter(f"{{{v.RS}}}RegistryError")]
        rol = el.find(f"{{{v.RIM}}}RegistryObjectList")
        for obj in rol if rol is not None else []:
            if obj.tag == f"{{{v.RIM}}}ExtrinsicObject":
                ans.documents.append(obj)
            elif obj.tag == f"{{{v.RIM}}}RegistryPackage":
                schemes = {
                    e.get("identificationScheme") for e in obj.findall(f"{{{v.RIM}}}ExternalIdentifier")
                }
                (ans.submission_sets if v.SS_UNIQUE_ID in schemes else ans.folders).append(obj)
            elif obj.tag == f"{{{v.RIM}}}Association":
                ans.associations.append(obj)
            elif obj.tag == f"{{{v.RIM}}}ObjectRef":
                ans.object_refs.append(obj.get("id"))
        return ans

    @staticmethod
    def name(obj: etree._Element) -> str | None:
        ls = obj.find(f"{{{v.RIM}}}Name/{{{v.RIM}}}LocalizedString")
        return ls.get("value") if ls is not None else None

    def ids(self, kind: str) -> list[str]:
        return [o.get("id") for o in getattr(self, kind)]


def response_status(el: etree._Element) -> tuple[str, list[tuple[str, str]]]:
    rr = el if el.tag == f"{{{v.RS}}}RegistryResponse" else el.find(f".//{{{v.RS}}}RegistryResponse")
    errors = [(e.get("errorCode"), e.get("codeContext")) for e in rr.iter(f"{{{v.RS}}}RegistryError")]
    return rr.get("status", "").rsplit(":", 1)[-1], errors
