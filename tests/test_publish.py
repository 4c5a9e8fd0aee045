"""Simple publication of a CDA document (POST /publish, `carnet publish`) and CDA validation of
submissions (CARNET_CDA_VALIDATION off / warn / reject), on ITI-41 and /publish alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select

from carnet.config import Settings
from carnet.db import read_session, write_transaction
from carnet.registry import patients
from carnet.registry.schema import AuditEventRow, DocumentEntryRow, StoredDocumentRow
from carnet.xds import vocabulary as v
from tests.builders import Doc, provide_and_register
from tests.conftest import FIXTURES
from tests.test_repository import post_iti41, retrieve
from tests.xds import query

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "cda_samples"
PACKAGE = FIXTURES / "ans-cisis"
NS = {"c": "urn:hl7-org:v3"}
BIO = SAMPLES / "BIO-CR-BIO-glycemie.xml"
BIO_PATIENT = "185077511204372^^^&1.2.250.1.213.1.4.10&ISO"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


def known(engine, pid: str) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(engine) as session:
        patients.upsert(session, pid)


def rows(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(DocumentEntryRow)) or 0,
            s.scalar(select(func.count()).select_from(StoredDocumentRow)) or 0,
        )


def blobs(settings: Settings) -> list[Path]:
    return [p for p in settings.blob_dir.rglob("*") if p.is_file()]


def broken_bio() -> bytes:
    """Our CR-BIO sample without the mandatory document-copy section."""
    root = etree.parse(str(BIO)).getroot()
    section = root.xpath("//c:section[c:templateId/@root='1.2.250.1.213.1.1.2.243']", namespaces=NS)[0]
    component = section.getparent()
    component.getparent().remove(component)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_publish_over_http_with_the_cli(live_server: str, carnet, client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    settings.validation_profile = "dmp"

    def publish(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "carnet.cli", "publish", str(path), "--url", live_server],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = publish(BIO)
    assert refused.returncode == 1
    answer = json.loads(refused.stderr)
    assert answer["status"] == "Failure"
    assert [e["code"] for e in answer["errors"]] == ["XDSUnknownPatientId"]
    assert rows(carnet.engine) == (0, 0) and blobs(settings) == []

    known(carnet.engine, BIO_PATIENT)
    done = publish(BIO)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == "Success" and answer["warnings"] == []
    assert answer["uniqueId"] == "1.2.250.1.999.4.3.1" and answer["patientId"] == BIO_PATIENT
    assert answer["entryUUID"].startswith("urn:uuid:") and answer["submissionSetUniqueId"].startswith("2.25.")
    assert rows(carnet.engine) == (1, 1)

    # The document is stored byte-exact and registered with the metadata of its header.
    _, docs = retrieve(client, [(settings.repository_unique_id, "1.2.250.1.999.4.3.1")])
    assert docs == {"1.2.250.1.999.4.3.1": BIO.read_bytes()}
    found = query(
        client,
        FIND_DOCUMENTS,
        [
            ("$XDSDocumentEntryPatientId", [f"'{BIO_PATIENT}'"]),
            ("$XDSDocumentEntryStatus", [f"('{v.APPROVED}')"]),
        ],
    )
    assert found.status == "Success" and len(found.documents) == 1
    de = found.documents[0]
    schemes = {
        c.get("classificationScheme"): c.get("nodeRepresentation")
        for c in de.findall(f"{{{v.RIM}}}Classification")
    }
    assert schemes[v.DE_CLASS_CODE] == "10" and schemes[v.DE_FORMAT_CODE] == "urn:ihe:lab:xd-lab:2008"
    assert schemes[v.DE_TYPE_CODE] == "11502-2" and schemes[v.DE_HCFT_CODE] == "SA25"
    with read_session(carnet.engine) as s:
        audit = s.scalars(select(AuditEventRow).where(AuditEventRow.transaction == "CDA-PUBLISH")).all()
    assert [(a.outcome, a.patient_id) for a in audit] == [(8, BIO_PATIENT), (0, BIO_PATIENT)]


def test_publish_refusals(client, carnet, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    known(carnet.engine, BIO_PATIENT)
    wrong_type = client.post("/publish", data=BIO.read_bytes(), content_type="text/plain")
    assert wrong_type.status_code == 415
    not_xml = client.post("/publish", data=b"<ClinicalDocument", content_type="text/xml")
    assert not_xml.status_code == 400 and "not well-formed XML" in not_xml.get_json()["errors"][0]["context"]
    not_cda = client.post("/publish", data=b"<a/>", content_type="application/xml")
    assert (
        not_cda.status_code == 400 and "not a CDA R2 document" in not_cda.get_json()["errors"][0]["context"]
    )
    # Under the dmp profile a rule failure is a 422 naming the rule; nothing is stored.
    settings.validation_profile = "dmp"
    root = etree.parse(str(BIO)).getroot()
    legal = root.find("c:legalAuthenticator", NS)
    assert legal is not None
    root.remove(legal)
    refused = client.post("/publish", data=etree.tostring(root), content_type="text/xml")
    assert refused.status_code == 422
    assert [e["context"].split("]")[0] for e in refused.get_json()["errors"]] == ["[DMP-REQUIRED"]
    assert rows(carnet.engine) == (0, 0) and blobs(settings) == []
    accepted = client.post("/publish", data=BIO.read_bytes(), content_type="text/xml")
    assert accepted.status_code == 201, accepted.get_json()


@pytest.mark.skipif(not PACKAGE.exists(), reason="shared fixtures not available")
def test_cda_validation_reject_and_warn(client, carnet, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    known(carnet.engine, BIO_PATIENT)
    settings.cda_schematron_dir = PACKAGE
    settings.cda_validation = "reject"
    refused = client.post("/publish", data=broken_bio(), content_type="text/xml")
    assert refused.status_code == 422
    errors = refused.get_json()["errors"]
    assert len(errors) == 1 and errors[0]["code"] == "XDSRepositoryMetadataError"
    assert (
        "CDA not valid against BIO-CR-BIO_2024.01 (schematron CI-SIS_BIO-CR-BIO_2024.01.sch)"
        in errors[0]["context"]
    )
    assert errors[0]["location"] == "/cda:ClinicalDocument[1]/cda:component[1]/cda:structuredBody[1]"
    assert rows(carnet.engine) == (0, 0) and blobs(settings) == []

    # ITI-41 goes through the same check: the report is in the RegistryErrorList.
    body = provide_and_register(BIO_PATIENT, [Doc("Doc1", broken_bio(), mime_type="text/xml")])
    status, errs = post_iti41(client, body)
    assert status == "Failure"
    assert [code for code, _ in errs] == ["XDSRepositoryMetadataError"]
    assert "CDA not valid against BIO-CR-BIO_2024.01 (schematron CI-SIS_BIO-CR-BIO_2024.01.sch)" in errs[0][1]
    assert rows(carnet.engine) == (0, 0) and blobs(settings) == []
    # A valid CDA and a non-CDA document pass.
    ok = provide_and_register(
        BIO_PATIENT, [Doc("Doc1", BIO.read_bytes(), mime_type="text/xml"), Doc("Doc2", b"plain")]
    )
    assert post_iti41(client, ok) == ("Success", [])

    settings.cda_validation = "warn"
    warned = client.post("/publish", data=broken_bio(), content_type="text/xml")
    assert warned.status_code == 201
    warnings = warned.get_json()["warnings"]
    assert [w["location"] for w in warnings] == [
        "/cda:ClinicalDocument[1]/cda:component[1]/cda:structuredBody[1]"
    ]


def test_cda_validation_needs_a_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARNET_CDA_VALIDATION", "reject")
    monkeypatch.delenv("CARNET_CDA_SCHEMATRON_DIR", raising=False)
    with pytest.raises(ValueError, match="needs CARNET_CDA_SCHEMATRON_DIR"):
        Settings.from_env()
    monkeypatch.setenv("CARNET_CDA_VALIDATION", "sometimes")
    with pytest.raises(ValueError, match="use off, warn or reject"):
        Settings.from_env()


def test_publish_cli_cannot_reach_the_server() -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "carnet.cli",
            "publish",
            str(BIO),
            "--url",
            "http://127.0.0.1:9",
            "--timeout",
            "5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "cannot reach" in res.stderr
