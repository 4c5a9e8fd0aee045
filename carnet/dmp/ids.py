"""Patient identifiers as the DMP writes them, reduced to the registry's one canonical CX form.

A VIHF resource-id carries the INS as ``NIR^^^&1.2.250.1.213.1.4.10&ISO^NH`` (with the identifier
type code), XDS metadata as ``NIR^^^&OID&ISO``, FHIR as ``urn:oid:OID|NIR``. The policy compares
patients by equality, so every entry point reduces what it is given with ``canonical``.
"""

from __future__ import annotations

from carnet.registry.validate.datatypes import parse_cx

# INS assigning authorities (ANS): NIR, NIA, test NIR, demo NIR.
INS_OIDS = ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11")


def canonical(value: str) -> str:
    """``ID^^^&OID&ISO`` for a CX (optionally with a ^type code) or a FHIR ``system|value`` token.

    Raises ``ValueError`` with the reason when the value is neither.
    """
    value = value.strip()
    if "|" in value and "^" not in value:
        system, _, ident = value.partition("|")
        oid = system[len("urn:oid:") :] if system.startswith("urn:oid:") else ""
        if not oid or not ident:
            raise ValueError(f"'{value}' is not an identifier token of the form urn:oid:OID|ID")
        value = f"{ident}^^^&{oid}&ISO"
    parts = value.split("^")
    if len(parts) == 5 and parts[4] in ("NH", "PI", "PN", "NI"):
        # CX.5 identifier type code (the INS is written ^NH): informative, not part of the key.
        value = "^".join(parts[:4])
    return str(parse_cx(value))


def oid_and_id(patient_id: str) -> tuple[str, str]:
    """(assigning authority OID, identifier) of a canonical patient id."""
    cx = parse_cx(patient_id)
    return cx.assigning_authority_oid, cx.id
