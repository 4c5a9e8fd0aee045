"""CDA validation: CDA_extended.xsd and the volet's schematron from the ANS package in
shared/fixtures/ans-cisis; the schematron compiler on small schemas of our own; `carnet cda validate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from carnet.profiles.cda.schematron import Engine, SchematronError, compile_schema, resolve_case_insensitive
from carnet.profiles.cda.validation import CdaValidator, PackageError, validator
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = FIXTURES / "ans-cisis"
EXAMPLES = sorted((PACKAGE / "ExemplesCDA").glob("*.xml"))
SAMPLES = sorted((ROOT / "cda_samples").glob("*.xml"))
NS = {"c": "urn:hl7-org:v3"}

pytestmark = pytest.mark.skipif(not PACKAGE.exists(), reason="shared fixtures not available")


@pytest.fixture(scope="module")
def cda() -> CdaValidator:
    return validator(PACKAGE)


def parse(path: Path) -> etree._Element:
    return etree.parse(str(path)).getroot()


@pytest.mark.parametrize("path", EXAMPLES + SAMPLES, ids=[p.name for p in EXAMPLES + SAMPLES])
def test_every_example_and_sample_is_valid(cda: CdaValidator, path: Path) -> None:
    report = cda.validate(parse(path))
    assert report.errors == [], [(f.id, f.location, f.message) for f in report.errors]
    level1 = parse(path).find("c:component/c:nonXMLBody", NS) is not None
    assert (report.volet is None) == level1, report.volet
    if level1:
        assert report.schematron.endswith("ASIP-STRUCT-MIN-StrucMin.sch")


def test_the_volet_is_picked_by_template_and_version(cda: CdaValidator) -> None:
    root = parse(ROOT / "cda_samples" / "VSM-synthese-medicale.xml")
    assert cda.volet_of(root)[0].name == "VSM_1.4_2022.01"  # type: ignore[union-attr]
    for t in root.findall("c:templateId", NS):
        if t.get("root") == "1.2.250.1.213.1.1.1.13":
            t.set("extension", "2023.01")
    assert cda.volet_of(root)[0].name == "VSM_2023.01"  # type: ignore[union-attr]


# --- deliberately broken copies: each fails on the rule it breaks -----------------------------------------


def _drop_section(root: etree._Element, template: str) -> None:
    section = root.xpath(f"//c:section[c:templateId/@root='{template}']", namespaces=NS)[0]
    component = section.getparent()
    component.getparent().remove(component)


def test_missing_required_section(cda: CdaValidator) -> None:
    root = parse(PACKAGE / "ExemplesCDA" / "VSM_1.4_2022.01.xml")
    _drop_section(root, "1.2.250.1.213.1.1.2.32")
    report = cda.validate(root)
    assert [(f.id, f.location) for f in report.errors] == [
        ("variables-5", "/cda:ClinicalDocument[1]/cda:component[1]/cda:structuredBody[1]")
    ]
    assert "Traitement au long cours" in report.errors[0].message
    assert report.errors[0].source == "schematron CI-SIS_VSM_1.4_2022.01.sch"


def test_wrong_document_code(cda: CdaValidator) -> None:
    root = parse(PACKAGE / "ExemplesCDA" / "LDL-SES_2022.01.xml")
    code = root.find("c:code", NS)
    assert code is not None
    code.set("code", "11488-4")
    report = cda.validate(root)
    assert [(f.id, f.location) for f in report.errors] == [("Entete_LDL-SES-1", "/cda:ClinicalDocument[1]")]
    assert '@code="11490-0"' in report.errors[0].message


def test_code_outside_its_value_set(cda: CdaValidator) -> None:
    root = parse(PACKAGE / "ExemplesCDA" / "BIO-TROD_2024.01_COVID-19.xml")
    value = root.xpath("//c:observation/c:value[@code='260385009']", namespaces=NS)[0]
    value.set("code", "999999999")
    report = cda.validate(root)
    assert len(report.errors) == 1
    failure = report.errors[0]
    assert failure.id.startswith("JDV_ResultatDepistage_CISIS-")
    assert (
        "doit faire partie du jeu de valeurs ../jeuxDeValeurs/JDV_ResultatDepistage_CISIS.xml"
        in failure.message
    )
    assert root.xpath(failure.location, namespaces={"cda": NS["c"]}) == [value]


def test_schema_invalid_element_order(cda: CdaValidator) -> None:
    root = parse(ROOT / "cda_samples" / "LDL-SES-cr-hospitalisation.xml")
    title = root.find("c:title", NS)
    assert title is not None
    root.remove(title)
    root.append(title)  # title after the body: CDA_extended.xsd refuses it
    report = cda.validate(root)
    assert [f.id for f in report.errors] == ["CDA_extended.xsd"]
    assert "title" in report.errors[0].message


def test_level1_document_against_the_structuration_minimale(cda: CdaValidator) -> None:
    root = parse(PACKAGE / "ExemplesCDA" / "DOC_NON_STRUCTURE_CDA-R2-N1.xml")
    birth = root.find("c:recordTarget/c:patientRole/c:patient/c:birthTime", NS)
    assert birth is not None
    birth.getparent().remove(birth)
    report = cda.validate(root)
    assert report.errors and all(f.source.endswith("ASIP-STRUCT-MIN-StrucMin.sch") for f in report.errors)
    assert any("traits de l'INS" in f.message for f in report.errors)
    # The package lacks one of the vocabularies the structuration minimale reads: the check that
    # needs it is a warning naming the missing file, not a failure of every document.
    assert any("voc-1.2.250.1.213.1.1.5.471-DYNAMIC.xml is missing" in f.message for f in report.warnings)
    assert any("voc-1.2.250.1.213.1.1.5.471-DYNAMIC.xml" in n for n in report.notes)


def test_package_without_schema(tmp_path: Path) -> None:
    from carnet.profiles.terminology import load

    with pytest.raises(
        PackageError, match="CI-SIS_BIO-CR-BIO_2024.01.sch does not exist in the schematron package"
    ):
        CdaValidator(tmp_path, load()).validate(parse(SAMPLES[0]))


def test_cli_validate() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "carnet.cli", "cda", "validate", *args, "--package", str(PACKAGE)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    good = run(str(ROOT / "cda_samples" / "DLU-EHPAD-liaison-urgence.xml"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "valid against CDA_extended.xsd and schematrons/CI-SIS_DLU-EHPAD-DLU_2022.01.sch" in good.stdout
    broken = ROOT / "cda_samples" / "DLU-EHPAD-liaison-urgence.xml"
    root = parse(broken)
    code = root.find("c:code", NS)
    assert code is not None
    code.set("code", "34133-9")
    copy = Path(subprocess.check_output(["mktemp", "--suffix=.xml"], text=True).strip())
    try:
        copy.write_bytes(etree.tostring(root))
        bad = run(str(copy), "--format", "json")
        assert bad.returncode == 1
        report = json.loads(bad.stdout)
        assert report["valid"] is False and report["volet"] == "DLU-EHPAD-DLU_2022.01"
        assert [(e["id"], e["location"]) for e in report["errors"]] == [
            ("Entete_DLU-DLU-2", "/cda:ClinicalDocument[1]")
        ]
    finally:
        copy.unlink()
    unusable = run(str(ROOT / "README.md"))
    assert unusable.returncode == 2 and "not well-formed XML" in unusable.stderr


# --- the compiler itself, on schemas written here ---------------------------------------------------------

SCH = 'xmlns="http://purl.oclc.org/dsdl/schematron"'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run_schema(schema: Path, xml: str) -> list[tuple[str, str, str, str]]:
    failures = Engine().validate(etree.fromstring(xml.encode()), schema)
    return [(f.id, f.role, f.location, f.message) for f in failures]


def test_first_matching_rule_per_pattern_and_independent_patterns(tmp_path: Path) -> None:
    schema = write(
        tmp_path / "s.sch",
        f"""<schema {SCH} queryBinding="xslt2">
          <pattern id="p1">
            <rule context="item[@special]"><assert test="false()">special</assert></rule>
            <rule context="item">
              <assert test="@id">item <value-of select="count(preceding-sibling::*) + 1"/>
                needs an id</assert>
            </rule>
            <rule context=" item "><assert test="false()">shadowed</assert></rule>
          </pattern>
          <pattern id="p2">
            <rule context="item"><report test="@special" role="warning">seen <name/></report></rule>
          </pattern>
        </schema>""",
    )
    assert compile_schema(schema).notes == [
        "pattern 'p1': a rule repeats the context item; its assertions never run"
    ]
    found = run_schema(schema, "<list><item special='1'/><item id='a'/><item/></list>")
    assert found == [
        ("p1-1", "error", "/list[1]/item[1]", "special"),
        ("p1-2", "error", "/list[1]/item[3]", "item 3 needs an id"),
        ("p2-1", "warning", "/list[1]/item[1]", "seen item"),
    ]


def test_abstract_patterns_extends_includes_and_missing_files(tmp_path: Path) -> None:
    write(
        tmp_path / "vs" / "Codes.xml",
        '<svs:Root xmlns:svs="urn:ihe:iti:svs:2008"><svs:Concept code="A"/></svs:Root>',
    )
    # Authored on a case-insensitive system: the include names "Abstract/", the folder is "abstract/".
    write(
        tmp_path / "abstract" / "inSet.sch",
        f"""<pattern {SCH} abstract="true" id="inSet" xmlns:svs="urn:ihe:iti:svs:2008">
          <rule context="$elt">
            <assert test="document($vs)//svs:Concept[@code = current()/@code]"
              >not in <value-of select="$vs1"/></assert>
          </rule>
        </pattern>""",
    )
    write(
        tmp_path / "rules.sch",
        f"""<rule {SCH} abstract="true" id="hasCode">
          <assert test="@code">a code is required</assert>
        </rule>""",
    )
    schema = write(
        tmp_path / "main.sch",
        f"""<schema {SCH} queryBinding="xslt2" defaultPhase="all">
          <ns prefix="svs" uri="urn:ihe:iti:svs:2008"/>
          <include href="Abstract/inSet.sch"/>
          <pattern id="vars">
            <let name="codes" value="'vs/codes'"/><let name="gone" value="'vs/Gone.xml'"/>
          </pattern>
          <pattern id="known" is-a="inSet">
            <param name="elt" value="known"/><param name="vs" value="$codes"/>
            <param name="vs1" value="'codes'"/>
          </pattern>
          <pattern id="lost" is-a="inSet">
            <param name="elt" value="lost"/><param name="vs" value="$gone"/>
            <param name="vs1" value="'gone'"/>
          </pattern>
          <pattern id="coded">
            <include href="rules.sch"/>
            <rule context="known|lost"><extends rule="hasCode"/></rule>
          </pattern>
          <pattern id="inactive"><rule context="*"><assert test="false()">never run</assert></rule></pattern>
          <phase id="all">
            <active pattern="vars"/><active pattern="known"/><active pattern="lost"/><active pattern="coded"/>
          </phase>
        </schema>""",
    )
    compiled = compile_schema(schema)
    assert compiled.patterns == ["vars", "known", "lost", "coded"]
    assert any("Abstract/inSet.sch' resolved to abstract/inSet.sch" in n for n in compiled.notes)
    assert any("'vs/codes' resolved to vs/Codes.xml" in n for n in compiled.notes)
    assert any("'vs/Gone.xml' does not exist" in n for n in compiled.notes)
    found = run_schema(schema, "<doc><known code='A'/><known code='B'/><lost code='A'/><known/></doc>")
    assert found == [
        ("known-1", "error", "/doc[1]/known[2]", "not in codes"),
        ("known-1", "error", "/doc[1]/known[3]", "not in codes"),
        (
            "lost-1",
            "warning",
            "/doc[1]/lost[1]",
            "not in gone (not checked: vs/Gone.xml is missing from the schematron package)",
        ),
        ("hasCode-1", "error", "/doc[1]/known[3]", "a code is required"),
    ]


def test_schema_errors_are_precise(tmp_path: Path) -> None:
    missing = write(tmp_path / "a.sch", f'<schema {SCH}><include href="nowhere.sch"/></schema>')
    with pytest.raises(SchematronError, match="include 'nowhere.sch' not found"):
        compile_schema(missing)
    bad_phase = write(tmp_path / "b.sch", f'<schema {SCH} defaultPhase="x"><pattern id="p"/></schema>')
    with pytest.raises(SchematronError, match="phase 'x' is not defined"):
        compile_schema(bad_phase)
    bad_xpath = write(
        tmp_path / "c.sch",
        f'<schema {SCH}><pattern id="p"><rule context="a[["><assert test="1"/></rule></pattern></schema>',
    )
    with pytest.raises(SchematronError, match="does not compile"):
        Engine().compiled(bad_xpath)
    assert resolve_case_insensitive(tmp_path, "A.SCH") == (tmp_path / "a.sch").resolve()
    assert resolve_case_insensitive(tmp_path, "none.sch") is None
