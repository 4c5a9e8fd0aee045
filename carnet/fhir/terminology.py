"""Code systems: FHIR canonical URLs <-> XDS codingScheme values (OIDs, mostly).

XDS metadata name a code's system with an OID in the ``codingScheme`` slot; FHIR names it with a
URL. The French (ANS NOS) systems come from the project's code-system table,
``profiles/codesystems.json`` (read by ``carnet.profiles.terminology``); the international systems
XDS metadata use (IHE, HL7, LOINC, SNOMED CT, ICD-10, DICOM) are listed here. Where both name an
OID, the URL below is the one written, because MHD consumers expect the HL7/IHE canonicals
(``v3-Confidentiality`` rather than TRE_A08, the IHE format code system rather than TRE_A11);
every URL of either table is read.

Systems in neither table map losslessly: ``urn:oid:X`` <-> ``X``, and any other URL is kept as the
codingScheme itself (and written back unchanged), so nothing is lost in either direction.
"""

from __future__ import annotations

import functools

from carnet.profiles.terminology import DEFAULT_DIR, read_code_systems

# (XDS codingScheme, [FHIR system URLs, the one written first])
INTERNATIONAL: list[tuple[str, list[str]]] = [
    ("2.16.840.1.113883.6.1", ["http://loinc.org"]),
    ("2.16.840.1.113883.6.96", ["http://snomed.info/sct"]),
    ("2.16.840.1.113883.6.3", ["http://hl7.org/fhir/sid/icd-10"]),
    ("2.16.840.1.113883.5.25", ["http://terminology.hl7.org/CodeSystem/v3-Confidentiality"]),
    ("2.16.840.1.113883.5.4", ["http://terminology.hl7.org/CodeSystem/v3-ActCode"]),
    ("2.16.840.1.113883.5.111", ["http://terminology.hl7.org/CodeSystem/v3-RoleCode"]),
    ("1.2.840.10008.2.16.4", ["http://dicom.nema.org/resources/ontology/DCM"]),
    (
        "1.3.6.1.4.1.19376.1.2.3",
        [
            "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
            "https://profiles.ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
        ],
    ),
    # The PDSm replace example spells TRE_A07 "StatusVisibilite"; the NOS name is "StatutVisibilite".
    (
        "1.2.250.1.213.1.1.4.13",
        [
            "https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument",
            "https://mos.esante.gouv.fr/NOS/TRE_A07-StatusVisibiliteDocument/FHIR/TRE-A07-StatusVisibiliteDocument",
        ],
    ),
]


@functools.cache
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    to_url: dict[str, str] = {}
    to_scheme: dict[str, str] = {}
    for cs in read_code_systems(DEFAULT_DIR / "codesystems.json"):
        to_url.setdefault(cs.oid, cs.url)
        for url in (cs.url, *cs.aliases):
            to_scheme.setdefault(url, cs.oid)
    for scheme, urls in INTERNATIONAL:
        to_url[scheme] = urls[0]
        for url in urls:
            to_scheme[url] = scheme
    return to_url, to_scheme


def to_scheme(system: str | None) -> str | None:
    """FHIR Coding.system -> XDS codingScheme (None when the coding names no system)."""
    if not system:
        return None
    known = _tables()[1].get(system)
    if known:
        return known
    if system.startswith("urn:oid:"):
        return system[len("urn:oid:") :]
    return system


def to_system(scheme: str | None) -> str | None:
    """XDS codingScheme -> FHIR Coding.system."""
    if not scheme:
        return None
    known = _tables()[0].get(scheme)
    if known:
        return known
    if is_oid(scheme):
        return f"urn:oid:{scheme}"
    return scheme


def is_oid(value: str) -> bool:
    parts = value.split(".")
    return len(parts) >= 2 and all(p.isdigit() for p in parts)


def oid_of_identifier_system(system: str | None) -> str | None:
    """The OID an Identifier.system stands for (``urn:oid:X`` or a known URL), else None."""
    if not system:
        return None
    if system.startswith("urn:oid:"):
        return system[len("urn:oid:") :]
    scheme = _tables()[1].get(system)
    return scheme if scheme and is_oid(scheme) else None
