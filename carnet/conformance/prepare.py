"""Metadata preparation of a NIST test-plan submission, as the XDS Toolkit does before sending.

The NIST data files carry symbolic ids (``Document01``), placeholders (``$patientid$``,
``$rplc_doc_uuid$``) and fixed uniqueIds. ``BasicTransaction.prepareMetadata``
(``test-engine/.../transactions/BasicTransaction.java``) turns them into a sendable submission in
a fixed order, which :func:`prepare` follows step by step:

1. ebRIM 2.1 -> 3.0 (``TranslateToV3``; see :mod:`carnet.conformance.ebrim21`);
2. force the patient id onto every DocumentEntry, SubmissionSet and Folder patientId
   ExternalIdentifier (``TestMgmt.assignPatientId``), unless the step says ``<NoPatientId/>``;
3. substitute ``$symbol$`` placeholders in attribute values and text (``Linkage``: ``UseId``,
   ``UseReport`` and the standard ``$now$`` / ``$lastyear$``), as substrings;
4. give DocumentEntries, SubmissionSets and Folders fresh uniqueIds (``TestMgmt.assignUniqueIds``,
   ``UniqueIdAllocator``), unless ``<NoAssignUids/>`` (all) or ``<NoAssignUids id="X"/>`` (X only);
5. set the SubmissionSet sourceId (``TestMgmt.assignSourceId``);
6. with ``<AssignUuids/>``, replace every symbolic id by a fresh ``urn:uuid:`` and every reference
   to it (``IdParser.compileSymbolicNamesIntoUuids``).

The maps that NIST logs (``AssignedPatientId``, ``AssignedUids``, ``AssignedUuids``) come back in
:class:`Prepared`, so a later step can resolve its ``UseId`` against them.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from carnet.conformance.ebrim21 import is_v21, to_v3
from carnet.xds import vocabulary as v
from carnet.xml import localname

# An OID arc of our own for test uniqueIds (NIST uses 1.2.42.<now>.<n>): start time and process id
# keep them unique across runs (and parallel runners), the counter within one.
UID_ROOT = f"1.2.250.1.999.3.{int(time.time())}.{os.getpid()}"
_uid_counter = itertools.count(1)

# What we send when a SubmissionSet's sourceId is still a placeholder (NIST reads it from its
# configuration, testmgmt/sourceid.txt).
DEFAULT_SOURCE_ID = "1.2.250.1.999.3.1"

_PATIENT_SCHEMES = {
    "ExtrinsicObject": (v.DE_PATIENT_ID,),
    "RegistryPackage": (v.SS_PATIENT_ID, v.FOLDER_PATIENT_ID),
}
_UNIQUE_ID_SCHEMES = {
    "ExtrinsicObject": (v.DE_UNIQUE_ID,),
    "RegistryPackage": (v.SS_UNIQUE_ID, v.FOLDER_UNIQUE_ID),
}
# IdParser.referencingAttributeNames: attributes that point at another object's id.
_REFERENCING = ("classifiedObject", "sourceObject", "targetObject", "registryObject")


@dataclass
class Prepared:
    """A prepared ebRIM 3.0 SubmitObjectsRequest and the maps NIST would log for it."""

    request: etree._Element
    assigned_patient_id: dict[str, str] = field(default_factory=dict)  # object id -> patient id
    assigned_uids: dict[str, str] = field(default_factory=dict)  # symbolic id -> new uniqueId
    assigned_uuids: dict[str, str] = field(default_factory=dict)  # symbolic id -> urn:uuid

    def tostring(self) -> bytes:
        return etree.tostring(self.request)

    def uuid(self, symbolic_id: str) -> str:
        """The id the object now carries: its assigned urn:uuid, or the symbolic id if none was."""
        return self.assigned_uuids.get(symbolic_id, symbolic_id)


def new_unique_id() -> str:
    return f"{UID_ROOT}.{next(_uid_counter)}"


_last_exchange = 0.0


def note_exchange() -> None:
    """Record that a request was just answered (the target may have stamped times in it)."""
    global _last_exchange
    _last_exchange = time.time()


def standard_symbols(uses: etree._Element | None = None) -> dict[str, str]:
    """BasicTransaction.addStandardLinkage: $now$ and $lastyear$ as HL7 DTM (Hl7Date).

    XDS times have one-second precision and stored-query To bounds are exclusive, so a $now$ in the
    same second as the previous request would exclude what that request stamped (FindFolders
    lastUpdateTime, NIST 11899). The Java toolkit is slow enough never to meet this; when ``uses``
    contains $now$, wait until the clock has left the second of the last exchange.
    """
    if uses is not None and "$now$" in etree.tostring(uses, encoding="unicode"):
        wait = math.floor(_last_exchange) + 1 - time.time()
        if wait > 0:
            time.sleep(wait)
    now = datetime.now(UTC)
    return {
        "$now$": now.strftime("%Y%m%d%H%M%S"),
        # Clamped to the 28th so that 29 February has a date a year earlier.
        "$lastyear$": now.replace(year=now.year - 1, day=min(now.day, 28)).strftime("%Y%m%d%H%M%S"),
    }


def prepare(
    root: etree._Element,
    *,
    patient_id: str | None,
    assign_uids: bool | Collection[str] = True,
    no_assign: Collection[str] = (),
    assign_uuids: bool = False,
    symbols: Mapping[str, str],
    source_id: str | None = None,
) -> Prepared:
    """Prepare one NIST submission (ebRIM 2.1 or 3.0) for sending; ``root`` is not modified.

    ``patient_id`` None mirrors ``<NoPatientId/>``. ``assign_uids`` False mirrors
    ``<NoAssignUids/>``; a collection limits assignment to those object ids; ``no_assign`` mirrors
    ``<NoAssignUids id="X"/>``. ``symbols`` maps whole placeholders (``"$patientid$"``) to values;
    it overrides the standard ``$now$``/``$lastyear$``. ``source_id``, when given, is forced on
    every SubmissionSet as NIST does from its configuration; otherwise only a sourceId still
    holding a ``$placeholder$`` is replaced, by :data:`DEFAULT_SOURCE_ID`.
    """
    # 1. Metadata.getV3SubmitObjectsRequest (TranslateToV3); a 3.0 input is copied, never mutated.
    request = to_v3(root) if is_v21(root) else copy.deepcopy(root)
    objects = _top_level_objects(request)
    out = Prepared(request)

    # 2. TestMgmt.assignPatientId: DE, SS and Folder patientId, whatever they held.
    if patient_id is not None:
        for obj, ei in _external_ids(objects, _PATIENT_SCHEMES):
            ei.set("value", patient_id)
            out.assigned_patient_id[obj.get("id") or ""] = patient_id

    # 3. Linkage: substring replacement in every attribute and text, after the patient id (NIST
    # order), so a $patientid$ inside a forced ExternalIdentifier is already gone.
    substitute(request, {**standard_symbols(request), **symbols})

    # 4. TestMgmt.assignUniqueIds, skipping the NoAssignUids id.
    if assign_uids:
        only = None if assign_uids is True else set(assign_uids)
        for obj, ei in _external_ids(objects, _UNIQUE_ID_SCHEMES):
            obj_id = obj.get("id") or ""
            if obj_id in no_assign or (only is not None and obj_id not in only):
                continue
            uid = new_unique_id()
            ei.set("value", uid)
            out.assigned_uids[obj_id] = uid

    # 5. TestMgmt.assignSourceId.
    for _obj, ei in _external_ids(objects, {"RegistryPackage": (v.SS_SOURCE_ID,)}):
        value = ei.get("value") or ""
        if source_id is not None:
            ei.set("value", source_id)
        elif value.startswith("$") and value.endswith("$"):
            ei.set("value", DEFAULT_SOURCE_ID)

    # 6. IdParser.compileSymbolicNamesIntoUuids.
    if assign_uuids:
        out.assigned_uuids = _assign_uuids(request)
    return out


def _top_level_objects(request: etree._Element) -> list[etree._Element]:
    rol = request.find(f"{{{v.RIM}}}RegistryObjectList")
    if rol is None:
        raise ValueError(f"{request.tag} has no rim:RegistryObjectList")
    return [el for el in rol if isinstance(el.tag, str)]


def _external_ids(
    objects: list[etree._Element], schemes: Mapping[str, tuple[str, ...]]
) -> list[tuple[etree._Element, etree._Element]]:
    """(object, ExternalIdentifier) pairs of the top-level objects, for the schemes of their kind."""
    pairs = []
    for obj in objects:
        wanted = schemes.get(localname(obj), ())
        for ei in obj.findall(f"{{{v.RIM}}}ExternalIdentifier"):
            if ei.get("identificationScheme") in wanted:
                pairs.append((obj, ei))
    return pairs


def substitute(root: etree._Element, symbols: Mapping[str, str]) -> None:
    """Linkage.replace_string_in_text_and_attributes: replace each symbol, as a substring, in every
    attribute value and text of ``root`` (in place). Also what a query.xml needs before sending."""
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for key, value in el.attrib.items():
            if "$" in value:
                el.set(key, _replace_all(value, symbols))
        if el.text and "$" in el.text:
            el.text = _replace_all(el.text, symbols)


def _replace_all(text: str, symbols: Mapping[str, str]) -> str:
    for symbol, value in symbols.items():
        text = text.replace(symbol, value)
    return text


def _assign_uuids(request: etree._Element) -> dict[str, str]:
    """Every non-UUID ``id`` (objects and their Classifications/ExternalIdentifiers) gets a UUID;
    every reference to one follows. A reference to an unknown symbol is an error, as in NIST."""
    assigned: dict[str, str] = {}
    elements = [el for el in request.iter() if isinstance(el.tag, str)]
    for el in elements:
        name = el.get("id")
        if name and not name.startswith("urn:uuid:"):
            new = assigned.setdefault(name, f"urn:uuid:{uuid.uuid4()}")
            el.set("id", new)
    for el in elements:
        for attr in _REFERENCING:
            ref = el.get(attr)
            if ref is None or ref.startswith("urn:uuid:"):
                continue
            if ref not in assigned:
                raise ValueError(f"{localname(el)} {attr}='{ref}' names no object of the submission")
            el.set(attr, assigned[ref])
    return assigned
