"""ITI-66 Find Document Lists: SubmissionSet and Folder Lists, the MHD binding of FindSubmissionSets
and FindFolders (ITI TF-2 3.66.4.1.3.1), on the same tables and helpers as ITI-18.

Parameters: code (submissionset | folder; both when absent), patient, patient.identifier, status,
date (submissionTime / lastUpdateTime), _lastUpdated (meta.lastUpdated: when the registry last
changed the List), source.given and source.family (SubmissionSet author; :exact), designationType
(contentTypeCode / Folder codeList), sourceId, identifier, _id, and PDSm isArchived (XDS packages
are never archived: true matches nothing). As in ITI-67 (``iti67``), a repeated parameter is an AND,
a comma inside a value an OR; ``_sort`` takes date and _lastUpdated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.list import List
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from carnet.fhir import datatypes as fdt
from carnet.fhir import listresource as flist
from carnet.fhir.iti67 import searched_patients, xds_tokens
from carnet.fhir.outcome import FHIRError
from carnet.fhir.search import (
    DateValue,
    Params,
    archived_flags,
    date_value,
    instant_condition,
    split_or,
    status_codes,
    token,
)
from carnet.registry.schema import AssociationRow, FolderRow, RegistryObjectRow, SubmissionSetRow
from carnet.registry.storedquery.queries import Hit, author_names_match, child_tokens_match, tokens_match
from carnet.xds import ebrim
from carnet.xds import vocabulary as v
from carnet.xds.model import Folder, SubmissionSet

SS = SubmissionSetRow
FOL = FolderRow
STATUS = {"current": [v.APPROVED], "retired": [v.DEPRECATED]}
SEARCH_PARAMS = [
    "code",
    "patient",
    "patient.identifier",
    "status",
    "date",
    "_lastUpdated",
    "source.given",
    "source.family",
    "designationType",
    "sourceId",
    "identifier",
    "_id",
    "isArchived",
]


@dataclass
class Match:
    hit: Hit
    registered: datetime
    sort_key: str  # List.date as a 14-digit key: submissionTime / Folder lastUpdateTime ("" if none)

    @property
    def updated_key(self) -> str:
        """meta.lastUpdated as a sortable key: a Folder's lastUpdateTime (the registry sets it at
        every change of membership), else when the row was registered (a SubmissionSet never
        changes). Microseconds appended, so keys of both kinds compare."""
        if self.hit.kind == "Folder" and self.sort_key:
            return self.sort_key + "000000"
        moment = self.registered if self.registered.tzinfo else self.registered.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")


# _sort keys: a Match's value for each. Lists come from two tables, so they are sorted here.
_SORT: dict[str, Callable[[Match], str]] = {
    "date": lambda m: m.sort_key,
    "_lastUpdated": lambda m: m.updated_key,
}


def _kinds(params: Params) -> set[str]:
    kinds: set[str] | None = None
    for value in params.values("code"):
        wanted = set()
        for alt in split_or(value):
            t = token(alt)
            if t.system not in (None, flist.LIST_TYPES) or t.code not in (flist.SUBMISSION_SET, flist.FOLDER):
                raise FHIRError.of(
                    400, "invalid", f"code '{alt}' is neither submissionset nor folder ({flist.LIST_TYPES})"
                )
            wanted.add(t.code)
        kinds = wanted if kinds is None else kinds & wanted
    return {flist.SUBMISSION_SET, flist.FOLDER} if kinds is None else kinds


def _common(
    params: Params, table: Any, date_col: Any, updated: Callable[[DateValue], ColumnElement[bool]]
) -> list[ColumnElement[bool]]:
    """The filters SubmissionSets and Folders share, on ``table``; ``date_col`` is List.date's
    column, ``updated`` the _lastUpdated condition. Each repetition of a parameter adds a filter."""
    where: list[ColumnElement[bool]] = []
    for value in params.values("status"):
        where.append(table.status.in_(status_codes(value, STATUS)))
    for value in params.values("isArchived"):
        if archived_flags(value) == {"true"}:
            where.append(table.entry_uuid.is_(None))
    for value in params.values("date"):
        where.append(
            or_(*[instant_condition(date_col, date_value("date", a), True) for a in split_or(value)])
        )
    for value in params.values("_lastUpdated"):
        where.append(or_(*[updated(date_value("_lastUpdated", a)) for a in split_or(value)]))
    for value in params.values("_id"):
        ids = [fdt.entry_uuid_of(i) for i in split_or(value)]
        where.append(table.entry_uuid.in_([i for i in ids if i]))
    for value in params.values("identifier"):
        ors: list[ColumnElement[bool]] = []
        for alt in split_or(value):
            t = token(alt)
            if not t.code:
                continue
            if t.code.startswith("urn:uuid:"):
                ors.append(table.entry_uuid == t.code.lower())
            try:
                ors.append(table.unique_id == fdt.unique_id_of(t.system or None, t.code))
            except ValueError:
                ors.append(table.unique_id == t.code)
        where.append(or_(*ors) if ors else table.entry_uuid.is_(None))
    return where


def _submission_set_updated(d: DateValue) -> ColumnElement[bool]:
    # A SubmissionSet never changes once registered: its meta.lastUpdated is its registration.
    return instant_condition(SS.created_at, d, False)


def _folder_updated(d: DateValue) -> ColumnElement[bool]:
    # meta.lastUpdated is the lastUpdateTime the registry sets (at registration and whenever a
    # document is added); the registration time for a row that has none.
    return or_(
        and_(FOL.last_update_time.is_not(None), instant_condition(FOL.last_update_time, d, True)),
        and_(FOL.last_update_time.is_(None), instant_condition(FOL.created_at, d, False)),
    )


def _sort_keys(params: Params) -> list[tuple[Callable[[Match], str], bool]]:
    """_sort as (key, descending) pairs; 400 for a key this search does not sort on (as ITI-67)."""
    keys = []
    for value in params.values("_sort"):
        for key in split_or(value):
            get = _SORT.get(key.lstrip("-"))
            if get is None:
                raise FHIRError.of(
                    400, "not-supported", f"_sort '{key}' is not supported (use {', '.join(_SORT)})"
                )
            keys.append((get, key.startswith("-")))
    return keys or [(_SORT["date"], True)]  # the most recent Lists first


def _sorted(matches: list[Match], keys: list[tuple[Callable[[Match], str], bool]]) -> list[Match]:
    # Stable sorts, last key first, over an order by id: the id breaks ties, so pages are stable.
    out = sorted(matches, key=lambda m: m.hit.id)
    for get, descending in reversed(keys):
        out.sort(key=get, reverse=descending)
    return out


def find(session: Session, params: Params) -> list[Match]:
    """The SubmissionSets and Folders matching the search, in order."""
    kinds = _kinds(params)
    sort_keys = _sort_keys(params)
    pids = searched_patients(session, params, "Find Document Lists")
    if pids == []:
        return []
    out: list[Match] = []
    if flist.SUBMISSION_SET in kinds:
        where = _common(params, SS, SS.submission_time, _submission_set_updated)
        if pids is not None:
            where.insert(0, SS.patient_id.in_(pids))
        for group in xds_tokens(params.values("designationType")):
            where.append(tokens_match(SS.content_type_code, SS.content_type_scheme, group))
        for value in params.values("sourceId"):
            ids = []
            for alt in split_or(value):
                t = token(alt)
                try:
                    ids.append(fdt.unique_id_of(t.system or None, t.code))
                except ValueError:
                    ids.append(t.code or "")
            where.append(SS.source_id.in_(ids))
        for exact in (False, True):
            suffix = ":exact" if exact else ""
            for fam in params.values(f"source.family{suffix}"):
                where.append(author_names_match(session, SS.entry_uuid, split_or(fam), [], exact))
            for giv in params.values(f"source.given{suffix}"):
                where.append(author_names_match(session, SS.entry_uuid, [], split_or(giv), exact))
        rows = session.execute(
            select(SS.entry_uuid, SS.fragment, SS.status, SS.patient_id, SS.created_at, SS.submission_time)
            .where(*where)
        ).all()
        out += [Match(Hit(r[0], "SubmissionSet", r[1], r[3], r[2]), r[4], r[5] or "") for r in rows]
    # sourceId and source.* are SubmissionSet attributes: a Folder has neither, so matches none.
    submission_set_only = [
        n
        for n in ("sourceId", "source.family", "source.given", "source.family:exact", "source.given:exact")
        if params.values(n)
    ]
    if flist.FOLDER in kinds and not submission_set_only:
        where = _common(params, FOL, FOL.last_update_time, _folder_updated)
        if pids is not None:
            where.insert(0, FOL.patient_id.in_(pids))
        for group in xds_tokens(params.values("designationType")):
            where.append(child_tokens_match("folder", FOL.entry_uuid, group))
        rows = session.execute(
            select(
                FOL.entry_uuid, FOL.fragment, FOL.status, FOL.patient_id, FOL.created_at, FOL.last_update_time
            )
            .where(*where)
        ).all()
        out += [Match(Hit(r[0], "Folder", r[1], r[3], r[2]), r[4], r[5] or "") for r in rows]
    return _sorted(out, sort_keys)


def members(session: Session, package_ids: list[str]) -> dict[str, list[str]]:
    """The relative references of each package's members (DocumentReferences and Folder Lists)."""
    if not package_ids:
        return {}
    rows = session.execute(
        select(AssociationRow.source, AssociationRow.target, RegistryObjectRow.kind)
        .join(RegistryObjectRow, RegistryObjectRow.id == AssociationRow.target)
        .where(
            AssociationRow.source.in_(package_ids),
            AssociationRow.association_type == v.HAS_MEMBER,
            AssociationRow.status == v.APPROVED,
            RegistryObjectRow.kind.in_(["DocumentEntry", "Folder"]),
        )
        .order_by(AssociationRow.created_at, AssociationRow.entry_uuid)
    ).all()
    out: dict[str, list[str]] = {}
    for source, target, kind in rows:
        rtype = "DocumentReference" if kind == "DocumentEntry" else "List"
        out.setdefault(source, []).append(f"{rtype}/{fdt.resource_id(target)}")
    return out


def to_fhir(session: Session, matches: list[Match]) -> list[List]:
    refs = members(session, [m.hit.id for m in matches])
    out = []
    for m in matches:
        obj = ebrim.from_fragment(m.hit.fragment)
        if isinstance(obj, SubmissionSet):
            out.append(flist.submission_set_to_fhir(obj, refs.get(obj.entry_uuid, []), m.registered))
        elif isinstance(obj, Folder):
            out.append(flist.folder_to_fhir(obj, refs.get(obj.entry_uuid, []), m.registered))
    return out


def by_id(session: Session, entry_uuid: str) -> Match | None:
    for table, kind, key in (
        (SS, "SubmissionSet", SS.submission_time),
        (FOL, "Folder", FOL.last_update_time),
    ):
        row = session.execute(
            select(
                table.entry_uuid, table.fragment, table.status, table.patient_id, table.created_at, key
            ).where(and_(table.entry_uuid == entry_uuid))
        ).first()
        if row is not None:
            return Match(Hit(row[0], kind, row[1], row[3], row[2]), row[4], row[5] or "")
    return None


def folder_with_members(session: Session, entry_uuid: str) -> tuple[Folder, set[str]] | None:
    """An existing Folder and its member DocumentEntries (for an ITI-65 Folder update)."""
    fragment = session.scalar(select(FOL.fragment).where(FOL.entry_uuid == entry_uuid))
    if fragment is None:
        return None
    folder = ebrim.from_fragment(fragment)
    assert isinstance(folder, Folder)
    targets = session.scalars(
        select(AssociationRow.target).where(
            AssociationRow.source == entry_uuid,
            AssociationRow.association_type == v.HAS_MEMBER,
            AssociationRow.status == v.APPROVED,
        )
    )
    return folder, set(targets)
