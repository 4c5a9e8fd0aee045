"""CDA validation the way the DMP does it (homologation rule EX_2.1-1071): the document must be
valid against CDA_extended.xsd and against the schematron of its CI-SIS volet, picked from its
templateId; a document of no known volet (a level-1 CDA, or a model the package lacks) is checked
against the structuration minimale schematron.

The schema and schematrons come from an ANS package directory the deployment configures
(CARNET_CDA_SCHEMATRON_DIR), laid out as TestContenuCDA ships it: ``infrastructure/cda/``,
``schematrons/``, ``jeuxDeValeurs/``. Which schematron serves which template is in
profiles/cda.json. Schemas are compiled once per process.

``check_provided`` applies the deployment's choice to the documents of a submission: ``off``,
``warn`` (the failures come back as warnings and the submission goes on) or ``reject`` (the
submission is refused with every failure in the RegistryErrorList).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from carnet.profiles.cda.header import HL7, NS
from carnet.profiles.cda.schematron import Engine, SchematronError
from carnet.profiles.terminology import DEFAULT_DIR, ProfileData, Volet, load
from carnet.xds.errors import ErrorCode, RegistryError, XDSError
from carnet.xml import UnsafeXMLError, parse

if TYPE_CHECKING:
    from carnet.config import Settings
    from carnet.xds.model import DocumentEntry

XSD_PATH = "infrastructure/cda/CDA_extended.xsd"
CDA_MIME_TYPES = ("text/xml", "application/xml", "application/hl7-v3+xml")
# A refused submission lists at most this many failures per document: enough to fix it, while
# a document of the wrong volet would otherwise send back thousands.
MAX_REPORTED = 100


class PackageError(Exception):
    """The ANS package directory lacks the schema or a schematron."""


@dataclass
class Finding:
    """One failure: an XSD error or a schematron assertion (id, message, XPath location)."""

    id: str
    message: str
    location: str
    role: str = "error"  # error, warning or info
    source: str = "xsd"

    @property
    def is_error(self) -> bool:
        return self.role not in ("warning", "info")


@dataclass
class Report:
    schematron: str
    volet: str | None
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if not f.is_error]

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, object]:
        return {
            "valid": self.valid,
            "volet": self.volet,
            "schematron": self.schematron,
            "errors": [vars(f) for f in self.errors],
            "warnings": [vars(f) for f in self.warnings],
            "notes": self.notes,
        }


class CdaValidator:
    def __init__(self, package: Path, data: ProfileData):
        self.package = Path(package)
        self.data = data
        self._engine: Engine | None = None
        self._schema: etree.XMLSchema | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = Engine()
            return self._engine

    def schema(self) -> etree.XMLSchema:
        with self._lock:
            if self._schema is None:
                path = self.package / XSD_PATH
                if not path.is_file():
                    raise PackageError(f"{path} does not exist: is {self.package} an ANS CDA package?")
                # The schema imports its own modules from disk; nothing else is fetched.
                parser = etree.XMLParser(no_network=True, resolve_entities=False)
                self._schema = etree.XMLSchema(etree.parse(str(path), parser))
            return self._schema

    def volet_of(self, root: etree._Element) -> tuple[Volet | None, Path]:
        """The volet whose template the document declares (exact version first), and its schematron."""
        if root.find("cda:component/cda:nonXMLBody", NS) is None:
            declared = [(t.get("root"), t.get("extension")) for t in root.findall("cda:templateId", NS)]
            candidates = [v for v in self.data.cda.volets if v.template_id in {r for r, _ in declared}]
            exact = [v for v in candidates if (v.template_id, v.extension) in declared and v.extension]
            default = [v for v in candidates if v.extension is None]
            chosen = (exact or default)[0] if exact or default else None
            if chosen is not None:
                return chosen, self._schematron(chosen.schematron)
        return None, self._schematron(self.data.cda.default_schematron)

    def _schematron(self, relative: str) -> Path:
        path = self.package / relative
        if not path.is_file():
            raise PackageError(f"{path} does not exist in the schematron package {self.package}")
        return path

    def validate(self, root: etree._Element) -> Report:
        volet, schematron = self.volet_of(root)
        report = Report(
            schematron=str(schematron.relative_to(self.package)), volet=volet.name if volet else None
        )
        schema = self.schema()
        with self._lock:  # an lxml schema validates one document at a time
            valid = schema.validate(root)
            log = list(schema.error_log) if not valid else []
        for entry in log:
            report.findings.append(
                Finding(
                    id="CDA_extended.xsd",
                    message=entry.message,
                    location=getattr(entry, "path", None) or f"line {entry.line}",
                )
            )
        try:
            failures = self.engine.validate(root, schematron)
            report.notes = self.engine.compiled(schematron)[1].notes
        except SchematronError as exc:
            raise PackageError(str(exc)) from exc
        for f in failures:
            report.findings.append(
                Finding(f.id, f.message, f.location, f.role, f"schematron {schematron.name}")
            )
        return report


@functools.lru_cache(maxsize=4)
def validator(package: Path, profiles_dir: Path = DEFAULT_DIR) -> CdaValidator:
    """The process-wide validator of a package: its schema and schematrons are compiled once."""
    return CdaValidator(package, load(profiles_dir))


def validator_for(settings: Settings) -> CdaValidator:
    if settings.cda_schematron_dir is None:
        raise PackageError("no ANS schematron package configured (CARNET_CDA_SCHEMATRON_DIR)")
    return validator(Path(settings.cda_schematron_dir), Path(settings.profiles_dir or DEFAULT_DIR))


def is_cda(content: bytes) -> bool:
    """Whether the bytes look like a CDA document (cheap test before a full parse)."""
    head = content[:4096]
    return b"ClinicalDocument" in head and HL7.encode() in head


def check_provided(
    settings: Settings, documents: Iterable[tuple[DocumentEntry, Callable[[], bytes]]]
) -> list[RegistryError]:
    """Validate the CDA documents of a submission as the deployment asks (CARNET_CDA_VALIDATION).

    Returns the failures as warnings when the mode is ``warn``; raises XDSError with all of them
    when it is ``reject``. Documents that are not CDA (by mimeType and content) are not checked.
    """
    mode = settings.cda_validation
    if mode == "off":
        return []
    cda_validator = validator_for(settings)
    found: list[RegistryError] = []
    for de, read in documents:
        if de.mime_type not in CDA_MIME_TYPES:
            continue
        content = read()
        if not is_cda(content):
            continue
        owner = f"DocumentEntry {de.entry_uuid}"
        try:
            report = cda_validator.validate(parse(content))
        except UnsafeXMLError as exc:
            found.append(RegistryError(ErrorCode.REPOSITORY_METADATA_ERROR, f"{owner}: CDA document: {exc}"))
            continue
        # Only failures of role error count; the schematrons' warnings are for `carnet cda validate`.
        failures = report.errors
        for f in failures[:MAX_REPORTED]:
            found.append(
                RegistryError(
                    ErrorCode.REPOSITORY_METADATA_ERROR,
                    f"{owner}: CDA not valid against {report.volet or 'the structuration minimale'} "
                    f"({f.source}) [{f.id}] {f.message}",
                    f.location,
                    warning=mode == "warn",
                )
            )
        if len(failures) > MAX_REPORTED:
            found.append(
                RegistryError(
                    ErrorCode.REPOSITORY_METADATA_ERROR,
                    f"{owner}: {len(failures) - MAX_REPORTED} more CDA failures not listed",
                    warning=mode == "warn",
                )
            )
    if mode == "reject" and any(not e.warning for e in found):
        raise XDSError(found)
    return [RegistryError(e.code, e.context, e.location, warning=True) for e in found]
