"""Validators for the HL7 v2.5 / XDS datatypes used in XDS.b metadata slot values.

ITI TF-3 Table 4.2.3.1.7-2 ("Data Types") restricts the HL7 v2.5 composite types that XDS
metadata carries as strings (CX, CXi, XCN, XON, XTN, DTM, ...). Each ``check_*`` function
here validates one such string and returns ``None`` when the value is valid or a short English
reason naming the offending component, so the caller can prefix it with the slot and object
name and raise ``XDSRegistryMetadataError``. The rules follow the Technical Framework and, where
the framework leaves room, the behaviour of IPF's XDS validators (oehf/ipf ``core.validate``),
which most XDS implementations are tested against.

A few parsers live here too because the registry needs the same reading of a value that the
validator accepted: :func:`normalize_cx` produces the patient key, :func:`parse_xcn` the
author/authenticator person fields and :func:`dtm_to_key` the sortable form of a time used by
stored-query ranges.

HL7 encoding characters used throughout: ``^`` separates components, ``&`` sub-components and
``~`` repetitions. Components are numbered from 1, as in the HL7 and IHE texts. Trailing empty
components (``a^b^^``) are meaningless in HL7 and are ignored, which is also what HAPI (and so
IPF) does.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass

__all__ = [
    "CX",
    "XCN",
    "check_cx",
    "check_cxi",
    "check_document_unique_id",
    "check_dtm",
    "check_hash",
    "check_home_community_id",
    "check_intended_recipient",
    "check_iso_hd",
    "check_language_code",
    "check_mime_type",
    "check_oid",
    "check_registry_package_unique_id",
    "check_size",
    "check_source_patient_info",
    "check_uuid",
    "check_xcn",
    "check_xon",
    "check_xtn",
    "dtm_to_key",
    "normalize_cx",
    "normalize_hash",
    "parse_cx",
    "parse_xcn",
]

# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------

# Each arc is '0' or a number without a leading zero; a leading zero would make two spellings
# of the same OID, and registries compare OIDs as strings.
_OID_RE = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")
_OID_MAX_LEN = 64

_HEX = "[0-9a-fA-F]"
_UUID_URN_RE = re.compile(rf"urn:uuid:{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")

_HASH_RE = re.compile(r"[0-9a-fA-F]{40}")

# RFC 2045 token: any printable US-ASCII except SPACE and tspecials ()<>@,;:\"/[]?=
_MIME_ATOM = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_MIME_RE = re.compile(rf"{_MIME_ATOM}/{_MIME_ATOM}")

# RFC 3066 Language-Tag = Primary-subtag *( "-" Subtag ); BCP 47 tags fit the same shape.
_LANGUAGE_RE = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")

# DocumentEntry.uniqueId extension length (ITI TF-3 4.2.3.2.26: OID^Extension, where the OID
# is at most 64 and the extension at most 16 characters, the whole at most 128).
_UNIQUE_ID_EXTENSION_MAX_LEN = 16
_UNIQUE_ID_MAX_LEN = 128

_DTM_LENGTHS = (4, 6, 8, 10, 12, 14)
# HL7 DTM allows '.S[S[S[S]]]' and '+/-ZZZZ' (or a 'Z' in some senders); XDS metadata does not.
# They are recognised only to give the sender a precise reason.
_DTM_WITH_ZONE_RE = re.compile(r"[0-9]{4,14}(\.[0-9]{1,4})?([+-][0-9]{4}|Z)")
_DTM_WITH_FRACTION_RE = re.compile(r"[0-9]{14}\.[0-9]{1,4}")

# HL7 v2.5 Table 0001 (Administrative Sex), used by PID-8.
_SEX_CODES = frozenset({"M", "F", "U", "A", "N", "O"})

# The PID segment of HL7 v2.5 has 39 fields. PID-2, PID-4, PID-12 and PID-19 are deprecated
# in v2.5, so ITI TF-3 (sourcePatientInfo) says they shall not be used; IPF rejects them too.
_PID_FIELD_COUNT = 39
_PID_DEPRECATED = frozenset({2, 4, 12, 19})
_PID_RE = re.compile(r"PID-([1-9][0-9]*)\|(.*)", re.DOTALL)

# HL7 v2.5 Table 0201 (Telecommunication Use Code) and Table 0202 (Telecommunication Equipment
# Type). XTN.3 decides which other components an authorTelecommunication value must carry.
_XTN_USE_CODES = frozenset({"PRN", "ORN", "WPN", "VHN", "ASN", "EMR", "NET", "BPN"})
_XTN_ADDRESS_TYPES = frozenset({"Internet", "X.400"})
_XTN_PHONE_TYPES = frozenset({"PH", "FX", "MD", "CP", "BP", "TDD", "TTY"})
_XTN_COMPONENTS = 12
_XCN_COMPONENTS = 23


def _components(value: str) -> list[str]:
    """Split on ``^`` and drop trailing empty components, which HL7 treats as absent."""
    parts = value.split("^")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def _component(parts: list[str], number: int) -> str:
    """Component ``number`` (1-based), or ``''`` when absent."""
    return parts[number - 1] if len(parts) >= number else ""


def _subcomponents(value: str) -> list[str]:
    parts = value.split("&")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def _first_extra_component(parts: list[str], allowed: set[int]) -> int | None:
    """Number of the first non-empty component outside ``allowed``, or None."""
    for number, part in enumerate(parts, start=1):
        if part and number not in allowed:
            return number
    return None


def _not_a_single_value(kind: str, value: str) -> str | None:
    """Common guards: XDS puts one datatype instance per slot value, never HL7 repetitions."""
    if value == "":
        return f"{kind} value is empty"
    if value != value.strip():
        return f"{kind} value must not have leading or trailing whitespace"
    if "~" in value:
        return f"{kind} value must not contain repetitions ('~'); use one slot value per instance"
    return None


# ---------------------------------------------------------------------------------------------
# Scalars: OID, UUID, unique ids, DTM, hash, size, mimeType, languageCode
# ---------------------------------------------------------------------------------------------


def check_oid(value: str) -> str | None:
    """An OID as XDS senders write it: dotted decimal arcs, at least two, at most 64 chars.

    ISO/IEC 9834-1 limits the first arc to 0, 1 or 2; IPF and the NIST toolkit do not, and real test
    data (the dcm4chee/NIST 12346 seed: ``&3.4.5&ISO``) relies on that, so neither do we.
    """
    if value == "":
        return "OID is empty"
    if len(value) > _OID_MAX_LEN:
        return f"OID is {len(value)} characters long; the maximum is {_OID_MAX_LEN}"
    if not _OID_RE.fullmatch(value):
        if "." not in value and value.isdigit():
            return f"OID '{value}' must have at least two arcs"
        return f"OID '{value}' must be dot-separated decimal arcs without leading zeros"
    return None


def check_uuid(value: str) -> str | None:
    """A UUID in URN form: ``urn:uuid:`` + the RFC 4122 8-4-4-4-12 hex form (any hex case)."""
    if not value.startswith("urn:uuid:"):
        return f"'{value}' is not a UUID URN: it must start with 'urn:uuid:'"
    if not _UUID_URN_RE.fullmatch(value):
        return f"'{value}' is not a UUID URN: expected urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    return None


def check_home_community_id(value: str) -> str | None:
    """A homeCommunityId: ``urn:oid:`` followed by an OID (ITI TF-3 4.2.3.2)."""
    if not value.startswith("urn:oid:"):
        return f"homeCommunityId '{value}' must start with 'urn:oid:'"
    problem = check_oid(value[len("urn:oid:") :])
    return f"homeCommunityId: {problem}" if problem else None


def check_document_unique_id(value: str) -> str | None:
    """DocumentEntry.uniqueId: ``OID`` or ``OID^extension`` (extension <= 16), <= 128 chars."""
    if value == "":
        return "uniqueId is empty"
    if len(value) > _UNIQUE_ID_MAX_LEN:
        return f"uniqueId is {len(value)} characters long; the maximum is {_UNIQUE_ID_MAX_LEN}"
    oid, sep, extension = value.partition("^")
    problem = check_oid(oid)
    if problem:
        return f"uniqueId root: {problem}"
    if sep:
        if extension == "":
            return "uniqueId extension after '^' is empty"
        if len(extension) > _UNIQUE_ID_EXTENSION_MAX_LEN:
            return (
                f"uniqueId extension is {len(extension)} characters long; "
                f"the maximum is {_UNIQUE_ID_EXTENSION_MAX_LEN}"
            )
        if any(c in extension for c in "^&~") or extension != extension.strip():
            return "uniqueId extension must not contain '^', '&', '~' or surrounding whitespace"
    return None


def check_registry_package_unique_id(value: str) -> str | None:
    """SubmissionSet.uniqueId and Folder.uniqueId: a plain OID (no extension allowed)."""
    if "^" in value:
        return "SubmissionSet/Folder uniqueId must be a plain OID without '^extension'"
    problem = check_oid(value)
    return f"uniqueId: {problem}" if problem else None


def check_dtm(value: str) -> str | None:
    """An XDS DTM: UTC ``YYYY[MM[DD[hh[mm[ss]]]]]`` with a real calendar date.

    ITI TF-3 restricts metadata times to UTC without offset or fractional seconds, so a
    value carrying either is rejected rather than silently truncated.
    """
    if value == "":
        return "DTM is empty"
    if _DTM_WITH_ZONE_RE.fullmatch(value):
        return f"DTM '{value}' must not carry a time zone: XDS metadata times are UTC"
    if _DTM_WITH_FRACTION_RE.fullmatch(value):
        return f"DTM '{value}' must not carry fractional seconds"
    if not value.isascii() or not value.isdigit():
        return f"DTM '{value}' must contain digits only"
    if len(value) not in _DTM_LENGTHS:
        return f"DTM '{value}' must be 4, 6, 8, 10, 12 or 14 digits long (YYYY[MM[DD[hh[mm[ss]]]]])"
    year = int(value[0:4])
    if len(value) >= 6:
        month = int(value[4:6])
        if not 1 <= month <= 12:
            return f"DTM '{value}' has month {value[4:6]}; expected 01-12"
        if len(value) >= 8:
            day = int(value[6:8])
            last = calendar.monthrange(year, month)[1]
            if not 1 <= day <= last:
                return f"DTM '{value}' has day {value[6:8]}; month {value[4:6]} of {value[0:4]} has {last}"
    if len(value) >= 10 and int(value[8:10]) > 23:
        return f"DTM '{value}' has hour {value[8:10]}; expected 00-23"
    if len(value) >= 12 and int(value[10:12]) > 59:
        return f"DTM '{value}' has minute {value[10:12]}; expected 00-59"
    if len(value) >= 14 and int(value[12:14]) > 59:
        return f"DTM '{value}' has second {value[12:14]}; expected 00-59"
    return None


def dtm_to_key(value: str) -> str:
    """Normalise a valid DTM to 14 sortable digits, padding with the earliest instant.

    ``'20061224'`` -> ``'20061224000000'``, ``'2005'`` -> ``'20050101000000'``. Stored-query
    time ranges compare these keys as strings. Raises ``ValueError`` for an invalid DTM.
    """
    problem = check_dtm(value)
    if problem:
        raise ValueError(problem)
    # Earliest MMDDhhmmss; the value already holds the first len(value) - 4 of these digits.
    return value + "0101000000"[len(value) - 4 :]


def check_hash(value: str) -> str | None:
    """DocumentEntry.hash: the SHA-1 of the document as 40 hex digits (either case)."""
    if not _HASH_RE.fullmatch(value):
        return f"hash '{value}' must be exactly 40 hexadecimal characters (SHA-1)"
    return None


def normalize_hash(value: str) -> str:
    """Lower-case a hash so that hashes from different senders compare equal."""
    return value.strip().lower()


def check_size(value: str) -> str | None:
    """DocumentEntry.size: a non-negative decimal integer (octets), digits only."""
    if value == "" or not value.isascii() or not value.isdigit():
        return f"size '{value}' must be a non-negative integer written with digits only"
    return None


def check_mime_type(value: str) -> str | None:
    """DocumentEntry.mimeType: ``type/subtype`` made of RFC 2045 tokens, no parameters."""
    if ";" in value:
        return f"mimeType '{value}' must not carry parameters (';')"
    if not _MIME_RE.fullmatch(value):
        return f"mimeType '{value}' must be type/subtype made of RFC 2045 tokens"
    return None


def check_language_code(value: str) -> str | None:
    """DocumentEntry.languageCode: an RFC 3066 / BCP 47 tag such as ``en-us`` or ``fr``."""
    if not _LANGUAGE_RE.fullmatch(value):
        return f"languageCode '{value}' is not an RFC 3066 language tag (e.g. 'en-US', 'fr')"
    return None


# ---------------------------------------------------------------------------------------------
# HD, CX, CXi
# ---------------------------------------------------------------------------------------------


def check_iso_hd(value: str, where: str = "HD") -> str | None:
    """An HD restricted to ``&OID&ISO``: empty namespace, an OID, universal id type 'ISO'.

    This is the form ITI TF-3 requires for CX.4 of patient ids, XCN.9 and XON.6. ``where`` names
    the component in the returned message.
    """
    if value == "":
        return f"{where} is empty; expected '&OID&ISO'"
    subs = _subcomponents(value)
    if len(subs) > 3:
        return f"{where} has {len(subs)} subcomponents; expected '&OID&ISO'"
    namespace, universal_id, id_type = (subs + ["", "", ""])[:3]
    if namespace:
        return f"{where} must not have a namespace ID ('{namespace}'); expected '&OID&ISO'"
    if universal_id == "":
        return f"{where} universal ID is missing; expected '&OID&ISO'"
    if id_type != "ISO":
        return f"{where} universal ID type must be 'ISO', not '{id_type}'"
    problem = check_oid(universal_id)
    return f"{where} universal ID: {problem}" if problem else None


@dataclass(frozen=True)
class CX:
    """A patient identifier ``id^^^&OID&ISO`` as read by :func:`parse_cx`."""

    id: str
    assigning_authority_oid: str
    raw: str

    def __str__(self) -> str:
        return f"{self.id}^^^&{self.assigning_authority_oid}&ISO"


def _cx_problem(value: str, allow_namespace: bool) -> str | None:
    problem = _not_a_single_value("CX", value)
    if problem:
        return problem
    parts = _components(value)
    if _component(parts, 2):
        return "CX component 2 (check digit) must be empty"
    if _component(parts, 3):
        return "CX component 3 (check digit scheme) must be empty"
    extra = _first_extra_component(parts, {1, 2, 3, 4})
    if extra is not None:
        return f"CX component {extra} must be empty: a patient id may only have components 1 (ID) and 4"
    id_number = _component(parts, 1)
    if _subcomponents(id_number)[0] == "":
        return "CX component 1 (ID number) is required"
    if "&" in id_number:
        return "CX component 1 (ID number) must not contain subcomponents ('&')"
    authority = _component(parts, 4)
    if authority == "":
        return "CX component 4 (assigning authority) is required and must be '&OID&ISO'"
    if allow_namespace:
        # Drop the namespace so that 'NS&1.2&ISO' and '&1.2&ISO' name the same domain.
        subs = _subcomponents(authority)
        authority = "&".join([""] + subs[1:]) if len(subs) > 1 else "&"
    return check_iso_hd(authority, "CX component 4 (assigning authority)")


def check_cx(value: str) -> str | None:
    """patientId / sourcePatientId: exactly ``id^^^&OID&ISO`` (ITI TF-3 Table 4.2.3.1.7-2).

    Only CX.1 and CX.4 may be valued; CX.4 must have an empty namespace, an OID universal id
    and universal id type 'ISO'. At most 256 characters: the registry's patient key column.
    """
    if len(value) > 256:
        return f"CX is {len(value)} characters long; at most 256 are accepted"
    return _cx_problem(value, allow_namespace=False)


def parse_cx(value: str) -> CX:
    """Read a patient identifier, tolerating surrounding whitespace and an HD.1 namespace.

    Raises ``ValueError`` (with the :func:`check_cx` style reason) for anything else. The
    leniency is for look-ups (stored-query parameters, PIX feeds) where the namespace is
    informative only; submissions are still checked with :func:`check_cx`.
    """
    text = value.strip()
    problem = _cx_problem(text, allow_namespace=True)
    if problem:
        raise ValueError(problem)
    parts = _components(text)
    oid = _subcomponents(parts[3])[1]
    return CX(id=parts[0], assigning_authority_oid=oid, raw=value)


def normalize_cx(value: str) -> str:
    """The canonical ``ID^^^&OID&ISO`` form of a patient id: the registry's patient key."""
    return str(parse_cx(value))


def check_cxi(value: str) -> str | None:
    """referenceIdList value (CXi): ``id^^^[authority]^typeCode[^homeCommunityId HD]``.

    CX.1 and CX.5 are required. CX.4 is required by ITI TF-3 only when the id is not globally
    unique, which cannot be decided here, so it is optional; when present it must be either a
    namespace ID or a universal ID with its type (an OID when the type is 'ISO'). CX.6 may carry
    the homeCommunityId as an ISO HD. CX.2, CX.3 and CX.7 onwards must be empty.
    """
    problem = _not_a_single_value("CXi", value)
    if problem:
        return problem
    parts = _components(value)
    extra = _first_extra_component(parts, {1, 4, 5, 6})
    if extra is not None:
        return f"CXi component {extra} must be empty: only components 1, 4, 5 and 6 are allowed"
    if _component(parts, 1) == "":
        return "CXi component 1 (ID number) is required"
    if "&" in _component(parts, 1):
        return "CXi component 1 (ID number) must not contain subcomponents ('&')"
    type_code = _component(parts, 5)
    if type_code == "":
        return "CXi component 5 (identifier type code) is required, e.g. urn:ihe:iti:xds:2013:accession"
    if "&" in type_code:
        return "CXi component 5 (identifier type code) must not contain subcomponents ('&')"
    authority = _component(parts, 4)
    if authority:
        subs = _subcomponents(authority)
        if len(subs) > 3:
            return "CXi component 4 (assigning authority) has more than 3 subcomponents"
        namespace, universal_id, id_type = (subs + ["", "", ""])[:3]
        if bool(universal_id) != bool(id_type):
            return "CXi component 4 (assigning authority) needs both universal ID and universal ID type"
        if not namespace and not universal_id:
            return "CXi component 4 (assigning authority) needs a namespace ID or a universal ID"
        if id_type == "ISO":
            oid_problem = check_oid(universal_id)
            if oid_problem:
                return f"CXi component 4 (assigning authority) universal ID: {oid_problem}"
    facility = _component(parts, 6)
    if facility:
        subs = _subcomponents(facility)
        # The homeCommunityId is usually written 'urn:oid:...'; accept a bare OID as well.
        if len(subs) >= 2 and subs[1].startswith("urn:oid:"):
            subs[1] = subs[1][len("urn:oid:") :]
        return check_iso_hd("&".join(subs), "CXi component 6 (homeCommunityId)")
    return None


# ---------------------------------------------------------------------------------------------
# XCN, XON, XTN
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XCN:
    """The person fields of an XCN that the registry indexes (see :func:`parse_xcn`)."""

    id: str
    family: str
    given: str
    assigning_authority_oid: str | None
    raw: str


def check_xcn(value: str) -> str | None:
    """An XCN (authorPerson, legalAuthenticator): XCN.1 (ID) or XCN.2 (family name) required.

    ITI TF-3: other components are optional; XCN.9, when present, must be '&OID&ISO'.
    """
    problem = _not_a_single_value("XCN", value)
    if problem:
        return problem
    parts = _components(value)
    if len(parts) > _XCN_COMPONENTS:
        return f"XCN has {len(parts)} components; HL7 v2.5 defines {_XCN_COMPONENTS}"
    id_number = _component(parts, 1)
    family = _subcomponents(_component(parts, 2))[0]
    if id_number == "" and family == "":
        return "XCN needs component 1 (ID number) or component 2 (family name)"
    if "&" in id_number:
        return "XCN component 1 (ID number) must not contain subcomponents ('&')"
    authority = _component(parts, 9)
    if authority:
        return check_iso_hd(authority, "XCN component 9 (assigning authority)")
    return None


def parse_xcn(value: str) -> XCN:
    """Read a valid XCN; raises ``ValueError`` with the :func:`check_xcn` reason otherwise.

    ``family`` is the surname (XCN.2.1) and ``given`` XCN.3; empty strings when absent.
    """
    problem = check_xcn(value)
    if problem:
        raise ValueError(problem)
    parts = _components(value)
    authority = _component(parts, 9)
    return XCN(
        id=_component(parts, 1),
        family=_subcomponents(_component(parts, 2))[0],
        given=_component(parts, 3),
        assigning_authority_oid=_subcomponents(authority)[1] if authority else None,
        raw=value,
    )


def check_xon(value: str) -> str | None:
    """An XON (authorInstitution): XON.1 name, optional XON.6 ``&OID&ISO`` and XON.10 id.

    ITI TF-3: no other components may be valued. When XON.10 is given without XON.6 it must
    itself be an OID, since nothing else would make it globally unique.
    """
    problem = _not_a_single_value("XON", value)
    if problem:
        return problem
    parts = _components(value)
    if _component(parts, 1) == "":
        return "XON component 1 (organization name) is required"
    extra = _first_extra_component(parts, {1, 6, 10})
    if extra is not None:
        return f"XON component {extra} must be empty: only components 1, 6 and 10 are allowed"
    authority = _component(parts, 6)
    identifier = _component(parts, 10)
    if "&" in identifier:
        return "XON component 10 (organization identifier) must not contain subcomponents ('&')"
    if authority:
        return check_iso_hd(authority, "XON component 6 (assigning authority)")
    if identifier:
        oid_problem = check_oid(identifier)
        if oid_problem:
            return (
                "XON component 10 (organization identifier) must be an OID when component 6 "
                f"(assigning authority) is empty: {oid_problem}"
            )
    return None


def check_xtn(value: str) -> str | None:
    """An XTN (authorTelecommunication), checked by XTN.3 equipment type.

    'Internet' / 'X.400' need an address in XTN.4, XTN.2 (if any) 'NET', and no phone number
    components. Phone types ('PH', 'CP', 'FX', ...) need a number in XTN.7 (local number) or
    XTN.12 (unformatted), not both, no XTN.4, and XTN.2 other than 'NET'.
    """
    problem = _not_a_single_value("XTN", value)
    if problem:
        return problem
    parts = _components(value)
    if len(parts) > _XTN_COMPONENTS:
        return f"XTN has {len(parts)} components; HL7 v2.5 defines {_XTN_COMPONENTS}"
    use = _component(parts, 2)
    kind = _component(parts, 3)
    email = _component(parts, 4)
    local = _component(parts, 7)
    unformatted = _component(parts, 12)
    if use and use not in _XTN_USE_CODES:
        return f"XTN component 2 (use code) '{use}' is not in HL7 table 0201"
    if kind == "":
        return "XTN component 3 (telecommunication equipment type) is required, e.g. 'Internet' or 'PH'"
    if kind in _XTN_ADDRESS_TYPES:
        if use and use != "NET":
            return f"XTN component 2 (use code) must be 'NET' for equipment type '{kind}'"
        if email == "":
            return f"XTN component 4 (communication address) is required for equipment type '{kind}'"
        if kind == "Internet" and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
            return f"XTN component 4 '{email}' is not an e-mail address"
        phone = [n for n in (5, 6, 7, 8, 12) if _component(parts, n)]
        if phone:
            return f"XTN component {phone[0]} (telephone number part) must be empty for '{kind}'"
        return None
    if kind in _XTN_PHONE_TYPES:
        if use == "NET":
            return f"XTN component 2 (use code) 'NET' is only for network addresses, not for '{kind}'"
        if email:
            return f"XTN component 4 (communication address) must be empty for equipment type '{kind}'"
        if not local and not unformatted:
            return (
                f"XTN equipment type '{kind}' requires a number in component 7 (local number) "
                "or component 12 (unformatted telephone number)"
            )
        if local and unformatted:
            return "XTN must not value both component 7 (local number) and component 12 (unformatted number)"
        return None
    known = ", ".join(sorted(_XTN_ADDRESS_TYPES | _XTN_PHONE_TYPES))
    return f"XTN component 3 (telecommunication equipment type) '{kind}' is not one of: {known}"


# ---------------------------------------------------------------------------------------------
# Composite slot values: sourcePatientInfo, intendedRecipient
# ---------------------------------------------------------------------------------------------


def check_source_patient_info(value: str) -> str | None:
    """One DocumentEntry.sourcePatientInfo value: ``PID-<n>|<HL7 v2.5 PID-n field>``.

    ITI TF-3 names PID-3 (identifier list), PID-5 (name), PID-7 (birth date), PID-8 (sex) and
    PID-11 (address) and forbids the fields deprecated in v2.5 (PID-2, PID-4, PID-12, PID-19);
    other PID fields remain allowed, as in IPF. PID-7 must be a DTM and PID-8 a Table 0001 code.
    """
    match = _PID_RE.fullmatch(value)
    if not match:
        return f"sourcePatientInfo value '{value}' must have the form 'PID-<field number>|<value>'"
    number = int(match.group(1))
    content = match.group(2)
    if number > _PID_FIELD_COUNT:
        return f"sourcePatientInfo PID-{number} does not exist: the PID segment has {_PID_FIELD_COUNT} fields"
    if number in _PID_DEPRECATED:
        return f"sourcePatientInfo must not use PID-{number} (deprecated in HL7 v2.5)"
    if number == 7 and content:
        problem = check_dtm(content)
        if problem:
            return f"sourcePatientInfo PID-7 (date of birth): {problem}"
    if number == 8 and content and content not in _SEX_CODES:
        return f"sourcePatientInfo PID-8 (sex) '{content}' must be one of A, F, M, N, O, U"
    return None


def check_intended_recipient(value: str) -> str | None:
    """SubmissionSet.intendedRecipient value: ``[XON]|[XCN]|[XTN]``, at least one valued.

    Each valued part is checked with the validator of its type.
    """
    if value == "":
        return "intendedRecipient value is empty"
    parts = value.split("|")
    if len(parts) > 3:
        return "intendedRecipient must have at most 3 '|'-separated parts (XON|XCN|XTN)"
    parts += [""] * (3 - len(parts))
    if not any(parts):
        return "intendedRecipient needs an organization (XON), a person (XCN) or a telecom (XTN)"
    for name, part, check in (
        ("XON", parts[0], check_xon),
        ("XCN", parts[1], check_xcn),
        ("XTN", parts[2], check_xtn),
    ):
        if part:
            problem = check(part)
            if problem:
                return f"intendedRecipient {name} part: {problem}"
    return None
