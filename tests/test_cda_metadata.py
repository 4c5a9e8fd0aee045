"""CDA header -> DocumentEntry metadata, on every ANS example (shared/fixtures/ans-cisis/ExemplesCDA)
and on our own samples; `carnet cda metadata --format json`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from carnet.profiles.cda.header import CdaError, derive, ts_to_dtm
from carnet.profiles.dmp import DmpProfile
from carnet.profiles.terminology import load
from carnet.registry.validate.submission import check_document_entry
from carnet.xds.errors import ErrorCollector
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = FIXTURES / "ans-cisis" / "ExemplesCDA"
NS = {"c": "urn:hl7-org:v3"}
SAMPLES = sorted((ROOT / "cda_samples").glob("*.xml"))
DOCUMENTS = sorted(EXAMPLES.glob("*.xml")) + SAMPLES
# The CSE-MDE example carries a NIR under the production INS authority whose key is wrong
# (222127505611201: the key of 2221275056112 is 47); the DMP refuses it, and so do we.
INVALID_INS = {"CSE-MDE_2023.01.xml"}


def one(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    assert found, path
    return str(found[0])


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load()


def test_the_examples_are_there() -> None:
    if not EXAMPLES.exists():
        pytest.skip("shared fixtures not available")
    assert len(list(EXAMPLES.glob("*.xml"))) == 15
    assert len(SAMPLES) == 4


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_metadata_matches_the_header(path: Path, data) -> None:  # type: ignore[no-untyped-def]
    root = etree.parse(str(path)).getroot()
    derived = derive(root, data)
    de = derived.entry
    assert derived.problems == []

    doc_id = root.find("c:id", NS)
    assert doc_id is not None
    assert de.unique_id == doc_id.get("root") + (
        f"^{doc_id.get('extension')}" if doc_id.get("extension") else ""
    )
    ins = root.xpath(
        "c:recordTarget/c:patientRole/c:id[starts-with(@root, '1.2.250.1.213.1.4.')]", namespaces=NS
    )[0]
    assert de.patient_id == f"{ins.get('extension')}^^^&{ins.get('root')}&ISO"
    assert de.type_code is not None and de.type_code.key() == (
        one(root, "c:code/@code"),
        one(root, "c:code/@codeSystem"),
    )
    assert [c.key() for c in de.confidentiality_codes] == [
        (one(root, "c:confidentialityCode/@code"), one(root, "c:confidentialityCode/@codeSystem"))
    ]
    facility = "c:componentOf/c:encompassingEncounter/c:location/c:healthCareFacility/c:code"
    assert de.healthcare_facility_type_code is not None
    assert de.healthcare_facility_type_code.key() == (
        one(root, f"{facility}/@code"),
        one(root, f"{facility}/@codeSystem"),
    )
    assert de.practice_setting_code is not None
    performer = "c:documentationOf/c:serviceEvent/c:performer/c:assignedEntity/c:representedOrganization"
    assert de.practice_setting_code.code == one(root, f"{performer}/c:standardIndustryClassCode/@code")
    assert de.creation_time == ts_to_dtm(one(root, "c:effectiveTime/@value"))
    assert de.service_start_time == ts_to_dtm(
        one(root, "c:documentationOf/c:serviceEvent/c:effectiveTime/c:low/@value")
    )
    assert de.language_code == one(root, "c:languageCode/@code")
    assert de.title == " ".join((root.findtext("c:title", namespaces=NS) or "").split())
    authors = root.xpath("c:author/c:assignedAuthor", namespaces=NS)
    assert len(de.authors) == len(authors)
    for author, a in zip(de.authors, authors, strict=True):
        assert author.person is not None and author.person.startswith(one(a, "c:id/@extension") + "^")
        assert author.specialties == [
            f"{one(a, 'c:code/@code')}^{one(a, 'c:code/@displayName')}^{one(a, 'c:code/@codeSystem')}"
        ]
    legal_id = one(root, "c:legalAuthenticator/c:assignedEntity/c:id/@extension")
    assert de.legal_authenticator is not None and de.legal_authenticator.split("^")[0] == legal_id
    events = root.xpath("c:documentationOf/c:serviceEvent/c:code[@code]", namespaces=NS)
    assert [c.code for c in de.event_codes] == [e.get("code") for e in events]
    # classCode and formatCode come through the NOS maps; check them against the maps' own data.
    x16 = data.concept_map("ASS_X16").targets(de.type_code.code, de.type_code.scheme)
    assert de.class_code is not None and de.class_code.key() == x16[0].key()
    assert de.format_code is not None
    if root.find("c:component/c:nonXMLBody", NS) is not None:
        assert (
            de.format_code.code
            == data.cda.media_type_format_codes[one(root, "c:component/c:nonXMLBody/c:text/@mediaType")]
        )
    else:
        templates = {t.get("root") for t in root.findall("c:templateId", NS)}
        mapped = {t.code for r in templates for t in data.concept_map("ASS_A11").targets(r)}
        mapped |= {data.cda.format_codes[r] for r in templates if r in data.cda.format_codes}
        assert {de.format_code.code} == mapped
    # The entry passes the XDS.b rules (but for what the repository fills in) and, as the DMP
    # accepts these examples, the dmp profile.
    errors = ErrorCollector()
    check_document_entry(de, errors, require_repository_attrs=False)
    assert not errors, errors.errors
    DmpProfile(data).check_document_entry(de, errors)
    if path.name in INVALID_INS:
        assert [e.context.split(":")[0] for e in errors.errors] == ["[DMP-INS] DocumentEntry Document01"]
        assert "the key 01 is wrong (expected 47)" in errors.errors[0].context
    else:
        assert not errors, errors.errors


@pytest.mark.parametrize(
    ("ts", "dtm"),
    [
        ("20191203133000+0100", "20191203123000"),
        ("20240102003000+0200", "20240101223000"),
        ("202101040735+0100", "202101040635"),
        ("20240605080500-0500", "20240605130500"),
        ("20191203133000", "20191203133000"),
        ("20191203", "20191203"),
        ("20191203133000.123+0000", "20191203133000"),
        ("nonsense", None),
        ("", None),
    ],
)
def test_times_become_utc_dtm(ts: str, dtm: str | None) -> None:
    assert ts_to_dtm(ts) == dtm


def test_not_a_cda(data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CdaError, match="not a CDA R2 document"):
        derive(etree.fromstring(b"<foo/>"), data)
    root = etree.parse(str(SAMPLES[0])).getroot()
    code = root.find("c:code", NS)
    assert code is not None
    root.remove(code)
    with pytest.raises(CdaError, match="ClinicalDocument/code"):
        derive(root, data)


def test_an_unmapped_template_is_a_problem_not_a_guess(data) -> None:  # type: ignore[no-untyped-def]
    root = etree.parse(str(ROOT / "cda_samples" / "VSM-synthese-medicale.xml")).getroot()
    for t in root.findall("c:templateId", NS):
        if t.get("root") == "1.2.250.1.213.1.1.1.13":
            t.set("root", "1.2.250.1.999.77")
    derived = derive(root, data)
    assert derived.entry.format_code is None
    assert derived.problems == [
        "no templateId of the document is in ASS_A11: the formatCode cannot be derived"
    ]


def test_cli_metadata_json() -> None:
    sample = ROOT / "cda_samples" / "BIO-CR-BIO-glycemie.xml"
    res = subprocess.run(
        [sys.executable, "-m", "carnet.cli", "cda", "metadata", str(sample), "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    meta = json.loads(res.stdout)
    assert meta["patientId"] == "185077511204372^^^&1.2.250.1.213.1.4.10&ISO"
    assert meta["uniqueId"] == "1.2.250.1.999.4.3.1"
    assert meta["typeCode"] == {
        "code": "11502-2",
        "codingScheme": "2.16.840.1.113883.6.1",
        "displayName": "CR d'examens biologiques",
    }
    assert meta["classCode"] == {
        "code": "10",
        "codingScheme": "1.2.250.1.213.1.1.4.1",
        "displayName": "Compte rendu",
    }
    assert meta["formatCode"]["code"] == "urn:ihe:lab:xd-lab:2008"
    assert meta["formatCode"]["codingScheme"] == "1.3.6.1.4.1.19376.1.2.3"
    assert meta["healthcareFacilityTypeCode"]["code"] == "SA25"
    assert meta["practiceSettingCode"]["code"] == "AMBULATOIRE"
    assert meta["confidentialityCode"] == [
        {"code": "N", "codingScheme": "2.16.840.1.113883.5.25", "displayName": "Normal"}
    ]
    assert [e["code"] for e in meta["eventCodeList"]] == ["18719-5"]
    assert meta["creationTime"] == "20240605151000"
    assert meta["serviceStartTime"] == "20240605060500" and meta["serviceStopTime"] == "20240605143000"
    assert meta["author"][0]["authorPerson"].startswith("899900000037^PETIT-TEST^Louise^")
    assert meta["author"][0]["authorSpecialty"] == [
        "G15_10/SM03^Médecin - Biologie médicale (SM)^1.2.250.1.213.1.1.4.5"
    ]
    assert meta["legalAuthenticator"].startswith("899900000037^PETIT-TEST")
    assert meta["languageCode"] == "fr-FR" and meta["title"] == "Compte rendu d'examens biologiques"
    bad = subprocess.run(
        [sys.executable, "-m", "carnet.cli", "cda", "metadata", str(ROOT / "README.md")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "not well-formed XML" in bad.stderr
