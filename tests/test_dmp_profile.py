"""The `dmp` validation profile: every rule accepts a DMP-conformant submission and refuses a
submission that breaks it, with XDSRegistryMetadataError and a codeContext naming the rule;
the `ihe` profile (the default) adds nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from carnet.config import Settings
from carnet.profiles import ins
from carnet.profiles.cda.submission import submission_for
from carnet.profiles.dmp import DmpProfile
from carnet.profiles.terminology import load
from carnet.profiles.validation import check_profile, profile
from carnet.xds import ebrim
from carnet.xds.errors import ErrorCode, ErrorCollector
from carnet.xds.model import Author, Code, DocumentEntry, Submission
from tests.builders import Doc, patient, submit_objects_request
from tests.xds import register, response_status

SAMPLES = Path(__file__).resolve().parents[1] / "cda_samples"
INS_TEST = "1.2.250.1.213.1.4.10"


def dmp_submission() -> Submission:
    """A conformant submission: the one our LDL-SES sample publishes, with repository attributes."""
    root = etree.parse(str(SAMPLES / "LDL-SES-cr-hospitalisation.xml")).getroot()
    sub = submission_for(root, load()).submission
    de = sub.documents[0]
    de.hash, de.size, de.repository_unique_id = (
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        0,
        "1.2.250.1.999.1.1.1",
    )
    return sub


def failures(sub: Submission, **options: bool) -> list[str]:
    errors = ErrorCollector()
    DmpProfile(load(), **options)(sub, errors)
    assert all(e.code == ErrorCode.REGISTRY_METADATA_ERROR for e in errors.errors)
    return [e.context for e in errors.errors]


def entry(sub: Submission) -> DocumentEntry:
    return sub.documents[0]


def test_a_conformant_submission_passes() -> None:
    assert failures(dmp_submission()) == []


def _set_class(de: DocumentEntry) -> None:
    de.class_code = Code("11", "1.2.250.1.213.1.1.4.1", "Synthèse")


def _set_type(de: DocumentEntry) -> None:
    de.type_code = Code("28617-9", "2.16.840.1.113883.6.1")  # in J07 (CI-SIS) but not in J66 (DMP)


def _scheme(de: DocumentEntry) -> None:
    assert de.practice_setting_code is not None
    de.practice_setting_code = Code(de.practice_setting_code.code, "1.2.250.1.213.1.1.4.6")


def _format(de: DocumentEntry) -> None:
    de.format_code = Code("urn:ans:ci-sis:feuille-de-style:2023", "1.2.250.1.213.1.1.4.2.282")  # J10, not J60


def _facility(de: DocumentEntry) -> None:
    de.healthcare_facility_type_code = Code("SA99", "1.2.250.1.71.4.2.4")


def _specialty(de: DocumentEntry) -> None:
    de.authors[0].specialties = ["G15_10/SM27^Médecine interne^1.2.250.1.213.1.1.5.1"]


def _specialty_scheme(de: DocumentEntry) -> None:
    de.authors[0].specialties = ["G15_10/SM27"]


def _confidentiality(de: DocumentEntry) -> None:
    de.confidentiality_codes = [Code("L", "2.16.840.1.113883.5.25")]


def _too_many(de: DocumentEntry) -> None:
    vis = "1.2.250.1.213.1.1.4.13"
    de.confidentiality_codes += [Code(c, vis) for c in ("MASQUE_PS", "INVISIBLE_REPRESENTANTS_LEGAUX")]
    de.confidentiality_codes += [Code("R", "2.16.840.1.113883.5.25"), Code("V", "2.16.840.1.113883.5.25")]


def _invisible_and_masked(de: DocumentEntry) -> None:
    vis = "1.2.250.1.213.1.1.4.13"
    de.confidentiality_codes += [Code("INVISIBLE_PATIENT", vis), Code("MASQUE_PS", vis)]


def _service_start(de: DocumentEntry) -> None:
    de.service_start_time = None


def _legal(de: DocumentEntry) -> None:
    de.legal_authenticator = None


def _reference(de: DocumentEntry) -> None:
    de.reference_ids = ["ENC-1^^^&1.2.250.1.999.7&ISO^urn:ihe:iti:xds:2015:encounterId"]  # J197, not J231


def _not_ins(de: DocumentEntry) -> None:
    de.patient_id = "123^^^&1.2.250.1.999.5&ISO"


def _bad_key(de: DocumentEntry) -> None:
    nir = de.patient_id.split("^")[0]
    de.patient_id = f"{nir[:13]}{(int(nir[13:]) % 97) + 1:02d}^^^&{INS_TEST}&ISO"


BREAKERS: list[tuple[Callable[[DocumentEntry], None], str, str]] = [
    (_set_class, "DMP-CLASS-TYPE", "classCode '11' does not go with typeCode '11490-0'"),
    (_set_type, "DMP-VALUESET", "typeCode '28617-9'"),
    (_scheme, "DMP-VALUESET", "only with codingScheme 1.2.250.1.213.1.1.4.9"),
    (_format, "DMP-VALUESET", "formatCode 'urn:ans:ci-sis:feuille-de-style:2023'"),
    (_facility, "DMP-VALUESET", "healthcareFacilityTypeCode 'SA99'"),
    (_specialty, "DMP-VALUESET", "authorSpecialty 'G15_10/SM27' (codingScheme '1.2.250.1.213.1.1.5.1')"),
    (_specialty_scheme, "DMP-VALUESET", "has no coding scheme"),
    (_confidentiality, "DMP-VALUESET", "confidentialityCode 'L'"),
    (_too_many, "DMP-CONFIDENTIALITY", "5 confidentialityCodes"),
    (_invisible_and_masked, "DMP-CONFIDENTIALITY", "both INVISIBLE_PATIENT and MASQUE_PS"),
    (_service_start, "DMP-REQUIRED", "serviceStartTime is required"),
    (_legal, "DMP-REQUIRED", "legalAuthenticator is required"),
    (_reference, "DMP-REFERENCEID", "urn:ihe:iti:xds:2015:encounterId"),
    (_not_ins, "DMP-INS", "is none of 1.2.250.1.213.1.4.8"),
    (_bad_key, "DMP-INS", "the key"),
]


@pytest.mark.parametrize(
    ("breaker", "rule", "detail"), BREAKERS, ids=[b[0].__name__.strip("_") for b in BREAKERS]
)
def test_each_rule_refuses_what_breaks_it(
    breaker: Callable[[DocumentEntry], None], rule: str, detail: str
) -> None:
    sub = dmp_submission()
    breaker(entry(sub))
    found = failures(sub)
    assert len(found) == 1, found
    assert found[0].startswith(f"[{rule}] DocumentEntry Document01") and detail in found[0]
    ihe_errors = ErrorCollector()
    profile("ihe")(sub, ihe_errors)
    assert not ihe_errors


def test_submission_set_and_folder_patients_must_be_ins_too() -> None:
    sub = dmp_submission()
    assert sub.submission_set is not None
    sub.submission_set.patient_id = "42^^^&1.2.250.1.999.5&ISO"
    sub.submission_set.authors = [Author(specialties=["XX^x^1.2.250.1.213.1.1.4.5"])]
    found = failures(sub)
    assert [f.split("]")[0] for f in found] == ["[DMP-INS", "[DMP-VALUESET"]
    assert all("SubmissionSet SubmissionSet01" in f for f in found)


def test_invisible_and_masked_allowed_when_configured() -> None:
    sub = dmp_submission()
    _invisible_and_masked(entry(sub))
    assert failures(sub, allow_invisible_patient_with_masque_ps=True) == []


def test_the_signature_document_is_accepted() -> None:
    """DRIMbox's signature entry: E1762/ASTM, the signature class, xmldsig#, hidden from everyone."""
    sub = dmp_submission()
    sig = copy.deepcopy(entry(sub))
    sig.entry_uuid = "Signature01"
    sig.type_code = Code("E1762", "ASTM", "Full Document")
    sig.class_code = Code("urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "URN", "Digital Signature")
    sig.format_code = Code("http://www.w3.org/2000/09/xmldsig#", "URN", "Default Signature Style")
    vis = "1.2.250.1.213.1.1.4.13"
    sig.confidentiality_codes = [
        Code("N", "2.16.840.1.113883.5.25"),
        Code("MASQUE_PS", vis),
        Code("INVISIBLE_PATIENT", vis),
    ]
    sub.documents.append(sig)
    assert failures(sub) == []
    sig.class_code = Code("10", "1.2.250.1.213.1.1.4.1")
    assert [f.split("]")[0] for f in failures(sub)] == ["[DMP-CLASS-TYPE"]


@pytest.mark.parametrize(
    ("nir", "problem"),
    [
        ("279035121518989", None),  # the ANS examples' test identity
        ("207058575627097", None),  # key 97
        ("2790351215189", "15 characters"),
        ("27903512151898X", "digits"),
        ("279035121518988", "the key 88 is wrong (expected 89)"),
    ],
)
def test_nir(nir: str, problem: str | None) -> None:
    found = ins.check_nir(nir)
    assert found == problem if problem is None else problem in (found or "")


def test_nir_corsica() -> None:
    first13 = "180052A123456"
    key = ins.nir_key(first13)
    assert key == 97 - int("1800519123456") % 97
    assert ins.check_nir(f"{first13}{key:02d}") is None


def test_check_profile_follows_the_settings() -> None:
    sub = dmp_submission()
    _legal(entry(sub))
    errors = ErrorCollector()
    check_profile(sub, errors, Settings(validation_profile="ihe"))
    assert not errors
    check_profile(sub, errors, Settings(validation_profile="dmp"))
    assert [e.context.split("]")[0] for e in errors.errors] == ["[DMP-REQUIRED"]


def test_unknown_profile_is_refused_at_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARNET_VALIDATION_PROFILE", "strict")
    with pytest.raises(ValueError, match="CARNET_VALIDATION_PROFILE='strict'"):
        Settings.from_env()
    monkeypatch.setenv("CARNET_VALIDATION_PROFILE", "dmp")
    assert Settings.from_env().validation_profile == "dmp"


# --- through ITI-42 ----------------------------------------------------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.accept_any_patient = True
    return settings


def iti42_body(sub: Submission) -> bytes:
    return etree.tostring(ebrim.render_submit_objects_request(sub))


def test_iti42_under_the_dmp_profile(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    settings.validation_profile = "dmp"
    sub = dmp_submission()
    _invisible_and_masked(entry(sub))
    status, errors = response_status(register(client, iti42_body(sub)))
    assert status == "Failure"
    assert [(code, ctx.split("]")[0]) for code, ctx in errors] == [
        ("XDSRegistryMetadataError", "[DMP-CONFIDENTIALITY")
    ]
    assert response_status(register(client, iti42_body(dmp_submission()))) == ("Success", [])
    # The plain XDS.b test submission (not an INS, free-text specialty scheme) is refused...
    builder = submit_objects_request(
        patient(1), [Doc("D1", b"x", hash="a" * 40, size=1, repository_unique_id="1.2.3")]
    )
    status, errors = response_status(register(client, builder))
    assert status == "Failure" and {ctx.split("]")[0] for _, ctx in errors} >= {"[DMP-INS", "[DMP-VALUESET"}
    # ... and accepted under the default profile.
    settings.validation_profile = "ihe"
    builder = submit_objects_request(
        patient(2), [Doc("D1", b"x", hash="a" * 40, size=1, repository_unique_id="1.2.3")]
    )
    assert response_status(register(client, builder)) == ("Success", [])
