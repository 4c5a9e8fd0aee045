"""FHIR wire formats: JSON and XML in and out, chosen by ``_format``, ``Accept`` and ``Content-Type``.

Every resource is parsed into and written from the ``fhir.resources.R4B`` models (FHIR R4 content
parses with them; the library ships no R4 4.0.1 package). XML input goes through the project's
hardened lxml parser first (no DOCTYPE, hence no entities, no network) before the model reads it.
"""

from __future__ import annotations

import decimal
import functools
import json
import uuid
from typing import Any, Literal

import pydantic_core
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from fhir_core.fhirabstractmodel import FHIR_COMMENTS_FIELD_NAME, FHIRAbstractModel
from fhir_core.utils import get_base64_encoder, is_primitive_type
from lxml import etree
from pydantic import ValidationError

from carnet.fhir.outcome import FHIRError, Issue
from carnet.xml import UnsafeXMLError
from carnet.xml import parse as parse_xml

Format = Literal["json", "xml"]

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
CONTENT_TYPE = {"json": f"{FHIR_JSON}; charset=utf-8", "xml": f"{FHIR_XML}; charset=utf-8"}

# What clients in the field send: fhirpy posts application/json, older ones the DSTU2 names.
_JSON_TYPES = {FHIR_JSON, "application/json", "application/json+fhir", "text/json", "json"}
_XML_TYPES = {FHIR_XML, "application/xml", "application/xml+fhir", "text/xml", "xml"}
_FHIR_ONLY_TYPES = {FHIR_JSON, FHIR_XML, "application/json+fhir", "application/xml+fhir"}


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _format_of(media: str) -> Format | None:
    if media in _JSON_TYPES:
        return "json"
    if media in _XML_TYPES:
        return "xml"
    return None


def response_format(format_param: str | None, accept: str | None) -> Format:
    """The format to answer in: ``_format`` wins over ``Accept``; JSON when neither says."""
    if format_param:
        fmt = _format_of(_media(format_param.replace(" ", "+")))
        if fmt is None:
            raise FHIRError.of(406, "not-supported", f"_format '{format_param}' is neither JSON nor XML")
        return fmt
    if accept:
        for item in _accept_items(accept):
            fmt = _format_of(item)
            if fmt is not None:
                return fmt
    return "json"


def _accept_items(accept: str) -> list[str]:
    """Accept media ranges by decreasing q (stable for equal q)."""
    items: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if fields[0]:
            items.append((-q, i, fields[0].lower()))
    return [m for _, _, m in sorted(items)]


def accepts_fhir(format_param: str | None, accept: str | None) -> bool:
    """Does a Binary read ask for the FHIR resource rather than the document's bytes? Only
    ``_format`` or a FHIR media type says so: ``application/json`` or ``text/xml`` may well be the
    document's own type (a CDA is text/xml), which ITI-68 serves as is."""
    if format_param:
        return True
    return bool(accept) and any(_media(m) in _FHIR_ONLY_TYPES for m in _accept_items(accept or ""))


def parse_resource(body: bytes, content_type: str | None) -> Resource:
    """Read a request body as a FHIR resource of any type (type checks are the caller's)."""
    fmt = _format_of(_media(content_type or ""))
    if fmt is None:
        raise FHIRError.of(
            415,
            "not-supported",
            f"Content-Type '{content_type}' is not a FHIR format: send {FHIR_JSON} or {FHIR_XML}",
        )
    if not body:
        raise FHIRError.of(400, "structure", "the request has no body")
    if fmt == "json":
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FHIRError.of(400, "structure", f"the body is not JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise FHIRError.of(400, "structure", "the body is not a FHIR resource (no resourceType)")
        return _validate(data["resourceType"], lambda cls: cls.model_validate(data))
    try:
        root = parse_xml(body)
    except UnsafeXMLError as exc:
        raise FHIRError.of(400, "structure", f"the body is not acceptable XML: {exc}") from exc
    name = root.tag.rsplit("}", 1)[-1] if isinstance(root.tag, str) else ""
    if not root.tag.startswith("{http://hl7.org/fhir}"):
        raise FHIRError.of(400, "structure", "the XML body is not in the FHIR namespace http://hl7.org/fhir")
    return _validate(name, lambda cls: cls.model_validate_xml(body))


def _validate(resource_type: str, build: Any) -> Resource:
    try:
        cls = get_fhir_model_class(resource_type)
    except (KeyError, ValueError) as exc:
        raise FHIRError.of(400, "not-supported", f"unknown FHIR resource type '{resource_type}'") from exc
    try:
        resource: Resource = build(cls)
    except ValidationError as exc:
        raise FHIRError(400, [_issue(e) for e in exc.errors()[:50]]) from exc
    except (KeyError, ValueError, TypeError) as exc:
        # fhir.resources raises KeyError for an unknown resourceType nested in a Bundle entry.
        raise FHIRError.of(400, "structure", f"the {resource_type} does not parse as FHIR R4: {exc}") from exc
    return resource


def _issue(err: Any) -> Issue:
    path = ".".join(str(p) for p in err.get("loc", ()) if not str(p).startswith("function-"))
    return Issue("structure", f"{path}: {err.get('msg')}", expression=(path,) if path else ())


def render(resource: Resource, fmt: Format) -> bytes:
    if fmt == "xml":
        return xml_bytes(resource)
    return pydantic_core.to_json(json_value(resource))


# JSON output. fhir_core serialises through a Python wrap-serializer that re-derives each class's
# element order, aliases and primitive-ness for every element of every instance: 2 ms per
# DocumentReference, two thirds of an ITI-67 search. The writer below walks the same models in the
# same order with those facts computed once per class, and leaves the leaf values (dates, decimals)
# to pydantic_core's own JSON encoder, as fhir_core does; tests/test_fhir_formats.py holds it equal
# to ``model_dump_json`` on every MHD and PDSm example.


@functools.cache
def _plan(cls: type[FHIRAbstractModel]) -> tuple[tuple[str, str, bool, Any, str | None, str | None], ...]:
    """Per element, in FHIR order: field name, JSON name, primitive?, base64 encoder, and for
    primitives the ``_name`` extension sibling (field name, JSON name)."""
    aliases = cls.get_alias_mapping()
    plan = []
    for element in cls.elements_sequence():
        key = aliases[element]
        info = cls.model_fields[key]
        primitive = is_primitive_type(info)
        ext_key = f"{key}__ext"
        ext = cls.model_fields.get(ext_key) if primitive else None
        plan.append(
            (
                key,
                info.alias or key,
                primitive,
                get_base64_encoder(info) if primitive else None,
                ext_key if ext is not None else None,
                (ext.alias or ext_key) if ext is not None else None,
            )
        )
    return tuple(plan)


def json_value(model: FHIRAbstractModel) -> dict[str, Any]:
    """The FHIR JSON object of ``model`` as Python values (what ``model_dump(mode="python")`` gives)."""
    cls = type(model)
    out: dict[str, Any] = {}
    if cls.has_resource_base():
        out["resourceType"] = cls.__resource_type__
    values = model.__dict__
    for key, name, primitive, encoder, ext_key, ext_name in _plan(cls):
        value = values.get(key)
        if value is not None and value != []:
            out[name] = _primitive(value, encoder) if primitive else _complex(value)
        if ext_key is not None:
            ext = values.get(ext_key)
            if ext:
                out[ext_name] = _complex(ext)  # type: ignore[index]
    comments = values.get(FHIR_COMMENTS_FIELD_NAME)
    if comments is not None:
        out[FHIR_COMMENTS_FIELD_NAME] = comments
    return out


def _complex(value: Any) -> Any:
    if isinstance(value, list):
        return [_complex(v) for v in value]
    if isinstance(value, FHIRAbstractModel):
        return json_value(value)
    return value


def _primitive(value: Any, encoder: Any) -> Any:
    if isinstance(value, list):
        return [_primitive(v, encoder) for v in value]
    if encoder is not None and isinstance(value, bytes | bytearray):
        return encoder.encode(value)
    if isinstance(value, uuid.UUID):
        return f"urn:uuid:{value}"
    if isinstance(value, decimal.Decimal):
        exp = value.as_tuple().exponent
        if value.is_finite() and value == value.to_integral_value() and isinstance(exp, int) and exp >= 0:
            return int(value)
        return float(value)
    return value


# XML output. fhir_core's XML writer resolves each element's type by importing its class by name,
# for every element (20 DocumentReferences: 390 ms). Carnet writes the XML from the JSON form by the
# rules of FHIR's two representations (R4 §2.6 XML, §2.6.2 JSON): members in order; a primitive is
# <name value=".."/> carrying its ``_name`` sibling's id and extensions; ``id`` of an element and
# ``url`` of an extension are attributes; a nested resource is wrapped in an element named after
# its type; Narrative.div is XHTML. tests/test_fhir_formats.py holds it equal to fhir_core's.

FHIR_NS = "http://hl7.org/fhir"
_EXTENSIONS = ("extension", "modifierExtension")


def xml_bytes(resource: Resource) -> bytes:
    root = _resource_xml(pydantic_core.to_jsonable_python(json_value(resource)))
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def _resource_xml(data: dict[str, Any]) -> etree._Element:
    el = etree.Element(f"{{{FHIR_NS}}}{data['resourceType']}", nsmap={None: FHIR_NS})
    _members_xml(el, data, resource=True, extension=False)
    return el


def _members_xml(parent: etree._Element, data: dict[str, Any], *, resource: bool, extension: bool) -> None:
    for name, value in data.items():
        if name == "resourceType" or name == FHIR_COMMENTS_FIELD_NAME:
            continue
        if name.startswith("_"):
            if name[1:] not in data:  # an extension without a value; else written with the value
                _primitive_xml(parent, name[1:], None, value)
            continue
        if not resource and name == "id" or extension and name == "url":
            parent.set(name, _text(value))
            continue
        if name == "div" and isinstance(value, str):
            parent.append(parse_xml(value.encode()))
            continue
        ext = data.get(f"_{name}")
        if isinstance(value, list):
            exts = ext if isinstance(ext, list) else [None] * len(value)
            for item, item_ext in zip(value, exts, strict=False):
                _member_xml(parent, name, item, item_ext)
        else:
            _member_xml(parent, name, value, ext)


def _member_xml(parent: etree._Element, name: str, value: Any, ext: Any) -> None:
    if isinstance(value, dict):
        child = etree.SubElement(parent, f"{{{FHIR_NS}}}{name}")
        if "resourceType" in value:
            child.append(_resource_xml(value))
        else:
            _members_xml(child, value, resource=False, extension=name in _EXTENSIONS)
    else:
        _primitive_xml(parent, name, value, ext)


def _primitive_xml(parent: etree._Element, name: str, value: Any, ext: Any) -> None:
    child = etree.SubElement(parent, f"{{{FHIR_NS}}}{name}")
    if isinstance(ext, dict):
        _members_xml(child, ext, resource=False, extension=False)
    if value is not None:
        child.set("value", _text(value))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
