"""PDSm metadata update (Flux 03/04, "MiseAJourMetadonneeFiche"): PATCH DocumentReference, the FHIR
face of ITI-57 Update Document Set.

A client PATCHes a DocumentReference (by id, or conditionally by ``identifier``) with a JSON Patch
(RFC 6902, the form PDSm recommends) or a FHIRPath Patch (a ``Parameters`` resource). PDSm allows
three elements to change: ``status``, ``securityLabel`` and the ``isArchived`` extension; a patch
that changes anything else is answered 405, as PDSm 3.1.1 ``st_maj`` says. The patch is applied
to the DocumentReference as Carnet serves it and the result compared with the original, so what is
judged is the change, not the spelling of the patch.

The change is then carried out by ``carnet.registry.iti57`` exactly as an XDS Document
Administrator's ITI-57 would be, in one database transaction:

- ``securityLabel`` (confidentialityCode, e.g. MASQUE_PS / INVISIBLE_PATIENT, DMP TD3.3a/b) is a
  metadata update: a new DocumentEntry version (new entryUUID, same logical id and uniqueId) whose
  previous version is deprecated. The answer is the new version, under its new id.
- ``status`` and ``isArchived`` are an UpdateAvailabilityStatus: current + isArchived true is the
  DMP's Archived (TD3.3d), entered-in-error its Deleted (TD3.3c), superseded XDS Deprecated.

Each update carries the SubmissionSet ITI-57 requires: a uniqueId minted from a UUID (2.25.x),
Carnet's home community as sourceId, and the contentTypeCode of the submission that registered the
document.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import jsonpatch
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.parameters import Parameters, ParametersParameter
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.fhir import datatypes as fdt
from carnet.fhir import documentreference as fdr
from carnet.fhir.formats import parse_resource
from carnet.fhir.outcome import FHIRError
from carnet.registry import iti57
from carnet.registry.iti42 import RegisterOptions, dtm_now
from carnet.registry.schema import DocumentEntryRow, SubmissionSetRow
from carnet.xds import ebrim
from carnet.xds import vocabulary as v
from carnet.xds.model import Association, Code, DocumentEntry, Submission, SubmissionSet

JSON_PATCH = "application/json-patch+json"
PATCHABLE = ("status", "securityLabel", "extension")
_STATUS = {"current": v.APPROVED, "superseded": v.DEPRECATED, "entered-in-error": v.DMP_DELETED}


@dataclass
class Change:
    """What the patch asks of the registry."""

    status: str  # the XDS availabilityStatus wanted
    confidentiality: list[Code] | None  # new confidentialityCodes, None when unchanged


def _not_allowed(detail: str) -> FHIRError:
    return FHIRError.of(
        405,
        "not-supported",
        f"{detail}: a PDSm metadata update changes only status, securityLabel and the isArchived extension",
    )


def requested_change(
    current: DocumentReference, entry: DocumentEntry, body: bytes, content_type: str
) -> Change:
    original = json.loads(current.model_dump_json(exclude_none=True))
    media = content_type.split(";", 1)[0].strip().lower()
    # A JSON array is never a FHIR resource: clients that send every body as application/json
    # (fhirpy's execute) are sending a JSON Patch.
    if media == JSON_PATCH or (media == "application/json" and body.lstrip()[:1] == b"["):
        patched = _json_patch(original, body)
    else:
        params = parse_resource(body, content_type)
        if not isinstance(params, Parameters):
            raise FHIRError.of(
                415,
                "not-supported",
                f"a PATCH body is a JSON Patch ({JSON_PATCH}) or a FHIRPath Patch (Parameters)",
            )
        patched = _fhirpath_patch(original, params)
    for key in sorted(set(original) | set(patched)):
        if key in PATCHABLE:
            continue
        if original.get(key) != patched.get(key):
            raise _not_allowed(f"the patch changes '{key}'")
    others = [e for e in patched.get("extension", []) if e.get("url") != fdr.IS_ARCHIVED]
    if others != [e for e in original.get("extension", []) if e.get("url") != fdr.IS_ARCHIVED]:
        raise _not_allowed("the patch changes an extension other than isArchived")
    try:
        result = DocumentReference.model_validate(patched)
    except ValidationError as exc:
        raise FHIRError.of(400, "invalid", f"the patched DocumentReference is not valid FHIR: {exc}") from exc
    if result.status not in _STATUS:
        raise FHIRError.of(400, "invalid", f"status '{result.status}' is not one of {', '.join(_STATUS)}")
    status = _STATUS[result.status]
    if status == v.APPROVED and fdr.is_archived(result):
        status = v.DMP_ARCHIVED
    elif fdr.is_archived(result):
        raise FHIRError.of(400, "invalid", "only a current document can be archived (isArchived true)")
    codes: list[Code] = []
    for i, label in enumerate(result.securityLabel or []):
        for coding in label.coding or []:
            try:
                codes.append(fdt.code_of(coding))
            except ValueError as exc:
                raise FHIRError.of(400, "invalid", f"securityLabel[{i}]: {exc}") from exc
    old = sorted(c.key() for c in entry.confidentiality_codes)
    return Change(status, codes if sorted(c.key() for c in codes) != old else None)


def _json_patch(original: dict[str, Any], body: bytes) -> dict[str, Any]:
    try:
        ops = json.loads(body)
        patched: dict[str, Any] = jsonpatch.apply_patch(original, ops)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FHIRError.of(400, "structure", f"the JSON Patch is not JSON: {exc}") from exc
    except jsonpatch.JsonPatchTestFailed as exc:
        raise FHIRError.of(409, "conflict", f"a JSON Patch 'test' operation failed: {exc}") from exc
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise FHIRError.of(
            400,
            "invalid",
            f"the JSON Patch does not apply ({exc}); paths are RFC 6901 pointers such as /status, "
            f"/securityLabel/0, /extension/0/valueBoolean (isArchived is extension 0)",
        ) from exc
    return patched


# FHIRPath Patch (FHIR R4 fhirpatch.html), the subset a DocumentReference's patchable elements need.
_PATH = re.compile(r"DocumentReference(?:\.(?P<elem>[A-Za-z]+)(?P<rest>.*))?")
_INDEX = re.compile(r"\[(\d+)\]")
_EXT = re.compile(r"\.where\(url\s*=\s*'(?P<url>[^']+)'\)(?:\.value(?:Boolean)?)?")


def _value(part: ParametersParameter) -> Any:
    for name, val in part:
        if name.startswith("value") and val is not None and not name.endswith("__ext"):
            return json.loads(part.model_dump_json(include={name}, exclude_none=True))[name]
    return None


def _fhirpath_patch(original: dict[str, Any], params: Parameters) -> dict[str, Any]:
    doc = json.loads(json.dumps(original))
    for op in params.parameter or []:
        if op.name != "operation":
            raise FHIRError.of(400, "invalid", f"FHIRPath Patch parameter '{op.name}' is not 'operation'")
        parts = {p.name: p for p in op.part or []}
        kind = parts["type"].valueCode if "type" in parts else None
        path = parts["path"].valueString if "path" in parts else None
        if not kind or not path:
            raise FHIRError.of(400, "invalid", "a FHIRPath Patch operation needs type and path")
        m = _PATH.fullmatch(path.strip())
        if not m:
            raise _not_allowed(f"path '{path}'")
        elem, rest = m["elem"], m["rest"] or ""
        value = _value(parts["value"]) if "value" in parts else None
        if kind == "add" and elem is None:
            name = parts["name"].valueString if "name" in parts else None
            if name != "securityLabel":
                raise _not_allowed(f"add of '{name}'")
            doc.setdefault("securityLabel", []).append(value)
        elif elem == "status" and not rest and kind == "replace":
            doc["status"] = value
        elif elem == "securityLabel":
            labels = doc.setdefault("securityLabel", [])
            index = _INDEX.fullmatch(rest)
            if kind == "insert" and not rest:
                labels.insert(int(parts["index"].valueInteger or 0) if "index" in parts else 0, value)
            elif kind in ("replace", "delete") and index and int(index[1]) < len(labels):
                if kind == "replace":
                    labels[int(index[1])] = value
                else:
                    del labels[int(index[1])]
            else:
                raise FHIRError.of(400, "invalid", f"FHIRPath Patch {kind} at '{path}' is not supported here")
        elif elem == "extension":
            ext = _EXT.fullmatch(rest)
            if not ext or ext["url"] != fdr.IS_ARCHIVED:
                raise _not_allowed(f"path '{path}'")
            if kind != "replace" or not isinstance(value, bool):
                raise FHIRError.of(400, "invalid", "isArchived is changed by a replace with a valueBoolean")
            doc["extension"] = [
                {"url": fdr.IS_ARCHIVED, "valueBoolean": value} if e.get("url") == fdr.IS_ARCHIVED else e
                for e in doc.get("extension", [])
            ]
        else:
            raise _not_allowed(f"{kind} at '{path}'")
    return dict(doc)


def _update_set(
    session: Session, entry: DocumentEntry, row: DocumentEntryRow, source_id: str
) -> SubmissionSet:
    content_type = None
    if row.submission_set_uuid:
        fragment = session.scalar(
            select(SubmissionSetRow.fragment).where(SubmissionSetRow.entry_uuid == row.submission_set_uuid)
        )
        if fragment:
            original = ebrim.from_fragment(fragment)
            if isinstance(original, SubmissionSet):
                content_type = original.content_type_code
    return SubmissionSet(
        entry_uuid="SubmissionSet",
        unique_id=fdt.uuid_to_oid(f"urn:uuid:{uuid.uuid4()}"),
        source_id=source_id,
        patient_id=entry.patient_id,
        submission_time=dtm_now(),
        content_type_code=content_type,
        title="Mise à jour de métadonnées (PDSm, FHIR PATCH)",
    )


def apply(
    session: Session, row: DocumentEntryRow, change: Change, options: RegisterOptions, source_id: str
) -> str:
    """Carry the change out through ITI-57, in the caller's transaction; returns the entryUUID of the
    version that now stands for the document (new when securityLabel changed)."""
    entry = ebrim.from_fragment(row.fragment)
    assert isinstance(entry, DocumentEntry)
    current_id, current_status = entry.entry_uuid, entry.status
    if change.confidentiality is not None:
        new = copy.deepcopy(entry)
        new.entry_uuid = "NewVersion"
        new.confidentiality_codes = change.confidentiality
        # A new version is a new registry object: its classifications get ids of their own.
        new.ebrim_ids = {}
        for c in [new.class_code, new.type_code, new.format_code, new.healthcare_facility_type_code,
                  new.practice_setting_code, *new.event_codes]:  # fmt: skip
            if c is not None:
                c.id = None
        for a in new.authors:
            a.id = None
        ss = _update_set(session, entry, row, source_id)
        member = Association(entry_uuid="Member", source=ss.entry_uuid, target=new.entry_uuid)
        member.extra_slots = {"SubmissionSetStatus": ["Original"], "PreviousVersion": [str(row.version)]}
        result = iti57.update(session, Submission(ss, [new], [], [member]), options)
        current_id = result.id_map.get("NewVersion", new.entry_uuid)
    if change.status != current_status:
        ss = _update_set(session, entry, row, source_id)
        status = Association(
            entry_uuid="StatusUpdate",
            association_type=v.UPDATE_AVAILABILITY_STATUS,
            source=ss.entry_uuid,
            target=current_id,
        )
        status.extra_slots = {"OriginalStatus": [current_status], "NewStatus": [change.status]}
        iti57.update(session, Submission(ss, [], [], [status]), options)
    return current_id


def latest_by_identifier(
    session: Session, unique_id: str | None, entry_uuid: str | None
) -> list[DocumentEntryRow]:
    """Conditional PATCH: the latest versions of the documents an identifier names."""
    de = DocumentEntryRow
    cond = de.unique_id == unique_id if unique_id else de.logical_id == entry_uuid
    rows = list(session.scalars(select(de).where(cond)))
    if entry_uuid:
        rows += list(session.scalars(select(de).where(de.entry_uuid == entry_uuid)))
    latest: dict[str, DocumentEntryRow] = {}
    for r in rows:
        if r.logical_id not in latest or r.version > latest[r.logical_id].version:
            latest[r.logical_id] = r
    return list(latest.values())
