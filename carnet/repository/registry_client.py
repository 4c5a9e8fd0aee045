"""A stand-alone repository's calls to its remote Document Registry (CARNET_REMOTE_REGISTRY_URL).

Made on the caller's behalf: the caller's XUA assertion goes along (XUA propagation), and the
registry, which holds the dossiers and the metadata, decides — ITI-42 for a submission, GetDocuments
(ITI-18) for which documents a retrieve may serve. The registry's RegistryErrors come back to the
caller unchanged; a registry that cannot be reached is XDSRegistryNotAvailable.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from xml.sax.saxutils import escape

from lxml import etree

from carnet.soap.envelope import envelope
from carnet.xds import ebrim
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, RegistryError, XDSError
from carnet.xds.model import Submission
from carnet.xml import UnsafeXMLError, parse, qname

TIMEOUT_S = 60
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


def register_remote(url: str, sub: Submission, assertion: str | None = None) -> list[RegistryError]:
    """Send ITI-42; return the registry's warnings, raise XDSError with its errors on Failure.

    ``assertion``: the ITI-41 caller's XUA assertion, presented to the registry unchanged, so the
    registry decides and audits the submission as the caller's (without it, as an anonymous one).
    """
    body = etree.tostring(ebrim.render_submit_objects_request(sub), encoding="unicode")
    root = _call(url, v.ACTION_ITI42, body, assertion)
    rr = root.find(f".//{qname(v.RS, 'RegistryResponse')}")
    if rr is None:
        reason = root.findtext(f".//{{{v.SOAP12}}}Text") or "no RegistryResponse"
        raise XDSError.of(ErrorCode.REGISTRY_NOT_AVAILABLE, f"registry {url} refused the request: {reason}")
    errors = _errors(rr)
    if rr.get("status") != v.SUCCESS:
        raise XDSError(errors or [RegistryError(ErrorCode.REGISTRY_ERROR, "the registry answered Failure")])
    return errors


def retrieve_refusals(url: str, unique_ids: list[str], assertion: str) -> list[RegistryError]:
    """For a stand-alone repository's ITI-43: ask the registry, as the caller (GetDocuments with the
    caller's assertion), which of these documents the caller may see; one LocalPolicyRestrictionError
    per document it does not show (the registry holds the dossiers and the documents' metadata)."""
    if not unique_ids:
        return []
    values = "(" + ",".join(f"'{u}'" for u in unique_ids) + ")"
    body = (
        f'<query:AdhocQueryRequest xmlns:query="{v.QUERY}" xmlns:rim="{v.RIM}">'
        '<query:ResponseOption returnType="LeafClass" returnComposedObjects="true"/>'
        f'<rim:AdhocQuery id="{GET_DOCUMENTS}"><rim:Slot name="$XDSDocumentEntryUniqueId">'
        f"<rim:ValueList><rim:Value>{escape(values)}</rim:Value></rim:ValueList></rim:Slot>"
        "</rim:AdhocQuery></query:AdhocQueryRequest>"
    )
    root = _call(url, v.ACTION_ITI18, body, assertion)
    answer = root.find(f".//{qname(v.QUERY, 'AdhocQueryResponse')}")
    if answer is None:
        reason = root.findtext(f".//{{{v.SOAP12}}}Text") or "no AdhocQueryResponse"
        why = f"the registry {url} refused the query for this document: {reason}"
        return [RegistryError(ErrorCode.LOCAL_POLICY_RESTRICTION, why, u) for u in unique_ids]
    if answer.get("status") != v.SUCCESS:
        first = (_errors(answer) or [RegistryError(ErrorCode.REGISTRY_ERROR, "Failure")])[0]
        return [RegistryError(first.code, first.context, u) for u in unique_ids]
    shown = {
        e.get("value")
        for e in answer.iter(qname(v.RIM, "ExternalIdentifier"))
        if e.get("identificationScheme") == v.DE_UNIQUE_ID
    }
    return [
        RegistryError(
            ErrorCode.LOCAL_POLICY_RESTRICTION, f"the registry does not show document {u} to the caller", u
        )
        for u in unique_ids
        if u not in shown
    ]


def _errors(el: etree._Element) -> list[RegistryError]:
    return [
        RegistryError(
            e.get("errorCode") or ErrorCode.REGISTRY_ERROR,
            e.get("codeContext") or "",
            e.get("location") or "",
            warning=(e.get("severity") == v.SEVERITY_WARNING),
        )
        for e in el.iter(qname(v.RS, "RegistryError"))
    ]


def _call(url: str, action: str, body: str, assertion: str | None) -> etree._Element:
    """POST one SOAP 1.2 request; the answer's envelope (a Fault included). Unreachable or not SOAP:
    XDSRegistryNotAvailable."""
    data = envelope(body, action, assertion=assertion)
    if not url.startswith(("http://", "https://")):
        raise XDSError.of(ErrorCode.REGISTRY_NOT_AVAILABLE, f"registry URL {url!r} is not http(s)")
    req = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=data,
        method="POST",
        headers={"Content-Type": f'application/soap+xml; charset=UTF-8; action="{action}"'},
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 - scheme checked above
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise XDSError.of(
            ErrorCode.REGISTRY_NOT_AVAILABLE, f"registry {url} could not be reached: {exc}"
        ) from exc
    try:
        return parse(raw)
    except UnsafeXMLError as exc:
        raise XDSError.of(
            ErrorCode.REGISTRY_NOT_AVAILABLE, f"registry {url} answered no SOAP message"
        ) from exc
