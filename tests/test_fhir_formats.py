"""FHIR output: Carnet's writers (``carnet.fhir.formats.render``) give exactly what fhir.resources' own
``model_dump_json`` and ``model_dump_xml`` give (same members, same order, same values) on every
resource of the MHD and PDSm packages, on the resources Carnet itself emits, and on the corner cases
of the formats."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource
from lxml import etree

from carnet.fhir.formats import render
from tests.conftest import FIXTURES
from tests.fhir_helpers import (
    CCAM,
    FHIR_JSON,
    Doc,
    known_patients,
    patient_token,
    post_bundle,
    provide_bundle,
)

PACKAGES = [FIXTURES / "mhd" / "package", FIXTURES / "pdsm"]


def _examples() -> list[Path]:
    return sorted(p for d in PACKAGES if d.is_dir() for p in d.rglob("*.json") if p.name != "package.json")


def _parsed(path: Path) -> Resource | None:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "resourceType" not in data:
        return None
    try:
        resource: Resource = get_fhir_model_class(data["resourceType"]).model_validate(data)
    except Exception:  # noqa: BLE001 - an example fhir.resources cannot read has nothing to compare
        return None
    return resource


def _same_as_fhir_resources(resource: Resource) -> None:
    # Text equality of the parsed forms compares member order too (json.loads keeps it).
    ours = json.dumps(json.loads(render(resource, "json")))
    theirs = json.dumps(json.loads(resource.model_dump_json()))
    assert ours == theirs
    # XML: what fhir.resources reads back from Carnet's XML is the resource it was written from.
    # Not compared with fhir_core's own XML text, which writes "+00:00" where JSON has "Z" and
    # leaves out the id attributes of elements; its reader ignores them too, hence _comparable.
    back = type(resource).model_validate_xml(render(resource, "xml"))
    assert _comparable(json.loads(back.model_dump_json())) == _comparable(json.loads(theirs))


def _comparable(value: Any) -> Any:
    """Narratives as XHTML trees (their text comes back re-serialised: &nbsp;, <td/>); element ids
    (not resource ids), the ``_name`` siblings they leave empty, and fhir.resources' non-FHIR
    ``fhir_comments`` left out."""
    if isinstance(value, dict):
        out = {
            k: _tree(v) if k == "div" and isinstance(v, str) else _comparable(v)
            for k, v in value.items()
            if (k != "id" or "resourceType" in value) and k != "fhir_comments"
        }
        return {k: v for k, v in out.items() if not (k.startswith("_") and not any(v))}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _tree(xml: str) -> tuple[Any, ...]:
    def walk(el: Any) -> tuple[Any, ...]:
        return (el.tag, sorted(el.attrib.items()), el.text or "", el.tail or "", [walk(c) for c in el])

    return walk(etree.fromstring(xml.encode()))


def test_every_package_example_renders_as_fhir_resources_does() -> None:
    examples = _examples()
    if not examples:
        pytest.skip("MHD/PDSm packages not in ../shared/fixtures")
    compared = 0
    for path in examples:
        resource = _parsed(path)
        if resource is not None:
            _same_as_fhir_resources(resource)
            compared += 1
    # Both packages: 62 MHD examples and PDSm's; most of them read as R4B.
    assert compared >= 80, compared


def test_corner_cases_of_the_format() -> None:
    patient = Patient.model_validate(
        {
            "resourceType": "Patient",
            "id": "p1",
            "birthDate": "1980-02",
            "_birthDate": {"extension": [{"url": "http://example.org/precision", "valueCode": "month"}]},
            "name": [{"given": ["Ana", "Maria"], "_given": [None, {"id": "g2"}], "family": "Test"}],
            "active": False,
            "multipleBirthInteger": 0,
            "fhir_comments": ["kept as fhir.resources keeps it"],
        }
    )
    _same_as_fhir_resources(patient)
    xml = render(patient, "xml").decode()
    assert '<given value="Ana"/><given id="g2" value="Maria"/>' in xml
    assert '<birthDate value="1980-02"><extension url="http://example.org/precision">' in xml
    _same_as_fhir_resources(Binary(contentType="application/pdf", data=base64.b64encode(b"%PDF-1.4\x00\xff")))
    observation = Observation.model_validate(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "effectiveDateTime": "2024-01-15T10:30:00.123+01:00",
            "valueQuantity": {"value": Decimal("4.50"), "unit": "mmol/L"},
            "component": [{"code": {"text": "n"}, "valueQuantity": {"value": 3}}],
        }
    )
    _same_as_fhir_resources(observation)
    assert json.loads(render(observation, "json"))["valueQuantity"]["value"] == 4.5


def test_what_carnet_emits_renders_as_fhir_resources_does(client, engine) -> None:  # type: ignore[no-untyped-def]
    known_patients(engine, 1)
    docs = [Doc(events=[(CCAM, "AAA")], related=[("urn:oid:1.2.3", "x1", "ACSN")]), Doc(period=(None, None))]
    assert post_bundle(client, provide_bundle(1, docs)).status_code == 200
    answer = client.get(
        f"/fhir/DocumentReference?patient.identifier={patient_token(1)}", headers={"Accept": FHIR_JSON}
    )
    bundle = Bundle.model_validate_json(answer.data)
    assert bundle.total == 2
    _same_as_fhir_resources(bundle)
    assert json.loads(render(bundle, "json")) == answer.json
