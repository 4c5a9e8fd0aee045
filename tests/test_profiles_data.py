"""Profile data: the files under profiles/, and `carnet profiles import` rebuilding them from the
ANS exports in shared/fixtures (SVS XML in ans-cisis/jeuxDeValeurs, FHIR JSON in ans-terminology)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from carnet.profiles.nos import NosImportError, import_export
from carnet.profiles.terminology import DEFAULT_DIR, load
from tests.conftest import needs_fixtures

ROOT = Path(__file__).resolve().parents[1]
# What the fixture exports hold; J06, J52, J57, J58 and J60 come from the NOS pages (README).
IMPORTED = {
    "valuesets/J01.json",
    "valuesets/J02.json",
    "valuesets/J04.json",
    "valuesets/J07.json",
    "valuesets/J08.json",
    "valuesets/J10.json",
    "valuesets/J197.json",
    "valuesets/J231.json",
    "valuesets/J66.json",
    "conceptmaps/ASS_X16.json",
    "conceptmaps/ASS_X04.json",
    "conceptmaps/ASS_A11.json",
}


def exports() -> list[Path]:
    return [needs_fixtures("ans-cisis", "jeuxDeValeurs"), needs_fixtures("ans-terminology")]


def test_import_of_the_ans_exports_reproduces_our_files(tmp_path: Path) -> None:
    target = tmp_path / "profiles"
    shutil.copytree(DEFAULT_DIR, target)
    report = import_export(exports(), target)
    assert {str(p.relative_to(target)) for p in report.unchanged} == IMPORTED
    assert report.written == []
    assert sorted(report.missing) == ["J06", "J52", "J57", "J58", "J60"]


def test_import_into_an_empty_directory_writes_the_same_bytes(tmp_path: Path) -> None:
    target = tmp_path / "profiles"
    target.mkdir()
    for name in ("nos.json", "codesystems.json"):
        shutil.copy(DEFAULT_DIR / name, target / name)
    report = import_export(exports(), target)
    assert {str(p.relative_to(target)) for p in report.written} == IMPORTED
    for rel in IMPORTED:
        assert (target / rel).read_bytes() == (DEFAULT_DIR / rel).read_bytes(), rel


def test_an_unknown_code_system_refuses_the_import_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "profiles"
    shutil.copytree(DEFAULT_DIR, target)
    table = json.loads((target / "codesystems.json").read_text())
    table["codeSystems"] = [cs for cs in table["codeSystems"] if cs["name"] != "TRE_A03-ClasseDocument"]
    (target / "codesystems.json").write_text(json.dumps(table))
    before = {p: p.read_bytes() for p in target.rglob("*.json")}
    (target / "valuesets" / "J01.json").write_text("{}")  # would be rewritten by a successful import
    before[target / "valuesets" / "J01.json"] = b"{}"
    with pytest.raises(NosImportError, match="TRE_A03-ClasseDocument"):
        import_export(exports(), target)
    assert {p: p.read_bytes() for p in target.rglob("*.json")} == before


def test_cli_import(tmp_path: Path) -> None:
    target = tmp_path / "profiles"
    shutil.copytree(DEFAULT_DIR, target)
    (target / "valuesets" / "J08.json").unlink()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "carnet.cli",
            "profiles",
            "import",
            *map(str, exports()),
            "--profiles-dir",
            str(target),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "written    valuesets/J08.json" in res.stdout
    assert "not in the export, kept as it is: J57" in res.stdout
    assert (target / "valuesets" / "J08.json").read_bytes() == (
        DEFAULT_DIR / "valuesets" / "J08.json"
    ).read_bytes()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "carnet.cli",
            "profiles",
            "import",
            str(tmp_path / "nope"),
            "--profiles-dir",
            str(target),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "is not a directory" in bad.stderr


def test_value_sets_hold_the_dmp_sets_with_their_coding_schemes() -> None:
    data = load()
    assert ("MASQUE_PS", "1.2.250.1.213.1.1.4.13") in data.value_set("J58")
    assert ("N", "2.16.840.1.113883.5.25") in data.value_set("J58")
    assert ("N", "1.2.250.1.213.1.1.4.13") not in data.value_set("J58")
    assert ("urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "URN") in data.value_set("J57")
    assert ("99", "1.2.250.1.213.1.1.4.1") in data.value_set("J06")
    assert ("99", "1.2.250.1.213.1.1.4.1") not in data.value_set("J57")
    assert ("E1762", "ASTM") in data.value_set("J66")
    assert ("http://www.w3.org/2000/09/xmldsig#", "URN") in data.value_set("J60")
    assert [c.code for c in data.value_set("J231").concepts] == [
        "urn:ihe:iti:xds:2013:accession",
        "urn:ihe:iti:xds:2013:order",
        "urn:ihe:iti:xds:2016:studyInstanceUID",
    ]
    statuses = {c.code for c in data.value_set("J52").concepts}
    assert {"urn:asip:ci-sis:2010:StatusType:Archived", "urn:asip:ci-sis:2010:StatusType:Deleted"} <= statuses


def test_type_to_class_map_and_template_formats() -> None:
    data = load()
    x16 = data.concept_map("ASS_X16")
    assert [c.key() for c in x16.targets("11490-0", "2.16.840.1.113883.6.1")] == [
        ("10", "1.2.250.1.213.1.1.4.1")
    ]
    assert [c.key() for c in x16.targets("SYNTH", "1.2.250.1.213.1.1.4.12")] == [
        ("11", "1.2.250.1.213.1.1.4.1")
    ]
    assert [c.key() for c in x16.targets("E1762", "ASTM")] == [("urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "URN")]
    a11 = data.concept_map("ASS_A11")
    assert [c.key() for c in a11.targets("1.2.250.1.213.1.1.1.13")] == [
        ("urn:asip:ci-sis:vsm:2012", "1.2.250.1.213.1.1.4.2.282")
    ]
    assert [c.key() for c in a11.targets("1.2.250.1.213.1.1.1.55")] == [
        ("urn:ihe:lab:xd-lab:2008", "1.3.6.1.4.1.19376.1.2.3")
    ]


def test_oid_url_table() -> None:
    data = load()
    url = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
    assert data.oid_for_url(url) == "1.2.250.1.213.1.1.4.1"
    assert data.url_for_oid("1.2.250.1.213.1.1.4.1") == url
    assert (
        data.oid_for_url("http://terminology.hl7.org/CodeSystem/v3-Confidentiality")
        == "2.16.840.1.113883.5.25"
    )
    assert data.oid_for_url("https://example.org/unknown") is None
    # Every coding scheme of our value sets is in the table (so the FHIR facade can write its URL).
    schemes = {c.coding_scheme for vs in data.value_sets.values() for c in vs.concepts}
    assert {s for s in schemes if data.url_for_oid(s) is None} == set()
