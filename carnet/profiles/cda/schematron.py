"""ISO Schematron (ISO/IEC 19757-3) compiled to XSLT 3.0 and run with Saxon (saxonche).

ANS publishes the rules of each CI-SIS volet as a Schematron schema (queryBinding xslt2). Carnet
compiles it itself rather than through the ISO skeleton stylesheets because the ANS package needs
what a generic compiler does not do: includes whose letter case differs from the file on disk
(the package is authored on Windows), value-set paths without their ``.xml`` extension, and a
missing value-set file reported as such instead of aborting the whole validation.

The compilation follows the standard's steps: includes are replaced by the element they point at,
abstract patterns are instantiated (``is-a`` with textual parameter substitution), abstract rules
are copied where ``extends`` names them, and the active patterns of the phase become one XSLT mode
each, whose templates carry decreasing priorities so that a node fires at most the first rule of a
pattern that matches it (ISO §6.5). The stylesheet writes SVRL.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

SCH = "http://purl.oclc.org/dsdl/schematron"
XSL = "http://www.w3.org/1999/XSL/Transform"
SVRL = "http://purl.oclc.org/dsdl/svrl"
XS = "http://www.w3.org/2001/XMLSchema"
# Carnet's own functions inside generated stylesheets.
FN = "urn:carnet:schematron"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"


class SchematronError(Exception):
    """The schema cannot be compiled: unreadable, an include or abstract pattern missing, bad XPath."""


def _s(local: str) -> str:
    return f"{{{SCH}}}{local}"


def _x(local: str) -> str:
    return f"{{{XSL}}}{local}"


@dataclass
class Failure:
    """One failed assertion or fired report, as the validation report lists it."""

    id: str
    pattern: str
    role: str  # error, warning or info (an assert without a role is an error)
    message: str
    location: str
    test: str
    kind: str = "assert"  # assert or report

    @property
    def is_error(self) -> bool:
        return self.role not in ("warning", "info")


@dataclass
class Compiled:
    """A compiled schema: the XSLT text and what the compiler had to repair or could not find."""

    schema: Path
    xslt: str
    patterns: list[str]
    namespaces: dict[str, str]
    notes: list[str] = field(default_factory=list)


# --- reading the schema ------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    # The package is configuration the deployment trusts, but it is still read without DTDs or
    # network access: nothing in a schematron needs them.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True)


def resolve_case_insensitive(base: Path, href: str) -> Path | None:
    """``base/href``, or the file whose path differs only in letter case (the package's includes)."""
    direct = (base / href).resolve()
    if direct.is_file():
        return direct
    current = base.resolve()
    for part in Path(href).parts:
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent
            continue
        candidate = current / part
        if not candidate.exists():
            try:
                names = os.listdir(current)
            except OSError:
                return None
            matches = [n for n in names if n.lower() == part.lower()]
            if len(matches) != 1:
                return None
            candidate = current / matches[0]
        current = candidate
    return current if current.is_file() else None


def _load(path: Path, notes: list[str], seen: tuple[Path, ...] = ()) -> etree._Element:
    if path in seen:
        raise SchematronError(f"include cycle through {path}")
    try:
        root = etree.parse(str(path), _parser()).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise SchematronError(f"cannot read {path}: {exc}") from exc
    root.set(XML_BASE, path.as_uri())
    for inc in list(root.iter(_s("include"))):
        href = inc.get("href") or ""
        # An include inside an included element resolves against that element's own file.
        base_uri = _base_of(inc) or path.as_uri()
        base_dir = Path(_uri_to_path(base_uri)).parent
        target = resolve_case_insensitive(base_dir, href)
        if target is None:
            raise SchematronError(f"{path}: include '{href}' not found under {base_dir}")
        if not (base_dir / href).is_file():
            notes.append(
                f"include '{href}' resolved to {os.path.relpath(target, base_dir)} (letter case differs)"
            )
        included = _load(target, notes, (*seen, path))
        parent = inc.getparent()
        assert parent is not None
        parent.replace(inc, included)
    return root


def _base_of(el: etree._Element) -> str | None:
    node: etree._Element | None = el
    while node is not None:
        base = node.get(XML_BASE)
        if base:
            return base
        node = node.getparent()
    return None


def _uri_to_path(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)


# --- abstract patterns, abstract rules, phases -------------------------------------------------


def _substitute(text: str, params: dict[str, str]) -> str:
    # Longest names first, and never inside a longer name: $path_jdv must not touch $path_jdv1.
    for name in sorted(params, key=len, reverse=True):
        value = params[name]
        text = re.sub(rf"\${re.escape(name)}(?![\w.\-])", lambda _m: value, text)  # noqa: B023 - used at once
    return text


def _instantiate(abstract: etree._Element, concrete: etree._Element) -> etree._Element:
    params = {p.get("name", ""): p.get("value", "") for p in concrete.findall(_s("param"))}
    pattern = copy.deepcopy(abstract)
    pattern.attrib.pop("abstract", None)
    pattern.set("id", concrete.get("id") or abstract.get("id") or "")
    base = _base_of(abstract)
    if base:
        pattern.set(XML_BASE, base)
    for el in pattern.iter():
        for attr in ("context", "test", "select", "value", "path"):
            if attr in el.attrib:
                el.set(attr, _substitute(el.get(attr, ""), params))
    return pattern


# --- XSLT generation ---------------------------------------------------------------------------


def _avt(text: str) -> str:
    """A literal for an attribute value template: braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")


_DOC_CALL = re.compile(r"(?<![\w:\-.$])(?:document|doc)\s*\(")
_DOC_LITERAL = re.compile(r"carnet:document\(\s*'([^']+)'\s*\)")
_PATH_LITERAL = re.compile(r"^\s*'([^']+)'\s*$")
_VARIABLE = re.compile(r"\$([\w.\-]+)")


class _Resources:
    """Files the schema reads with doc()/document(): found (maybe under another case) or missing.

    A value set the package lacks must not abort the validation nor fail every document: the
    checks that need it are downgraded to warnings that name the missing file.
    """

    def __init__(self, base: Path, notes: list[str]):
        self.base = base
        self.notes = notes
        self.missing_vars: dict[str, str] = {}
        self.missing_files: set[str] = set()

    def locate(self, href: str) -> tuple[Path | None, str]:
        found = resolve_case_insensitive(self.base, href) or resolve_case_insensitive(
            self.base, href + ".xml"
        )
        if found is None:
            return None, "does not exist in the package"
        if found.stat().st_size == 0:
            return None, "is an empty file"
        return found, ""

    def _fixed(self, href: str, where: str) -> str:
        found, problem = self.locate(href)
        if found is None:
            if href not in self.missing_files:
                self.missing_files.add(href)
                self.notes.append(
                    f"{where}'{href}' {problem}; the checks that need it are reported as warnings"
                )
            return href
        if found != (self.base / href).resolve():
            self.notes.append(f"{where}'{href}' resolved to {os.path.relpath(found, self.base)}")
            return found.as_uri()
        return href

    def let_value(self, name: str, value: str) -> str:
        match = _PATH_LITERAL.match(value)
        if not match or "/" not in match.group(1):
            return value
        href = match.group(1)
        fixed = self._fixed(href, f"${name}: ")
        if href in self.missing_files:
            self.missing_vars[name] = href
        return f"'{fixed}'"

    def expr(self, text: str) -> str:
        # fn:doc/document() on a file the package lacks would abort the whole transformation
        # (FODC0002); carnet:document answers an empty sequence instead.
        text = _DOC_CALL.sub("carnet:document(", text)
        return _DOC_LITERAL.sub(lambda m: f"carnet:document('{self._fixed(m.group(1), '')}')", text)

    def missing_in(self, text: str) -> list[str]:
        files = [m.group(1) for m in _DOC_LITERAL.finditer(text) if m.group(1) in self.missing_files]
        files += [self.missing_vars[v] for v in _VARIABLE.findall(text) if v in self.missing_vars]
        return sorted(set(files))


def _message(parent: etree._Element, source: etree._Element, res: _Resources) -> None:
    """Copy an assert/report message: text, value-of and name become XSLT instructions."""
    if source.text:
        etree.SubElement(parent, _x("text")).text = source.text
    for child in source:
        tag = etree.QName(child).localname if isinstance(child.tag, str) else ""
        if tag == "value-of":
            etree.SubElement(parent, _x("value-of"), select=res.expr(child.get("select", ".")))
        elif tag == "name":
            path = child.get("path")
            etree.SubElement(parent, _x("value-of"), select=f"name({res.expr(path)})" if path else "name()")
        elif tag:
            _message(parent, child, res)  # emph, dir, span: keep their text
        if child.tail:
            etree.SubElement(parent, _x("text")).text = child.tail


def _let(parent: etree._Element, let: etree._Element, res: _Resources, value: str | None = None) -> None:
    name = let.get("name") or ""
    if let.get("value") is not None:
        select = res.expr(value if value is not None else let.get("value", ""))
        etree.SubElement(parent, _x("variable"), name=name, select=select)
    else:  # element content
        var = etree.SubElement(parent, _x("variable"), name=name)
        for child in let:
            var.append(copy.deepcopy(child))


def _check(
    template: etree._Element, item: etree._Element, pattern_avt: str, assert_id: str, res: _Resources
) -> None:
    kind = etree.QName(item).localname
    test = item.get("test") or "true()"
    expr = res.expr(test)
    role = item.get("role") or item.get("flag") or "error"
    missing = res.missing_in(expr)
    if_ = etree.SubElement(template, _x("if"), test=f"not({expr})" if kind == "assert" else expr)
    out = etree.SubElement(
        if_,
        f"{{{SVRL}}}{'failed-assert' if kind == 'assert' else 'successful-report'}",
        test=_avt(test),
        location="{carnet:path(.)}",
    )
    out.set("id", _avt(item.get("id") or assert_id))
    out.set("role", "warning" if missing and role == "error" else _avt(role))
    out.set("pattern", pattern_avt)
    text = etree.SubElement(out, f"{{{SVRL}}}text")
    _message(text, item, res)
    if missing:
        etree.SubElement(
            text, _x("text")
        ).text = f" (not checked: {', '.join(missing)} is missing from the schematron package)"


class _Rules:
    """Writes rule bodies. An abstract rule becomes one named template that each extending rule
    calls, instead of a copy per use: the art-decor datatype rules of the structuration minimale
    are extended 677 times, and copying them makes an 8 MB stylesheet that Saxon needs 13 s to
    compile. A rule that reads a variable of the rule extending it is still copied in place."""

    def __init__(
        self, sheet: etree._Element, abstract: dict[str, etree._Element], res: _Resources, globals_: set[str]
    ):
        self.sheet = sheet
        self.abstract = abstract
        self.res = res
        self.globals = globals_
        self.templates: dict[str, str] = {}

    def body(
        self,
        template: etree._Element,
        rule: etree._Element,
        pattern: str | None,
        label: str,
        counter: list[int],
        stack: tuple[str, ...] = (),
    ) -> None:
        # pattern None: inside an abstract rule's template, where the caller passes the pattern id.
        pattern_avt = "{$carnet:pattern}" if pattern is None else _avt(pattern)
        for item in rule:
            local = etree.QName(item).localname if isinstance(item.tag, str) else ""
            if local == "let":
                _let(template, item, self.res)
            elif local in ("assert", "report"):
                counter[0] += 1
                _check(template, item, pattern_avt, f"{label}-{counter[0]}", self.res)
            elif local == "extends":
                name = item.get("rule") or ""
                target = self.abstract.get(name)
                if target is None:
                    raise SchematronError(f"extends rule='{name}': no abstract rule with that id")
                if name in stack:
                    raise SchematronError(f"abstract rule '{name}' extends itself")
                if self._callable(target):
                    call = etree.SubElement(template, _x("call-template"), name=self._template(name, stack))
                    etree.SubElement(
                        call,
                        _x("with-param"),
                        name="carnet:pattern",
                        select="$carnet:pattern" if pattern is None else _string_literal(pattern),
                    )
                else:
                    self.body(template, target, pattern, label, counter, (*stack, name))

    def _template(self, name: str, stack: tuple[str, ...]) -> str:
        if name not in self.templates:
            qname = f"carnet:rule-{len(self.templates) + 1}"
            self.templates[name] = qname
            template = etree.SubElement(self.sheet, _x("template"), name=qname)
            etree.SubElement(template, _x("param"), name="carnet:pattern", attrib={"as": "xs:string"})
            self.body(template, self.abstract[name], None, name, [0], (*stack, name))
        return self.templates[name]

    def _callable(self, rule: etree._Element) -> bool:
        declared = set(self.globals) | {let.get("name") for let in rule.iter(_s("let"))}
        used: set[str] = set()
        for el in rule.iter():
            for attr in ("test", "select", "value", "path"):
                used.update(_VARIABLE.findall(el.get(attr) or ""))
        return used <= declared


def _string_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _helpers(sheet: etree._Element, base_uri: str) -> None:
    fn = etree.SubElement(sheet, _x("function"), name="carnet:document", attrib={"as": "document-node()?"})
    etree.SubElement(fn, _x("param"), name="href")
    etree.SubElement(
        fn,
        _x("sequence"),
        select=(
            f"let $uri := resolve-uri(string($href), '{base_uri}') return "
            "if (doc-available($uri)) then doc($uri) else ()"
        ),
    )
    path = etree.SubElement(sheet, _x("function"), name="carnet:path", attrib={"as": "xs:string"})
    etree.SubElement(path, _x("param"), name="node", attrib={"as": "node()"})
    etree.SubElement(path, _x("sequence"), select="path($node)")


def compile_schema(schema: Path, phase: str | None = None) -> Compiled:
    """Read ``schema`` with its includes and write the XSLT 3.0 that validates against it."""
    schema = schema.resolve()
    notes: list[str] = []
    root = _load(schema, notes)
    if root.tag != _s("schema"):
        raise SchematronError(f"{schema}: the root element is not sch:schema")
    res = _Resources(schema.parent, notes)

    namespaces = {ns.get("prefix", ""): ns.get("uri", "") for ns in root.iter(_s("ns"))}
    for el in root.iter():
        for prefix, uri in (el.nsmap or {}).items():
            if prefix and uri != SCH and prefix not in namespaces:
                namespaces[prefix] = uri

    patterns: list[etree._Element] = list(root.iter(_s("pattern")))
    abstract_patterns = {p.get("id"): p for p in patterns if p.get("abstract") == "true"}
    abstract_rules = {r.get("id", ""): r for r in root.iter(_s("rule")) if r.get("abstract") == "true"}
    concrete: list[etree._Element] = []
    for p in patterns:
        if p.get("abstract") == "true":
            continue
        if p.get("is-a"):
            base = abstract_patterns.get(p.get("is-a"))
            if base is None:
                raise SchematronError(
                    f"pattern '{p.get('id')}' is-a '{p.get('is-a')}': no such abstract pattern"
                )
            p = _instantiate(base, p)
        concrete.append(p)

    phase_id = phase or root.get("defaultPhase") or "#ALL"
    if phase_id == "#ALL":
        active = concrete
    else:
        phases = {ph.get("id"): ph for ph in root.iter(_s("phase"))}
        if phase_id not in phases:
            raise SchematronError(f"{schema}: phase '{phase_id}' is not defined")
        wanted = [a.get("pattern") for a in phases[phase_id].findall(_s("active"))]
        by_id = {p.get("id"): p for p in concrete}
        for missing in [w for w in wanted if w not in by_id]:
            notes.append(
                f"phase '{phase_id}' activates pattern '{missing}', which the schema does not define"
            )
        active = [by_id[w] for w in dict.fromkeys(wanted) if w in by_id]

    base_uri = schema.as_uri()
    own = {"xsl": XSL, "xs": XS, "svrl": SVRL, "carnet": FN}
    # Every prefix the schema's XPath uses must be in scope on the stylesheet element.
    nsmap = {**{p: u for p, u in namespaces.items() if p not in own}, **own}
    sheet = etree.Element(_x("stylesheet"), nsmap=nsmap)
    sheet.set("version", "3.0")
    sheet.set(XML_BASE, base_uri)
    _helpers(sheet, base_uri)

    # Global variables: the schema's lets, then those of every pattern. The ANS package declares
    # value-set paths in a "variables" pattern and uses them from the others, which works because
    # the ISO skeleton makes pattern lets global; so does this compiler.
    globals_: dict[str, str] = {}
    for let in [*root.findall(_s("let")), *(x for p in concrete for x in p.findall(_s("let")))]:
        name = let.get("name") or ""
        value = let.get("value") or ""
        if name in globals_:
            if globals_[name] != value:
                notes.append(f"variable ${name} is declared twice with different values; the first is kept")
            continue
        globals_[name] = value
        _let(sheet, let, res, res.let_value(name, value) if let.get("value") is not None else None)

    writer = _Rules(sheet, abstract_rules, res, set(globals_))
    start = etree.SubElement(sheet, _x("template"), match="/")
    output = etree.SubElement(start, f"{{{SVRL}}}schematron-output")
    output.set("schemaVersion", _avt(root.get("schemaVersion") or ""))
    output.set("phase", _avt(phase_id))
    pattern_ids: list[str] = []
    for n, pattern in enumerate(active):
        pid = pattern.get("id") or f"pattern-{n}"
        pattern_ids.append(pid)
        mode = f"M{n}"
        etree.SubElement(output, f"{{{SVRL}}}active-pattern", id=_avt(pid))
        etree.SubElement(output, _x("apply-templates"), select="/", mode=mode)
        walk = etree.SubElement(sheet, _x("template"), match="@*|node()", mode=mode, priority="-2")
        etree.SubElement(walk, _x("apply-templates"), select="@*|node()", mode=mode)
        rules = [r for r in pattern.iter(_s("rule")) if r.get("abstract") != "true"]
        counter = [0]
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            context = " ".join((rule.get("context") or "").split())
            if context in seen:
                # ISO §6.5: a node fires one rule per pattern, so this one never fires.
                notes.append(
                    f"pattern '{pid}': a rule repeats the context {context}; its assertions never run"
                )
            seen.add(context)
            template = etree.SubElement(
                sheet,
                _x("template"),
                match=res.expr(rule.get("context") or ""),
                mode=mode,
                priority=str(len(rules) - i),
            )
            writer.body(template, rule, pid, pid, counter)
            etree.SubElement(template, _x("apply-templates"), select="@*|node()", mode=mode)
    xslt = etree.tostring(sheet, encoding="unicode")
    return Compiled(schema, xslt, pattern_ids, namespaces, notes)


# --- running -----------------------------------------------------------------------------------


class Engine:
    """One Saxon processor and the stylesheets it compiled, by schema and phase.

    Compiled stylesheets stay in memory for the life of the process. They cannot be cached on
    disk: exporting a compiled stylesheet (SEF) needs Saxon-EE, and recompiling the XSLT costs
    what generating it saves. SaxonC executables are not thread-safe, so compilations and
    transformations run one at a time under a lock.
    """

    def __init__(self) -> None:
        from saxonche import PySaxonProcessor

        self._proc = PySaxonProcessor(license=False)
        self._lock = threading.RLock()
        self._executables: dict[tuple[Path, str | None], tuple[Any, Compiled]] = {}

    def compiled(self, schema: Path, phase: str | None = None) -> tuple[Any, Compiled]:
        from saxonche import PySaxonApiError

        key = (schema.resolve(), phase)
        with self._lock:
            hit = self._executables.get(key)
            if hit is None:
                compiled = compile_schema(schema, phase)
                try:
                    executable = self._proc.new_xslt30_processor().compile_stylesheet(
                        stylesheet_text=compiled.xslt
                    )
                except PySaxonApiError as exc:
                    raise SchematronError(
                        f"{schema.name}: the generated XSLT does not compile: {exc}"
                    ) from exc
                hit = self._executables[key] = (executable, compiled)
            return hit

    def validate(self, document: etree._Element, schema: Path, phase: str | None = None) -> list[Failure]:
        from saxonche import PySaxonApiError

        executable, compiled = self.compiled(schema, phase)
        text = etree.tostring(document, encoding="unicode")
        with self._lock:
            try:
                node = self._proc.parse_xml(xml_text=text)
                svrl = executable.transform_to_string(xdm_node=node)
            except PySaxonApiError as exc:
                raise SchematronError(f"{compiled.schema.name}: validation failed to run: {exc}") from exc
        return list(read_svrl(svrl or "", compiled.namespaces))


def read_svrl(svrl: str, namespaces: dict[str, str]) -> Iterator[Failure]:
    root = etree.fromstring(svrl.encode())
    short = {uri: prefix for prefix, uri in namespaces.items()}
    for el in root:
        local = etree.QName(el).localname
        if local not in ("failed-assert", "successful-report"):
            continue
        text = el.findtext(f"{{{SVRL}}}text") or ""
        yield Failure(
            id=el.get("id", ""),
            pattern=el.get("pattern", ""),
            role=el.get("role", "error"),
            message=" ".join(text.split()),
            location=_short_path(el.get("location", ""), short),
            test=el.get("test", ""),
            kind="assert" if local == "failed-assert" else "report",
        )


def _short_path(path: str, prefixes: dict[str, str]) -> str:
    """fn:path() output with Q{uri} replaced by the schema's prefixes: /cda:ClinicalDocument[1]/..."""

    def repl(m: re.Match[str]) -> str:
        uri = m.group(1)
        if not uri:
            return ""
        prefix = prefixes.get(uri)
        return f"{prefix}:" if prefix else m.group(0)

    return re.sub(r"Q\{([^}]*)\}", repl, path)
