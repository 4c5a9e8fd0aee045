"""The profile data under profiles/: value sets, concept maps, code systems and CDA facts.

The files are the project's own format (documented in profiles/README.md), written by
``carnet profiles import`` from an ANS NOS export or, for the few resources no export carries,
by hand from the published NOS pages. This module reads them once per directory and answers the
questions the validation profiles and the CDA mapping ask: is this code in that value set with
that coding scheme, which classCode goes with this typeCode, which formatCode with this CDA
template, what OID stands behind this FHIR code-system URL.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "profiles"


class ProfileDataError(Exception):
    """A profile file is missing or malformed."""


@dataclass(frozen=True)
class Concept:
    """A coded value as XDS metadata carries it: code, codingScheme (an OID or 'URN'/'ASTM'), name."""

    code: str
    coding_scheme: str
    display_name: str = ""

    def key(self) -> tuple[str, str]:
        return (self.code, self.coding_scheme)

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "codingScheme": self.coding_scheme, "displayName": self.display_name}


@dataclass
class ValueSet:
    id: str
    name: str
    oid: str | None
    url: str | None
    version: str | None
    source: str
    concepts: list[Concept]
    _keys: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self._keys = {c.key() for c in self.concepts}

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._keys

    def get(self, code: str, coding_scheme: str) -> Concept | None:
        return next((c for c in self.concepts if c.key() == (code, coding_scheme)), None)

    def with_code(self, code: str) -> list[Concept]:
        return [c for c in self.concepts if c.code == code]

    def label(self) -> str:
        return f"{self.id} {self.name}"


@dataclass(frozen=True)
class Mapping:
    source: Concept
    target: Concept
    equivalence: str = "equivalent"
    comment: str = ""


@dataclass
class ConceptMap:
    id: str
    name: str
    url: str
    version: str | None
    source: str
    mappings: list[Mapping]

    def targets(self, code: str, coding_scheme: str | None = None) -> list[Concept]:
        return [
            m.target
            for m in self.mappings
            if m.source.code == code and (coding_scheme is None or m.source.coding_scheme == coding_scheme)
        ]


@dataclass(frozen=True)
class CodeSystem:
    """One row of the OID <-> FHIR URL table. ``aliases`` are other URLs seen for the same system."""

    oid: str
    url: str
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Volet:
    """A CI-SIS document model: its template, and the schematron of the ANS package that checks it."""

    name: str
    template_id: str
    extension: str | None
    schematron: str


@dataclass
class CdaFacts:
    """What the CDA mapping needs beyond the NOS resources (profiles/cda.json)."""

    non_structured_template: str
    media_type_format_codes: dict[str, str]
    format_codes: dict[str, str]
    volets: list[Volet]
    default_schematron: str


@dataclass
class ProfileData:
    directory: Path
    value_sets: dict[str, ValueSet]
    concept_maps: dict[str, ConceptMap]
    code_systems: list[CodeSystem]
    cda: CdaFacts
    dmp: dict[str, Any]

    def value_set(self, vs_id: str) -> ValueSet:
        try:
            return self.value_sets[vs_id]
        except KeyError:
            raise ProfileDataError(f"value set {vs_id} is not in {self.directory}/valuesets") from None

    def concept_map(self, map_id: str) -> ConceptMap:
        try:
            return self.concept_maps[map_id]
        except KeyError:
            raise ProfileDataError(f"concept map {map_id} is not in {self.directory}/conceptmaps") from None

    def oid_for_url(self, url: str) -> str | None:
        for cs in self.code_systems:
            if url == cs.url or url in cs.aliases:
                return cs.oid
        return None

    def url_for_oid(self, oid: str) -> str | None:
        for cs in self.code_systems:
            if oid == cs.oid:
                return cs.url
        return None

    def code_system(self, oid_or_url: str) -> CodeSystem | None:
        for cs in self.code_systems:
            if oid_or_url in (cs.oid, cs.url, *cs.aliases):
                return cs
        return None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileDataError(f"{path}: {exc}") from exc


def _concept(raw: dict[str, str]) -> Concept:
    return Concept(raw["code"], raw["codingScheme"], raw.get("displayName", ""))


def read_value_set(path: Path) -> ValueSet:
    raw = _read(path)
    try:
        return ValueSet(
            id=raw["id"],
            name=raw["name"],
            oid=raw.get("oid"),
            url=raw.get("url"),
            version=raw.get("version"),
            source=raw.get("source", ""),
            concepts=[_concept(c) for c in raw["concepts"]],
        )
    except (KeyError, TypeError) as exc:
        raise ProfileDataError(f"{path}: not a value set file (missing {exc})") from exc


def read_concept_map(path: Path) -> ConceptMap:
    raw = _read(path)
    try:
        return ConceptMap(
            id=raw["id"],
            name=raw["name"],
            url=raw["url"],
            version=raw.get("version"),
            source=raw.get("source", ""),
            mappings=[
                Mapping(
                    _concept(m["source"]),
                    _concept(m["target"]),
                    m.get("equivalence", ""),
                    m.get("comment", ""),
                )
                for m in raw["mappings"]
            ],
        )
    except (KeyError, TypeError) as exc:
        raise ProfileDataError(f"{path}: not a concept map file (missing {exc})") from exc


def read_code_systems(path: Path) -> list[CodeSystem]:
    try:
        return [
            CodeSystem(r["oid"], r["url"], r["name"], tuple(r.get("aliases", ())))
            for r in _read(path)["codeSystems"]
        ]
    except (KeyError, TypeError) as exc:
        raise ProfileDataError(f"{path}: not a code-system table (missing {exc})") from exc


def read_cda_facts(path: Path) -> CdaFacts:
    raw = _read(path)
    try:
        ns = raw["nonStructuredBody"]
        return CdaFacts(
            non_structured_template=ns["templateId"],
            media_type_format_codes=dict(ns["formatCodes"]),
            format_codes={f["templateId"]: f["formatCode"] for f in raw["formatCodes"]},
            volets=[
                Volet(v["name"], v["templateId"], v.get("extension"), v["schematron"]) for v in raw["volets"]
            ],
            default_schematron=raw["defaultSchematron"],
        )
    except (KeyError, TypeError) as exc:
        raise ProfileDataError(f"{path}: not a CDA facts file (missing {exc})") from exc


@functools.lru_cache(maxsize=8)
def load(directory: Path = DEFAULT_DIR) -> ProfileData:
    """Read every profile file of ``directory`` (once per directory and process)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ProfileDataError(f"profile directory {directory} does not exist")
    value_sets = {vs.id: vs for vs in map(read_value_set, sorted((directory / "valuesets").glob("*.json")))}
    maps = {cm.id: cm for cm in map(read_concept_map, sorted((directory / "conceptmaps").glob("*.json")))}
    return ProfileData(
        directory=directory,
        value_sets=value_sets,
        concept_maps=maps,
        code_systems=read_code_systems(directory / "codesystems.json"),
        cda=read_cda_facts(directory / "cda.json"),
        dmp=_read(directory / "dmp.json"),
    )
