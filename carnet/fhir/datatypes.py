"""XDS datatypes <-> FHIR datatypes: times, identifiers, hashes, codes, persons and organizations.

The XDS side is the HL7 v2 string forms the registry stores (DTM, CX, XCN, XON, XTN, CE-like
``code^display^scheme``); the FHIR side is the ``fhir.resources.R4B`` datatypes. Each pair of
functions is written so that FHIR -> XDS -> FHIR gives back what was sent, for everything XDS can
hold (MHD ITI TF-3 4.5.1 and ITI TF-2 Appendix Z.9); what XDS cannot hold is refused by the callers
with a reason rather than dropped.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, date, datetime
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.contactpoint import ContactPoint
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.organization import Organization

from carnet.fhir import terminology
from carnet.registry.validate import datatypes as dt
from carnet.xds.model import Code

URI_SYSTEM = "urn:ietf:rfc:3986"

# fhir.resources types date/dateTime/instant fields as datetime and base64Binary as bytes, but also
# takes (and keeps) the FHIR text forms, which is how partial precision (a year, a month) survives:
# the helpers that produce those texts return this alias.
FhirText = Any

# ---------------------------------------------------------------------------------------------
# Times. XDS DTMs are UTC digits at any precision; FHIR dateTime carries a zone when it has a time.
# ---------------------------------------------------------------------------------------------


def dtm_from_fhir(value: object) -> str:
    """A FHIR date/dateTime/instant (as fhir.resources parsed it) -> XDS DTM at the same precision."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y%m%d%H%M%S")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    text = str(value)
    if re.fullmatch(r"\d{4}(-\d{2})?", text):  # fhir.resources keeps year and year-month as text
        return text.replace("-", "")
    raise ValueError(f"'{value}' is not a FHIR date or dateTime")


def fhir_datetime(dtm: str) -> FhirText:
    """XDS DTM -> FHIR dateTime text, keeping the precision FHIR can express (a time needs seconds)."""
    if len(dtm) == 4:
        return dtm
    if len(dtm) == 6:
        return f"{dtm[:4]}-{dtm[4:6]}"
    if len(dtm) == 8:
        return f"{dtm[:4]}-{dtm[4:6]}-{dtm[6:8]}"
    return fhir_instant(dtm)


def fhir_instant(dtm: str) -> FhirText:
    key = dt.dtm_to_key(dtm)
    return f"{key[:4]}-{key[4:6]}-{key[6:8]}T{key[8:10]}:{key[10:12]}:{key[12:14]}Z"


def instant_of(moment: datetime) -> FhirText:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they were written as UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Hashes. XDS: 40 hex digits. FHIR: base64 of the 20 raw bytes. Senders also put base64 of the hex
# text there (every MHD 4.2.3 example does, fixed on MHD master) or the hex text itself.
# ---------------------------------------------------------------------------------------------

_HEX40 = re.compile(rb"[0-9a-fA-F]{40}")


def hash_to_hex(raw: bytes) -> str | None:
    """Attachment.hash as fhir.resources decoded it -> XDS hex, or None if it is no SHA-1 at all."""
    if len(raw) == 20:
        return raw.hex()
    if len(raw) == 40 and _HEX40.fullmatch(raw):
        return raw.decode().lower()
    if len(raw) == 30:
        # 40 hex characters are also valid base64: the model decoded the hex text itself.
        text = base64.b64encode(raw)
        if _HEX40.fullmatch(text):
            return text.decode().lower()
    return None


def hash_to_fhir(hex_digest: str) -> FhirText:
    try:
        return base64.b64encode(bytes.fromhex(hex_digest)).decode()
    except ValueError:
        # Not hex (a registry row from a sender that the validator let through): keep it readable.
        return base64.b64encode(hex_digest.encode()).decode()


# ---------------------------------------------------------------------------------------------
# Unique ids and entryUUIDs (ITI TF-2 Appendix Z.9.1: OID -> urn:oid:, OID^ext -> system + value).
# ---------------------------------------------------------------------------------------------


def uuid_to_oid(urn: str) -> str:
    """urn:uuid:X -> 2.25.<integer> (ITU-T X.667): how a UUID is written where XDS wants an OID."""
    return f"2.25.{uuid.UUID(urn[len('urn:uuid:') :]).int}"


def unique_id_identifier(unique_id: str, use: str | None = "usual") -> Identifier:
    root, sep, ext = unique_id.partition("^")
    if sep:
        return Identifier(use=use, system=f"urn:oid:{root}", value=ext)
    return Identifier(use=use, system=URI_SYSTEM, value=f"urn:oid:{unique_id}")


def unique_id_of(system: str | None, value: str | None) -> str:
    """A FHIR identifier -> XDS uniqueId (``OID`` or ``OID^extension``); ValueError if it has none."""
    if not value:
        raise ValueError("the identifier has no value")
    if system and system.startswith("urn:oid:") and system != URI_SYSTEM:
        return f"{system[len('urn:oid:') :]}^{value}"
    if value.startswith("urn:oid:"):
        return value[len("urn:oid:") :]
    if value.startswith("urn:uuid:"):
        try:
            return uuid_to_oid(value)
        except ValueError as exc:
            raise ValueError(f"'{value}' is not a UUID") from exc
    if system in (None, URI_SYSTEM) and not dt.check_oid(value):
        return value
    raise ValueError(
        f"'{system + '|' if system else ''}{value}' is neither urn:oid:, urn:uuid: nor an OID with an "
        f"extension (system urn:oid:<root>)"
    )


def entry_uuid_identifier(entry_uuid: str) -> Identifier:
    return Identifier(use="official", system=URI_SYSTEM, value=entry_uuid)


def resource_id(entry_uuid: str) -> str:
    """The FHIR logical id of a registry object: its entryUUID without the urn:uuid: prefix."""
    return entry_uuid[len("urn:uuid:") :] if entry_uuid.startswith("urn:uuid:") else entry_uuid


def entry_uuid_of(resource_id_: str) -> str | None:
    candidate = f"urn:uuid:{resource_id_.lower()}"
    return candidate if not dt.check_uuid(candidate) else None


# ---------------------------------------------------------------------------------------------
# Patient identifiers: CX id^^^&OID&ISO <-> Identifier(system urn:oid:OID, value id), and the
# Patient logical id, derived from the CX so that a reference resolves without a lookup table.
# ---------------------------------------------------------------------------------------------

_ID_SAFE = re.compile(r"[A-Za-z0-9.]")


def patient_identifier(cx: str) -> Identifier | None:
    try:
        parsed = dt.parse_cx(cx)
    except ValueError:
        return None
    return Identifier(system=f"urn:oid:{parsed.assigning_authority_oid}", value=parsed.id)


def cx_of(system: str | None, value: str | None) -> str:
    """A patient Identifier -> CX; ValueError unless the system is an OID (XDS needs &OID&ISO)."""
    oid = terminology.oid_of_identifier_system(system)
    if not value:
        raise ValueError("the patient identifier has no value")
    if not oid:
        raise ValueError(
            f"patient identifier system '{system}' is not an OID (urn:oid:...): XDS patient ids are "
            f"id^^^&OID&ISO"
        )
    cx = f"{value}^^^&{oid}&ISO"
    problem = dt.check_cx(cx)
    if problem:
        raise ValueError(f"patient identifier {system}|{value}: {problem}")
    return cx


def patient_resource_id(cx: str) -> str | None:
    """CX -> Patient.id: ``<OID>-<id>``, '-' doubled and other unsafe characters as ``-XX`` (UTF-8)."""
    try:
        parsed = dt.parse_cx(cx)
    except ValueError:
        return None
    out = []
    for ch in parsed.id:
        if _ID_SAFE.fullmatch(ch):
            out.append(ch)
        elif ch == "-":
            out.append("--")
        else:
            out.extend(f"-{b:02X}" for b in ch.encode())
    rid = f"{parsed.assigning_authority_oid}-{''.join(out)}"
    return rid if len(rid) <= 64 else None  # FHIR ids are at most 64 characters


def cx_of_patient_resource_id(rid: str) -> str | None:
    oid, sep, encoded = rid.partition("-")
    if not sep or dt.check_oid(oid) or not encoded:
        return None
    raw = bytearray()
    i = 0
    while i < len(encoded):
        ch = encoded[i]
        if ch != "-":
            raw += ch.encode()
            i += 1
        elif encoded[i + 1 : i + 2] == "-":
            raw += b"-"
            i += 2
        else:
            try:
                raw.append(int(encoded[i + 1 : i + 3], 16))
            except ValueError:
                return None
            i += 3
    try:
        value = raw.decode()
    except UnicodeDecodeError:
        return None
    cx = f"{value}^^^&{oid}&ISO"
    return cx if not dt.check_cx(cx) else None


# ---------------------------------------------------------------------------------------------
# Codes
# ---------------------------------------------------------------------------------------------


def concept(code: Code) -> CodeableConcept:
    return CodeableConcept(coding=[coding(code)])


def coding(code: Code) -> Coding:
    # ebRIM needs a Name on every code, and Carnet writes the code there when the sender gave no
    # display: reading it back as a display would invent one.
    display = code.display if code.display and code.display != code.code else None
    return Coding(system=terminology.to_system(code.scheme), code=code.code, display=display)


def code_of(c: Coding) -> Code:
    """A Coding -> XDS Code; ValueError if it lacks a system or a code (XDS needs both)."""
    if not c.code:
        raise ValueError("the coding has no code")
    scheme = terminology.to_scheme(c.system)
    if not scheme:
        raise ValueError(f"code '{c.code}' has no system (XDS codes need a codingScheme)")
    return Code(code=c.code, scheme=scheme, display=c.display)


def code_of_concept(cc: CodeableConcept) -> Code:
    """The first coding of a CodeableConcept (XDS holds one code per attribute value)."""
    for c in cc.coding or []:
        return code_of(c)
    raise ValueError("the CodeableConcept has no coding")


def ce_concept(value: str) -> CodeableConcept:
    """authorRole/authorSpecialty ``code^display^scheme`` (or plain text) -> CodeableConcept."""
    parts = value.split("^")
    if len(parts) >= 3 and parts[0] and parts[2]:
        return CodeableConcept(
            coding=[Coding(system=terminology.to_system(parts[2]), code=parts[0], display=parts[1] or None)]
        )
    return CodeableConcept(text=value)


def ce_of(cc: CodeableConcept) -> str | None:
    for c in cc.coding or []:
        scheme = terminology.to_scheme(c.system)
        if c.code and scheme:
            return f"{c.code}^{c.display or ''}^{scheme}"
        if c.code:
            return c.code
    return cc.text


# ---------------------------------------------------------------------------------------------
# Persons (XCN), organizations (XON), telecoms (XTN)
# ---------------------------------------------------------------------------------------------


def _components(value: str, n: int) -> list[str]:
    parts = value.split("^")
    return parts + [""] * (n - len(parts))


def xcn_name(xcn: str) -> HumanName | None:
    p = _components(xcn, 23)
    family, given, middle, suffix, prefix = p[1].split("&")[0], p[2], p[3], p[4], p[5]
    if not (family or given or middle or prefix or suffix):
        return None
    return HumanName(
        family=family or None,
        given=[g for g in (given, *middle.split(" ")) if g] or None,
        prefix=[prefix] if prefix else None,
        suffix=[suffix] if suffix else None,
    )


def xcn_identifier(xcn: str) -> Identifier | None:
    p = _components(xcn, 23)
    if not p[0]:
        return None
    authority = p[8].split("&")
    oid = authority[1] if len(authority) > 1 else ""
    type_code = p[12]
    return Identifier(
        system=f"urn:oid:{oid}" if oid else None,
        value=p[0],
        type=CodeableConcept(coding=[Coding(system=_V2_0203, code=type_code)]) if type_code else None,
    )


_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def xcn_of(identifiers: list[Identifier] | None, names: list[HumanName] | None) -> str | None:
    """Identifier + HumanName -> XCN ``id^family^given^middle^suffix^prefix^^^&OID&ISO^^^^type``."""
    ident = _pick_identifier(identifiers or [])
    name = names[0] if names else None
    family = given = middle = prefix = suffix = ""
    if name is not None:
        family = hl7_text(name.family or "")
        givens = [hl7_text(g) for g in texts(name.given)]
        given = givens[0] if givens else ""
        middle = " ".join(givens[1:])
        prefix = hl7_text(" ".join(texts(name.prefix)))
        suffix = hl7_text(" ".join(texts(name.suffix)))
    ident_value = authority = type_code = ""
    if ident is not None and ident.value:
        ident_value = hl7_text(ident.value)
        oid = terminology.oid_of_identifier_system(ident.system)
        if oid:
            authority = f"&{oid}&ISO"
        for c in (ident.type.coding if ident.type else None) or []:
            if c.code:
                type_code = hl7_text(c.code)
                break
    if not ident_value and not family:
        return None
    return hl7_join(
        [ident_value, family, given, middle, suffix, prefix, "", "", authority, "", "", "", type_code]
    )


def texts(values: list[str | None] | None) -> list[str]:
    """A FHIR list of strings without its empty items (the models type them optional)."""
    return [v for v in values or [] if v]


def _pick_identifier(identifiers: list[Identifier]) -> Identifier | None:
    """Prefer an identifier whose system is an OID: XCN.9 can only name an OID authority."""
    for i in identifiers:
        if i.value and terminology.oid_of_identifier_system(i.system):
            return i
    for i in identifiers:
        if i.value:
            return i
    return None


def hl7_text(text: str) -> str:
    """Keep HL7 delimiters out of a component (they would shift every later component)."""
    return re.sub(r"[\^&~|\\]", " ", text).strip()


def hl7_join(components: list[str]) -> str:
    """Components joined by ``^``, the empty ones at the end left out (HL7 v2 encoding)."""
    parts = list(components)
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts)


def xon_organization(xon: str, rid: str) -> Organization:
    p = _components(xon, 10)
    authority = p[5].split("&")
    oid = authority[1] if len(authority) > 1 else ""
    ident = None
    if p[9]:
        if oid:
            ident = Identifier(system=f"urn:oid:{oid}", value=p[9])
        elif not dt.check_oid(p[9]):
            ident = Identifier(system=URI_SYSTEM, value=f"urn:oid:{p[9]}")
        else:
            ident = Identifier(value=p[9])
    return Organization(id=rid, name=p[0] or None, identifier=[ident] if ident else None)


def xon_of(org: Organization) -> str | None:
    name = hl7_text(org.name or "")
    if not name:
        return None
    ident = _pick_identifier(list(org.identifier or []))
    if ident is None or not ident.value:
        return name
    value = ident.value
    if ident.system == URI_SYSTEM and value.startswith("urn:oid:"):
        return f"{name}^^^^^^^^^{value[len('urn:oid:') :]}"
    oid = terminology.oid_of_identifier_system(ident.system)
    if oid:
        return f"{name}^^^^^&{oid}&ISO^^^^{hl7_text(value)}"
    return name  # XON.10 without an OID authority would not be globally unique (ITI TF-3)


def xtn_contact(xtn: str) -> ContactPoint | None:
    p = _components(xtn, 12)
    use, kind = p[1], p[2]
    if kind in ("Internet", "X.400") and p[3]:
        return ContactPoint(system="email" if kind == "Internet" else "other", value=p[3])
    number = p[11] or "".join(x for x in (p[4], p[5], p[6]) if x)
    if not number:
        return None
    system = {"FX": "fax", "BP": "pager"}.get(kind, "phone")
    fhir_use = {"PRN": "home", "WPN": "work"}.get(use) or ("mobile" if kind == "CP" else None)
    return ContactPoint(system=system, value=number, use=fhir_use)


def xtn_of(cp: ContactPoint) -> str | None:
    if not cp.value:
        return None
    value = hl7_text(cp.value)
    if cp.system in ("email", "url"):
        return f"^NET^Internet^{value}"
    kind = {"fax": "FX", "pager": "BP"}.get(cp.system or "", "CP" if cp.use == "mobile" else "PH")
    use = {"home": "PRN", "work": "WPN"}.get(cp.use or "", "")
    return f"^{use}^{kind}^^^^^^^^^{value}"


# ---------------------------------------------------------------------------------------------
# Binary payloads
# ---------------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
