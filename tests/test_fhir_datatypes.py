"""The XDS <-> FHIR datatype conversions on their own: times, hashes, identifiers, Patient ids,
persons and organizations, code systems, search dates."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.organization import Organization

from carnet.fhir import datatypes as fdt
from carnet.fhir import terminology
from carnet.fhir.outcome import FHIRError
from carnet.fhir.search import date_value, split_or, token


@pytest.mark.parametrize(
    ("value", "dtm"),
    [
        (datetime(2020, 2, 1, 23, 50, 50, tzinfo=timezone(timedelta(hours=-5))), "20200202045050"),
        (datetime(2024, 1, 15, 10, 30, tzinfo=UTC), "20240115103000"),
        (date(1970, 1, 1), "19700101"),
        ("2020", "2020"),
        ("2020-02", "202002"),
    ],
)
def test_fhir_times_become_utc_dtms_at_their_precision(value: object, dtm: str) -> None:
    assert fdt.dtm_from_fhir(value) == dtm


@pytest.mark.parametrize(
    ("dtm", "text"),
    [
        ("2020", "2020"),
        ("202002", "2020-02"),
        ("20200201", "2020-02-01"),
        ("2020020104", "2020-02-01T04:00:00Z"),
    ],
)
def test_dtms_become_fhir_datetimes(dtm: str, text: str) -> None:
    assert fdt.fhir_datetime(dtm) == text


def test_hash_forms() -> None:
    digest = hashlib.sha1(b"Hello World").digest()
    hex_ = digest.hex()
    assert fdt.hash_to_hex(digest) == hex_  # base64 of the raw digest, decoded by the model
    assert fdt.hash_to_hex(hex_.encode()) == hex_  # base64 of the hex text
    assert fdt.hash_to_hex(base64.b64decode(hex_)) == hex_  # the hex text itself, read as base64
    assert fdt.hash_to_hex(b"short") is None
    assert base64.b64decode(fdt.hash_to_fhir(hex_)) == digest


@pytest.mark.parametrize(
    ("system", "value", "unique_id"),
    [
        ("urn:ietf:rfc:3986", "urn:oid:1.2.3.4", "1.2.3.4"),
        (None, "urn:oid:1.2.3.4", "1.2.3.4"),
        ("urn:oid:1.2.3.4", "EXT-1", "1.2.3.4^EXT-1"),
        ("urn:ietf:rfc:3986", "urn:uuid:00000000-0000-0000-0000-000000000001", "2.25.1"),
        (None, "1.2.3", "1.2.3"),
    ],
)
def test_unique_ids(system: str | None, value: str, unique_id: str) -> None:
    assert fdt.unique_id_of(system, value) == unique_id
    back = fdt.unique_id_identifier(unique_id)
    if "^" not in unique_id and not unique_id.startswith("2.25."):
        assert (back.system, back.value) == ("urn:ietf:rfc:3986", f"urn:oid:{unique_id}")


def test_unique_id_refusals() -> None:
    with pytest.raises(ValueError, match="neither urn:oid:"):
        fdt.unique_id_of("http://example.org", "abc")


@pytest.mark.parametrize(
    "cx",
    [
        "280000000000001^^^&1.2.250.1.213.1.4.10&ISO",
        "mrn-1234^^^&1.2.3&ISO",
        "a b/c_é^^^&1.2.3.4&ISO",
        "x--y^^^&1.2&ISO",
    ],
)
def test_patient_resource_ids_round_trip(cx: str) -> None:
    rid = fdt.patient_resource_id(cx)
    assert rid is not None and all(c.isalnum() or c in "-." for c in rid) and len(rid) <= 64
    assert fdt.cx_of_patient_resource_id(rid) == cx


def test_patient_resource_id_refusals() -> None:
    assert fdt.patient_resource_id("1^^^&1.2&ISO".replace("1^", "9" * 70 + "^")) is None  # over 64
    assert fdt.cx_of_patient_resource_id("ex-patient") is None
    assert fdt.cx_of_patient_resource_id("1.2.3-ab-zz") is None


def test_xcn_round_trip() -> None:
    xcn = "801234567890^MEDECIN^Alice^Marie Jeanne^III^Dr^^^&1.2.250.1.71.4.2.1&ISO^^^^IDNPS"
    ident, name = fdt.xcn_identifier(xcn), fdt.xcn_name(xcn)
    assert ident is not None and name is not None
    assert name.given == ["Alice", "Marie", "Jeanne"] and name.prefix == ["Dr"] and name.suffix == ["III"]
    assert fdt.xcn_of([ident], [name]) == xcn
    # HL7 delimiters inside a FHIR name cannot shift the components.
    assert fdt.xcn_of(None, [HumanName(family="A^B&C")]) == "^A B C"
    assert fdt.xcn_of([Identifier(value="1")], None) == "1"
    assert fdt.xcn_of(None, None) is None


def test_xon_round_trip() -> None:
    xon = "Hopital Test^^^^^&1.2.250.1.71.4.2.2&ISO^^^^123456789"
    org = fdt.xon_organization(xon, "o")
    assert fdt.xon_of(org) == xon
    assert fdt.xon_of(fdt.xon_organization("CHU^^^^^^^^^1.2.3.4", "o")) == "CHU^^^^^^^^^1.2.3.4"
    # An identifier without an OID authority would not be globally unique in XCN.10: left out.
    assert fdt.xon_of(Organization(name="X", identifier=[Identifier(system="http://x", value="1")])) == "X"


def test_xtn_round_trip() -> None:
    for xtn in ("^NET^Internet^iti@ihe.net", "^WPN^PH^^^^^^^^^+33123456789", "^PRN^FX^^^^^^^^^0102030405"):
        cp = fdt.xtn_contact(xtn)
        assert cp is not None and fdt.xtn_of(cp) == xtn


def test_code_systems() -> None:
    assert terminology.to_system("2.16.840.1.113883.6.1") == "http://loinc.org"
    assert terminology.to_scheme("http://loinc.org") == "2.16.840.1.113883.6.1"
    # ANS systems come from profiles/codesystems.json.
    tre_a03 = "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
    assert terminology.to_system("1.2.250.1.213.1.1.4.1") == tre_a03
    assert terminology.to_scheme(tre_a03) == "1.2.250.1.213.1.1.4.1"
    # Where both name an OID, the HL7/IHE canonical is written, every URL read.
    conf = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
    assert terminology.to_system("2.16.840.1.113883.5.25") == conf
    tre_a08 = "https://mos.esante.gouv.fr/NOS/TRE_A08-HL7Confidentiality/FHIR/TRE-A08-HL7Confidentiality"
    assert terminology.to_scheme(tre_a08) == "2.16.840.1.113883.5.25"
    # Unknown systems pass through unchanged.
    assert (
        terminology.to_system("9.8.7") == "urn:oid:9.8.7"
        and terminology.to_scheme("urn:oid:9.8.7") == "9.8.7"
    )
    assert terminology.to_scheme("http://example.org/cs") == "http://example.org/cs"
    assert terminology.to_system("http://example.org/cs") == "http://example.org/cs"


def test_search_values() -> None:
    assert split_or(r"a,b\,c,") == ["a", "b,c"]
    assert token("http://loinc.org|123") == token("http://loinc.org|123")
    assert token("123").system is None and token("|123").system == ""
    d = date_value("creation", "ge2021-06-15T14:00:00+02:00")
    assert (d.prefix, d.lo_key, d.hi_key) == ("ge", "20210615120000", "20210615120001")
    d = date_value("creation", "2021-12")
    assert (d.lo_key, d.hi_key) == ("20211201000000", "20220101000000")
    with pytest.raises(FHIRError):
        date_value("creation", "2021-02-30")
    with pytest.raises(FHIRError):
        date_value("creation", "yesterday")
