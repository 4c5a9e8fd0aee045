"""ITI-67 Find Document References: FHIR search parameters -> SQL on the flattened registry tables.

This is the MHD binding of the stored-query engine (``registry.storedquery.queries``), as ITI-18's
FindDocuments and FindDocumentsByReferenceId are the ebRIM one: the same tables and indexes (one
range scan on (patient_id, status, creation_time)), the same merge-aware patient ids, the same code,
child-code and author building blocks, extended for what FHIR adds (a token without a system, a
date prefix, an author's family or given name, paging and sorting). Results then pass the policy
decision point (``PolicyDecisionPoint.visible``) like ITI-18's, before a page is cut.

Parameters (MHD 4.2.3 ITI TF-2 3.67.4.1.2.1 and PDSm 3.1.1): patient, patient.identifier, status,
identifier, _id, _lastUpdated, creation, date, author.given, author.family, category, type, setting,
period, facility, event, security-label, format, related; PDSm isArchived, period-start, period-end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from carnet.fhir import datatypes as fdt
from carnet.fhir import terminology
from carnet.fhir.documentreference import Stored
from carnet.fhir.outcome import FHIRError
from carnet.fhir.search import (
    Params,
    Token,
    archived_flags,
    date_value,
    instant_condition,
    period_condition,
    split_or,
    status_codes,
    token,
)
from carnet.registry import patients
from carnet.registry.schema import AssociationRow, DocumentEntryRow, Patient, ReferenceIdRow
from carnet.registry.storedquery.queries import (
    Hit,
    author_names_match,
    child_tokens_match,
    like_escape,
    tokens_match,
)
from carnet.xds import ebrim
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode
from carnet.xds.model import DocumentEntry

DE = DocumentEntryRow

STATUS = {
    "current": [v.APPROVED, v.DMP_ARCHIVED],
    "superseded": [v.DEPRECATED],
    "entered-in-error": [v.DMP_DELETED],
}
_CODE_COLUMNS = {
    "category": (DE.class_code, DE.class_scheme),
    "type": (DE.type_code, DE.type_scheme),
    "setting": (DE.practice_code, DE.practice_scheme),
    "facility": (DE.hcft_code, DE.hcft_scheme),
    "format": (DE.format_code, DE.format_scheme),
}
_CHILD_CODES = {"event": "event", "security-label": "conf"}
_SORT = {
    "creation": DE.creation_time,
    "date": DE.created_at,
    "_lastUpdated": func.coalesce(DE.updated_at, DE.created_at),
    "period": DE.service_start_time,
}
SEARCH_PARAMS = [
    "patient",
    "patient.identifier",
    "status",
    "identifier",
    "_id",
    "_lastUpdated",
    "creation",
    "date",
    "author.given",
    "author.family",
    "category",
    "type",
    "setting",
    "period",
    "facility",
    "event",
    "security-label",
    "format",
    "related",
    "isArchived",
    "period-start",
    "period-end",
]


def xds_tokens(values: list[str]) -> list[list[tuple[str | None, str | None]]]:
    """Repeated token parameters (AND) of comma lists (OR) -> (code, XDS codingScheme) pairs."""
    out = []
    for value in values:
        group = []
        for alt in split_or(value):
            t = token(alt)
            scheme = terminology.to_scheme(t.system) if t.system else t.system
            group.append((t.code, scheme))
        out.append(group)
    return out


def patient_ids(session: Session, params: Params, name: str = "patient") -> list[str] | None:
    """The XDS patient ids (merge-aware) the patient / patient.identifier parameters name; None
    when neither is given."""
    refs = params.values(name)
    idents = params.values(f"{name}.identifier") + params.values(f"{name}:identifier")
    if not refs and not idents:
        return None
    if len(refs) + len(idents) > 1:
        raise FHIRError.of(
            400, "invalid", f"give one {name} or {name}.identifier (its values may be a comma list)"
        )
    cxs: list[str] = []
    for value in refs:
        for alt in split_or(value):
            rid = alt.rstrip("/").rsplit("/", 1)[-1]
            cx = fdt.cx_of_patient_resource_id(rid)
            if cx is not None:
                cxs.append(cx)
    for value in idents:
        for alt in split_or(value):
            cxs += patient_cxs_of_token(session, token(alt))
    out: list[str] = []
    for cx in cxs:
        out += [p for p in patients.query_ids(session, cx) if p not in out]
    return out


def searched_patients(session: Session, params: Params, search: str) -> list[str] | None:
    """``patient_ids`` of a Find search (ITI-66, ITI-67), which must name its patient unless it asks
    for resources by ``_id`` or ``identifier`` (None then): 400 XDSStoredQueryMissingParam."""
    pids = patient_ids(session, params)
    if pids is None and not (params.values("_id") or params.values("identifier")):
        raise FHIRError.of(
            400,
            "required",
            f"{search} needs patient or patient.identifier (or _id / identifier)",
            str(ErrorCode.STORED_QUERY_MISSING_PARAM),
        )
    return pids


def patient_cxs_of_token(session: Session, t: Token) -> list[str]:
    if not t.code:
        return []
    if t.system:
        try:
            return [fdt.cx_of(t.system, t.code)]
        except ValueError:
            return []
    # No system: the identifier under any assigning authority the registry knows of.
    return list(
        session.scalars(
            select(Patient.patient_id).where(
                Patient.patient_id.like(like_escape(t.code) + "^^^&%", escape="\\")
            )
        )
    )


def _identifier_condition(values: list[str]) -> ColumnElement[bool]:
    """identifier: masterIdentifier (uniqueId), identifier (entryUUID, logical id)."""
    ands = []
    for value in values:
        ors: list[ColumnElement[bool]] = []
        for alt in split_or(value):
            t = token(alt)
            if not t.code:
                continue
            if t.code.startswith("urn:uuid:") and t.system in (None, fdt.URI_SYSTEM):
                ors += [DE.entry_uuid == t.code.lower(), DE.logical_id == t.code.lower()]
            try:
                ors.append(DE.unique_id == fdt.unique_id_of(t.system or None, t.code))
            except ValueError:
                ors.append(DE.unique_id == t.code)
        ands.append(or_(*ors) if ors else DE.entry_uuid.is_(None))
    return and_(*ands)


def _related_condition(values: list[str]) -> ColumnElement[bool]:
    """related (referenceIdList, FindDocumentsByReferenceId): the CXi id and assigning authority."""
    conds = []
    for value in values:
        ors = []
        for alt in split_or(value):
            t = token(alt)
            if not t.code:
                continue
            oid = terminology.oid_of_identifier_system(t.system)
            authority = f"&{oid}&ISO" if oid else (t.system or "")
            pattern = (
                like_escape(t.code) + "^^^" + like_escape(authority) + "^%"
                if t.system
                else like_escape(t.code) + "^%"
            )
            ors.append(ReferenceIdRow.value.like(pattern, escape="\\"))
        conds.append(
            exists(select(ReferenceIdRow.id).where(ReferenceIdRow.entry_uuid == DE.entry_uuid, or_(*ors)))
            if ors
            else DE.entry_uuid.is_(None)
        )
    return and_(*conds)


def conditions(session: Session, params: Params) -> list[ColumnElement[bool]]:
    """Every filter but the patient's, from the parameters given."""
    where: list[ColumnElement[bool]] = []
    for value in params.values("status"):
        where.append(DE.status.in_(status_codes(value, STATUS)))
    for value in params.values("isArchived"):
        flags = archived_flags(value)
        if flags == {"true"}:
            where.append(DE.status == v.DMP_ARCHIVED)
        elif flags == {"false"}:
            where.append(DE.status != v.DMP_ARCHIVED)
    for value in params.values("_id"):  # each repetition narrows (AND); commas are alternatives
        ids = [fdt.entry_uuid_of(i) for i in split_or(value)]
        where.append(DE.entry_uuid.in_([i for i in ids if i]))
    if params.values("identifier"):
        where.append(_identifier_condition(params.values("identifier")))
    for name, (code_col, scheme_col) in _CODE_COLUMNS.items():
        for group in xds_tokens(params.values(name)):
            where.append(tokens_match(code_col, scheme_col, group))
    for name, kind in _CHILD_CODES.items():
        for group in xds_tokens(params.values(name)):
            where.append(child_tokens_match(kind, DE.entry_uuid, group))
    for name, col, as_key in (
        ("creation", DE.creation_time, True),
        ("date", DE.created_at, False),
        ("_lastUpdated", func.coalesce(DE.updated_at, DE.created_at), False),
        ("period-start", DE.service_start_time, True),
        ("period-end", DE.service_stop_time, True),
    ):
        for value in params.values(name):
            where.append(
                or_(*[instant_condition(col, date_value(name, alt), as_key) for alt in split_or(value)])
            )
    for value in params.values("period"):
        where.append(
            or_(
                *[
                    period_condition(DE.service_start_time, DE.service_stop_time, date_value("period", a))
                    for a in split_or(value)
                ]
            )
        )
    for exact in (False, True):
        suffix = ":exact" if exact else ""
        family = params.values(f"author.family{suffix}")
        given = params.values(f"author.given{suffix}")
        for fam in family:
            where.append(author_names_match(session, DE.entry_uuid, split_or(fam), [], exact))
        for giv in given:
            where.append(author_names_match(session, DE.entry_uuid, [], split_or(giv), exact))
    related = (
        params.values("related") + params.values("related.identifier") + params.values("related:identifier")
    )
    if related:
        where.append(_related_condition(related))
    return where


def order_by(params: Params) -> list[Any]:
    keys: list[Any] = []
    for value in params.values("_sort"):
        for key in split_or(value):
            desc = key.startswith("-")
            col = _SORT.get(key.lstrip("-"))
            if col is None:
                raise FHIRError.of(
                    400, "not-supported", f"_sort '{key}' is not supported (use {', '.join(_SORT)})"
                )
            keys.append(col.desc() if desc else col.asc())
    if not keys:
        keys = [DE.creation_time.desc()]  # most recent documents first, as a record is read
    return [*keys, DE.entry_uuid]


@dataclass
class Match:
    hit: Hit
    registered: datetime
    updated: datetime | None


def find(session: Session, params: Params) -> list[Match]:
    """The DocumentEntries matching the search, in order."""
    pids = searched_patients(session, params, "Find Document References")
    where = conditions(session, params)
    if pids is not None:
        if not pids:
            return []
        where.insert(0, DE.patient_id.in_(pids))
    # Every match (as ITI-18): the policy decides on all of them before the result is counted
    # against the registry's limit, so documents the caller cannot see never make a search too big.
    stmt = (
        select(DE.entry_uuid, DE.fragment, DE.status, DE.patient_id, DE.created_at, DE.updated_at)
        .where(*where)
        .order_by(*order_by(params))
    )
    return [Match(Hit(r[0], "DocumentEntry", r[1], r[3], r[2]), r[4], r[5]) for r in session.execute(stmt)]


def stored(session: Session, matches: list[Match]) -> list[Stored]:
    """Parse the page's fragments and attach their document relationships (relatesTo)."""
    ids = [m.hit.id for m in matches]
    relates: dict[str, list[tuple[str, str]]] = {}
    if ids:
        for source, atype, target in session.execute(
            select(AssociationRow.source, AssociationRow.association_type, AssociationRow.target).where(
                AssociationRow.source.in_(ids),
                AssociationRow.association_type.in_(v.DOCUMENT_RELATIONSHIPS),
                AssociationRow.status == v.APPROVED,
            )
        ):
            relates.setdefault(source, []).append((atype, target))
    out = []
    for m in matches:
        de = ebrim.from_fragment(m.hit.fragment)
        assert isinstance(de, DocumentEntry)
        out.append(Stored(de, m.registered, m.updated, relates.get(m.hit.id, [])))
    return out


def by_id(session: Session, entry_uuid: str) -> Match | None:
    row = session.execute(
        select(DE.entry_uuid, DE.fragment, DE.status, DE.patient_id, DE.created_at, DE.updated_at).where(
            DE.entry_uuid == entry_uuid
        )
    ).first()
    return Match(Hit(row[0], "DocumentEntry", row[1], row[3], row[2]), row[4], row[5]) if row else None


Visible = Callable[[list[Hit]], list[Hit]]


def visible(matches: list[Match], keep: Visible) -> list[Match]:
    allowed = {h.id for h in keep([m.hit for m in matches])}
    return [m for m in matches if m.hit.id in allowed]
