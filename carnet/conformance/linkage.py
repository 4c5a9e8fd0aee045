"""Linkage between steps and tests: the run log, UseId, UseReport, Report and symbol substitution.

The NIST engine writes a ``log.xml`` per section: one ``TestStep`` per step, holding the
transaction's output (``AssignedPatientId``, ``AssignedUids``, ``AssignedUuids``,
``AssignedSourceId``, ``InputMetadata``, ``Result``, ``Reports``). Later steps read it:

* ``UseId`` takes an ``Assign`` of such a section (``testdir`` relative to the current section
  directory; no ``testdir`` means an earlier step of the current section);
* ``UseReport`` takes a named ``Report`` of a step of some test and section (``THIS`` is the
  current section);
* ``Report`` evaluates an XPath over the step's own output (section ``InputMetadata`` or
  ``Result``), as NIST ``ReportManager`` does: ``//`` paths search the whole transaction output.

:class:`RunLog` keeps the same tree in memory, so Reports and Assertions can run the plans' XPath
unchanged. Resolving a link that does not exist raises :class:`LinkageError`: the step that needs
it is not run, with that reason.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from carnet.conformance.testkit import Section, Testkit
from carnet.conformance.testplan import ReportSpec, UseId, UseReport
from carnet.xml import localname


class LinkageError(Exception):
    """A UseId, UseReport or Report names something no earlier step produced."""


@dataclass
class StepLog:
    """What one step left for later steps: its log element, its Assign maps and its Reports."""

    test_id: str
    section: str
    step_id: str
    output: etree._Element  # the <*Transaction> element under <TestStep id=...>
    assigned: dict[str, dict[str, str]] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)

    def assign(self, section: str, mapping: dict[str, str]) -> None:
        """Log an Assign section (AssignedUuids...) as NIST does, symbol -> id."""
        self.assigned.setdefault(section, {}).update(mapping)
        el = _child(self.output, section)
        for symbol, value in mapping.items():
            etree.SubElement(el, "Assign", symbol=symbol, id=value)

    def record(self, name: str, content: etree._Element | str) -> None:
        """Add an element (InputMetadata, Result...) holding a copy of ``content``."""
        el = etree.SubElement(self.output, name)
        if isinstance(content, str):
            el.text = content
        else:
            el.append(copy.deepcopy(content))

    def report(self, name: str, value: str) -> None:
        self.reports[name] = value
        reports = _child(self.output, "Reports")
        etree.SubElement(reports, "Report", name=name).text = value


def _child(parent: etree._Element, name: str) -> etree._Element:
    found = parent.find(name)
    return found if found is not None else etree.SubElement(parent, name)


class RunLog:
    """Every step log of one run, by test, section and step id."""

    def __init__(self) -> None:
        self._sections: dict[tuple[str, str], etree._Element] = {}
        self._steps: dict[tuple[str, str], list[StepLog]] = {}

    def section_tree(self, test_id: str, section: str) -> etree._Element:
        """The ``TestResults`` element of a section (what ``DataRef file="THIS"`` reads)."""
        key = (test_id, section)
        if key not in self._sections:
            self._sections[key] = etree.Element("TestResults", test=f"{test_id}/{section}")
        return self._sections[key]

    def new_step(self, test_id: str, section: str, step_id: str, transaction: str) -> StepLog:
        test_step = etree.SubElement(self.section_tree(test_id, section), "TestStep", id=step_id)
        log = StepLog(test_id, section, step_id, etree.SubElement(test_step, transaction))
        self._steps.setdefault((test_id, section), []).append(log)
        return log

    def has_section(self, test_id: str, section: str) -> bool:
        return (test_id, section) in self._steps

    def find(self, test_id: str, section: str, step_id: str, latest: bool = False) -> StepLog | None:
        logs = [s for s in self._steps.get((test_id, section), []) if s.step_id == step_id]
        if not logs:
            return None
        # An earlier step of the current section is the latest of that name (NIST looks back);
        # in another section's log the first TestStep with the id is found.
        return logs[-1] if latest else logs[0]


def target_section(testkit: Testkit, current: Section, testdir: str) -> Section | None:
    """The section a ``testdir`` names: relative to the current section directory, as NIST
    resolves it; a few plans write it relative to the test directory, tried second."""
    for base in (current.directory, current.directory.parent):
        found = testkit.locate((base / testdir).resolve())
        if found is not None:
            return found
    return None


def resolve_use_id(use: UseId, current: Section, testkit: Testkit, log: RunLog) -> str:
    if use.testdir:
        section = target_section(testkit, current, use.testdir)
        if section is None:
            raise LinkageError(f"UseId {use.symbol}: testdir '{use.testdir}' names no section of the testkit")
    else:
        section = current
    step = log.find(section.test_id, section.name, use.step, latest=section == current)
    if step is None:
        raise LinkageError(
            f"UseId {use.symbol}: step '{use.step}' of {section.label} has not run in this run"
        )
    value = step.assigned.get(use.section, {}).get(use.id)
    if not value:
        raise LinkageError(
            f"UseId {use.symbol}: step '{use.step}' of {section.label} assigned no "
            f"'{use.id}' in {use.section}"
        )
    return value


def resolve_use_report(use: UseReport, current: Section, log: RunLog) -> str:
    test_id = use.test or current.test_id
    section = current.name if use.section == "THIS" else use.section
    step = log.find(test_id, section, use.step, latest=(test_id, section) == (current.test_id, current.name))
    if step is None:
        raise LinkageError(
            f"UseReport {use.use_as}: step '{use.step}' of {test_id}/{section} has not run in this run"
        )
    value = step.reports.get(use.report_name)
    if not value:
        raise LinkageError(
            f"UseReport {use.use_as}: step '{use.step}' of {test_id}/{section} reported no "
            f"'{use.report_name}'"
        )
    return value


# Linkage.replace_string_in_text_and_attributes leaves these alone (plan instructions, documents).
_NOT_SUBSTITUTED = frozenset({"Report", "UseReport", "UseId"})


def apply_symbols(root: etree._Element, symbols: dict[str, str]) -> None:
    """Replace each symbol by its value, as a plain substring, in every attribute and text below
    ``root`` (in place). Symbols need not look like ``$x$``: plans also link ``Document01``."""
    symbols = {k: val for k, val in symbols.items() if k}
    if not symbols:
        return
    stack = [root]
    while stack:
        el = stack.pop()
        if not isinstance(el.tag, str) or localname(el) in _NOT_SUBSTITUTED:
            continue
        if etree.QName(el).localname == "Document" and etree.QName(el).namespace == "urn:ihe:iti:xds-b:2007":
            continue
        for key, value in el.attrib.items():
            new = _replace(value, symbols)
            if new != value:
                el.set(key, new)
        if el.text:
            el.text = _replace(el.text, symbols)
        stack.extend(el)


def _replace(text: str, symbols: dict[str, str]) -> str:
    for symbol, value in symbols.items():
        if symbol in text:
            text = text.replace(symbol, value)
    return text


def xpath_string(result: object) -> str:
    """The XPath 1.0 string value of an evaluation result (Jaxen ``stringValueOf``)."""
    if isinstance(result, bool):
        return "true" if result else "false"
    if isinstance(result, float):
        return str(int(result)) if result.is_integer() else repr(result)
    if isinstance(result, list):
        if not result:
            return ""
        first = result[0]
        if isinstance(first, etree._Element):
            return "".join(first.itertext())
        return str(first)
    return str(result)


def evaluate_report(spec: ReportSpec, step: StepLog) -> str:
    """A Report's XPath over a copy of the step output, with the named section as context."""
    output = copy.deepcopy(step.output)
    section = next(
        (el for el in output.iter() if isinstance(el.tag, str) and localname(el) == spec.section), None
    )
    if section is None:
        raise LinkageError(f"Report {spec.name}: the step has no {spec.section} to evaluate")
    try:
        value = xpath_string(section.xpath(spec.xpath)).strip()
    except etree.XPathError as exc:
        raise LinkageError(f"Report {spec.name}: XPath {spec.xpath!r} does not evaluate: {exc}") from exc
    if not value:
        raise LinkageError(f"Report {spec.name}: XPath {spec.xpath!r} is empty over {spec.section}")
    return value


def read_file_relative(section: Section, name: str) -> Path | None:
    """A file a plan names (ReferenceDocument, Document...): section-relative as NIST reads it,
    or test-relative as several plans write it."""
    for base in (section.directory, section.directory.parent):
        candidate = (base / name).resolve()
        if candidate.is_file():
            return candidate
    return None
