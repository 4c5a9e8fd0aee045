"""RegistryResponse / AdhocQueryResponse / RegistryErrorList, as the ebRS 3.0 schemas shape them.

Responses are written as text around stored fragments: a LeafClass answer of a thousand entries
is a concatenation, not a tree rebuilt node by node.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import quoteattr

from carnet.xds import vocabulary as v
from carnet.xds.errors import RegistryError


def status_of(errors: Iterable[RegistryError], partial: bool = False) -> str:
    errs = [e for e in errors if not e.warning]
    if not errs:
        return v.SUCCESS
    return v.PARTIAL_SUCCESS if partial else v.FAILURE


def error_list(errors: Iterable[RegistryError], location: str = "") -> str:
    items = list(errors)
    if not items:
        return ""
    out = [
        f'<rs:RegistryErrorList xmlns:rs="{v.RS}"'
        f' highestSeverity="{v.SEVERITY_ERROR if any(not e.warning for e in items) else v.SEVERITY_WARNING}">'
    ]
    for e in items:
        sev = v.SEVERITY_WARNING if e.warning else v.SEVERITY_ERROR
        out.append(
            f"<rs:RegistryError errorCode={quoteattr(str(e.code))} codeContext={quoteattr(e.context)}"
            f' location={quoteattr(e.location or location)} severity="{sev}"/>'
        )
    out.append("</rs:RegistryErrorList>")
    return "".join(out)


def registry_response(errors: Iterable[RegistryError] = (), partial: bool = False, location: str = "") -> str:
    items = list(errors)
    return (
        f'<rs:RegistryResponse xmlns:rs="{v.RS}" status="{status_of(items, partial)}">'
        f"{error_list(items, location)}</rs:RegistryResponse>"
    )


def adhoc_query_response(
    fragments: Iterable[str] = (), errors: Iterable[RegistryError] = (), location: str = ""
) -> str:
    items = list(errors)
    body = "".join(fragments)
    return (
        f'<query:AdhocQueryResponse xmlns:query="{v.QUERY}" xmlns:rs="{v.RS}" xmlns:rim="{v.RIM}"'
        f' status="{status_of(items)}">{error_list(items, location)}'
        f"<rim:RegistryObjectList>{body}</rim:RegistryObjectList></query:AdhocQueryResponse>"
    )


def object_ref(obj_id: str, home: str | None = None) -> str:
    home_attr = f" home={quoteattr(home)}" if home else ""
    return f'<rim:ObjectRef xmlns:rim="{v.RIM}" id={quoteattr(obj_id)}{home_attr}/>'
