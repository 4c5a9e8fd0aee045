"""``Assertions``: XPath 1.0 booleans over the run log, as NIST ``AssertionEngine`` evaluates them.

``<DataRef file="THIS" as="output"/>`` puts a copy of the current section's log (every step so
far: its InputMetadata, Result, Reports...) under ``<Data><output>``; each ``<Assert id>`` is an
XPath whose string value must be ``true``. Before evaluation the assertion text gets the step's
UseReport values (``useAs`` -> value, as ``UseReportManager.apply``) and ``$DATE$`` (today,
YYYYMMDD). A DataRef to anything but THIS is not supported: the step is not run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from carnet.conformance.linkage import xpath_string
from carnet.xml import localname


class UnsupportedAssertion(Exception):
    """A DataRef or construct this runner cannot evaluate."""


@dataclass(frozen=True)
class AssertionResult:
    id: str
    xpath: str
    passed: bool
    detail: str


def run_assertions(
    assertions: etree._Element, section_log: etree._Element, substitutions: Mapping[str, str]
) -> list[AssertionResult]:
    data = etree.Element("Data")
    asserts: list[tuple[str, str]] = []
    for el in assertions:
        if not isinstance(el.tag, str):
            continue
        name = localname(el)
        if name == "DataRef":
            if el.get("file") != "THIS":
                raise UnsupportedAssertion(f"DataRef file='{el.get('file')}' (only THIS is supported)")
            etree.SubElement(data, el.get("as") or "output").append(copy.deepcopy(section_log))
        elif name == "Assert":
            asserts.append((el.get("id") or "", el.text or ""))
        else:
            raise UnsupportedAssertion(f"<{name}> inside Assertions")
    today = datetime.now().strftime("%Y%m%d")
    results: list[AssertionResult] = []
    for assert_id, raw in asserts:
        text = raw
        for symbol, value in substitutions.items():
            if symbol:
                text = text.replace(symbol, value)
        text = " ".join(text.replace("$DATE$", today).split())
        try:
            value = xpath_string(data.xpath(text))
        except etree.XPathError as exc:
            results.append(AssertionResult(assert_id, text, False, f"XPath error: {exc}"))
            continue
        passed = value.lower() == "true"
        results.append(AssertionResult(assert_id, text, passed, f"evaluates to {value!r}"))
    return results
