"""Refresh the profile files from an ANS NOS export (``carnet profiles import DIR...``).

The ANS publishes its terminologies (NOS, "Nomenclatures des Objets de Santé") as IHE SVS
``RetrieveValueSetResponse`` XML files (the ``jeuxDeValeurs`` folder of the CI-SIS packages) and
as FHIR ValueSet / ConceptMap JSON resources. ``profiles/nos.json`` lists the resources Carnet
uses, each by the identifier the export carries (the value set OID, the concept map URL); the
import finds them in the given directories, translates FHIR code-system URLs into the OIDs XDS
metadata uses (``profiles/codesystems.json``), and writes one file per resource in Carnet's own
format. Value sets the catalogue defines from a concept map (J66 is the source side of ASS_X16)
are rebuilt from it. A resource the export lacks is left as it is and reported.

Everything is read and checked before anything is written: an export with a code system that
has no OID in the table, or a malformed file Carnet needs, changes nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from carnet.profiles.terminology import (
    CodeSystem,
    Concept,
    ConceptMap,
    Mapping,
    ProfileDataError,
    ValueSet,
    read_code_systems,
    read_concept_map,
)

SVS = "urn:ihe:iti:svs:2008"


class NosImportError(ProfileDataError):
    """The export cannot be imported; nothing was written."""


@dataclass
class ImportReport:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class _Found:
    """A resource read from the export, before translation."""

    kind: str  # "svs", "fhir-valueset", "fhir-conceptmap"
    file: Path
    data: Any


def _scan(directories: list[Path]) -> tuple[dict[str, _Found], dict[str, _Found]]:
    """Index the export: value sets by OID and by URL, concept maps by URL."""
    value_sets: dict[str, _Found] = {}
    concept_maps: dict[str, _Found] = {}
    for directory in directories:
        if not directory.is_dir():
            raise NosImportError(f"{directory} is not a directory")
        for path in sorted(directory.rglob("*")):
            if not path.is_file() or path.stat().st_size == 0:
                continue  # the ANS packages ship a few empty files (MediaType.xml, ...)
            if path.suffix.lower() == ".xml":
                _scan_svs(path, value_sets)
            elif path.suffix.lower() == ".json":
                _scan_fhir(path, value_sets, concept_maps)
    return value_sets, concept_maps


def _scan_svs(path: Path, value_sets: dict[str, _Found]) -> None:
    try:
        root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    except etree.XMLSyntaxError:
        return  # not every XML file of a package is a value set
    vs = root.find(f"{{{SVS}}}ValueSet") if root.tag == f"{{{SVS}}}RetrieveValueSetResponse" else None
    if vs is not None and vs.get("id"):
        value_sets.setdefault(vs.get("id", ""), _Found("svs", path, vs))


def _scan_fhir(path: Path, value_sets: dict[str, _Found], concept_maps: dict[str, _Found]) -> None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return
    if not isinstance(raw, dict):
        return
    if raw.get("resourceType") == "ValueSet":
        found = _Found("fhir-valueset", path, raw)
        identifiers = raw.get("identifier") or []
        if isinstance(identifiers, dict):
            identifiers = [identifiers]
        for ident in identifiers:
            value = str(ident.get("value", ""))
            if value.startswith("urn:oid:"):
                value_sets.setdefault(value[len("urn:oid:") :], found)
        if raw.get("url"):
            value_sets.setdefault(raw["url"], found)
    elif raw.get("resourceType") == "ConceptMap" and raw.get("url"):
        concept_maps.setdefault(raw["url"], _Found("fhir-conceptmap", path, raw))


class _Systems:
    """FHIR code-system URL -> the OID (or 'URN'/'ASTM') XDS uses, from codesystems.json."""

    def __init__(self, systems: list[CodeSystem]):
        self.systems = systems
        self.unknown: set[str] = set()

    def oid(self, url: str) -> str:
        for cs in self.systems:
            if url == cs.url or url in cs.aliases:
                return cs.oid
        self.unknown.add(url)
        return url


def _svs_value_set(entry: dict[str, str], found: _Found) -> ValueSet:
    vs = found.data
    concepts = [
        Concept(c.get("code", ""), c.get("codeSystem", ""), c.get("displayName", ""))
        for c in vs.iter(f"{{{SVS}}}Concept")
    ]
    if not concepts:
        raise NosImportError(f"{found.file.name}: value set {entry['id']} has no Concept")
    return ValueSet(
        id=entry["id"],
        name=entry["name"],
        oid=entry.get("oid") or vs.get("id"),
        url=vs.get("urlFichier") or None,
        version=vs.get("dateMaj") or None,
        source=f"SVS {found.file.name}",
        concepts=concepts,
    )


def _fhir_value_set(entry: dict[str, str], found: _Found, systems: _Systems) -> ValueSet:
    raw = found.data
    concepts: list[Concept] = []
    for include in (raw.get("compose") or {}).get("include", []):
        if not include.get("concept"):
            raise NosImportError(
                f"{found.file.name}: value set {entry['id']} includes all of {include.get('system')}; "
                "only enumerated value sets can be imported"
            )
        scheme = systems.oid(include.get("system", ""))
        concepts += [Concept(c["code"], scheme, c.get("display", "")) for c in include["concept"]]
    if not concepts:
        raise NosImportError(f"{found.file.name}: value set {entry['id']} has no concept")
    return ValueSet(
        id=entry["id"],
        name=entry["name"],
        oid=entry.get("oid"),
        url=raw.get("url"),
        version=raw.get("version"),
        source=f"FHIR {found.file.name}",
        concepts=concepts,
    )


def _fhir_concept_map(entry: dict[str, str], found: _Found, systems: _Systems) -> ConceptMap:
    raw = found.data
    mappings: list[Mapping] = []
    for group in raw.get("group", []):
        source_scheme = systems.oid(group.get("source", ""))
        target_scheme = systems.oid(group.get("target", ""))
        for element in group.get("element", []):
            for target in element.get("target", []):
                mappings.append(
                    Mapping(
                        Concept(element["code"], source_scheme, element.get("display", "")),
                        Concept(target["code"], target_scheme, target.get("display", "")),
                        target.get("equivalence", ""),
                        target.get("comment", ""),
                    )
                )
    if not mappings:
        raise NosImportError(f"{found.file.name}: concept map {entry['id']} has no mapping")
    return ConceptMap(
        id=entry["id"],
        name=raw.get("name") or entry["name"],
        url=raw["url"],
        version=raw.get("version"),
        source=f"FHIR {found.file.name}",
        mappings=mappings,
    )


def _derived(entry: dict[str, Any], maps: dict[str, ConceptMap], sets: list[ValueSet]) -> ValueSet | None:
    rule = entry["derivedFrom"]
    cm = maps.get(rule["conceptMap"])
    if cm is None:
        return None
    side = rule["side"]
    concepts = list(dict.fromkeys(m.source if side == "source" else m.target for m in cm.mappings))
    # A ConceptMap names codes without their display names; take them from the value set the
    # catalogue points at (J07 holds every J66 type code).
    names = next((vs for vs in sets if vs.id == rule.get("displayNamesFrom")), None)
    if names is not None:
        concepts = [
            Concept(c.code, c.coding_scheme, c.display_name or (names.get(*c.key()) or c).display_name)
            for c in concepts
        ]
    return ValueSet(
        id=entry["id"],
        name=entry["name"],
        oid=entry.get("oid"),
        url=entry.get("url"),
        version=cm.version,
        source=f"the {side} side of {cm.id} ({cm.source})",
        concepts=concepts,
    )


# --- writing -----------------------------------------------------------------------------------


def _concept_line(c: Concept) -> str:
    return json.dumps(c.to_json(), ensure_ascii=False)


def render_value_set(vs: ValueSet) -> str:
    head = {
        "id": vs.id,
        "name": vs.name,
        "oid": vs.oid,
        "url": vs.url,
        "version": vs.version,
        "source": vs.source,
    }
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    body = ",\n".join(f"    {_concept_line(c)}" for c in vs.concepts)
    return "{\n" + "\n".join(lines) + '\n  "concepts": [\n' + body + "\n  ]\n}\n"


def render_concept_map(cm: ConceptMap) -> str:
    head = {"id": cm.id, "name": cm.name, "url": cm.url, "version": cm.version, "source": cm.source}
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    rows = []
    for m in cm.mappings:
        row: dict[str, Any] = {"source": m.source.to_json(), "target": m.target.to_json()}
        row["equivalence"] = m.equivalence
        if m.comment:
            row["comment"] = m.comment
        rows.append("    " + json.dumps(row, ensure_ascii=False))
    return "{\n" + "\n".join(lines) + '\n  "mappings": [\n' + ",\n".join(rows) + "\n  ]\n}\n"


def _write(path: Path, text: str, report: ImportReport) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        report.unchanged.append(path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    report.written.append(path)


def import_export(directories: list[Path], profiles_dir: Path) -> ImportReport:
    """Import the catalogued resources found in ``directories`` into ``profiles_dir``."""
    catalogue_path = profiles_dir / "nos.json"
    try:
        catalogue = json.loads(catalogue_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NosImportError(f"{catalogue_path}: {exc}") from exc
    systems = _Systems(read_code_systems(profiles_dir / "codesystems.json"))
    value_sets, concept_maps = _scan(directories)
    report = ImportReport()

    maps: dict[str, ConceptMap] = {}
    for entry in catalogue["conceptMaps"]:
        found = concept_maps.get(entry["url"])
        if found is None:
            report.missing.append(entry["id"])
            existing = profiles_dir / "conceptmaps" / f"{entry['id']}.json"
            if existing.is_file():
                maps[entry["id"]] = read_concept_map(existing)
            continue
        maps[entry["id"]] = _fhir_concept_map(entry, found, systems)
    imported_maps = {k: v for k, v in maps.items() if k not in report.missing}

    sets: list[ValueSet] = []
    derived_entries = [e for e in catalogue["valueSets"] if "derivedFrom" in e]
    for entry in catalogue["valueSets"]:
        if "derivedFrom" in entry:
            continue
        found = value_sets.get(entry.get("oid", "")) or value_sets.get(entry.get("url", ""))
        if found is None:
            report.missing.append(entry["id"])
        elif found.kind == "svs":
            sets.append(_svs_value_set(entry, found))
        else:
            sets.append(_fhir_value_set(entry, found, systems))

    for entry in derived_entries:
        derived = _derived(entry, imported_maps, sets)
        if derived is None:
            report.missing.append(entry["id"])
        else:
            sets.append(derived)

    if systems.unknown:
        raise NosImportError(
            "these code systems have no OID in codesystems.json, so XDS codingSchemes cannot be "
            f"written for them: {', '.join(sorted(systems.unknown))}"
        )
    for cm in imported_maps.values():
        _write(profiles_dir / "conceptmaps" / f"{cm.id}.json", render_concept_map(cm), report)
    for vs in sets:
        _write(profiles_dir / "valuesets" / f"{vs.id}.json", render_value_set(vs), report)
    return report
