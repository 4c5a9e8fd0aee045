"""The stored queries (ITI TF-2a 3.18.4.1.2.3.7): one function per query, one engine for ITI-18 and MHD.

Each query is declared with its id, its parameters (kind, multiplicity, AND/OR) and the groups of
parameters of which exactly one is required; ``run`` checks the declaration, then the function
builds SQL on the flattened tables. Results carry stored fragments, so a LeafClass answer is a
concatenation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, and_, exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from carnet.registry import patients
from carnet.registry.schema import (
    AssociationRow,
    AuthorRow,
    CodeRow,
    DocumentEntryRow,
    FolderRow,
    ReferenceIdRow,
    SubmissionSetRow,
)
from carnet.registry.storedquery.params import Params, ParamSpec, parse_code, parse_slots
from carnet.registry.validate.datatypes import dtm_to_key
from carnet.signature import query as signature_query
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, XDSError

DE = DocumentEntryRow
SS = SubmissionSetRow
FOL = FolderRow
ASSOC = AssociationRow


@dataclass
class Hit:
    id: str
    kind: str
    fragment: str
    patient_id: str | None
    status: str | None = None
    source: str | None = None
    target: str | None = None


@dataclass
class QueryResult:
    documents: list[Hit] = field(default_factory=list)
    submission_sets: list[Hit] = field(default_factory=list)
    folders: list[Hit] = field(default_factory=list)
    associations: list[Hit] = field(default_factory=list)

    def all(self) -> list[Hit]:
        return [*self.submission_sets, *self.documents, *self.folders, *self.associations]

    def __len__(self) -> int:
        return len(self.all())

    def filter(self, keep: Callable[[list[Hit]], list[Hit]]) -> None:
        """Apply an access decision; an association to an object that was left out goes with it."""
        before = {h.id for h in (*self.documents, *self.submission_sets, *self.folders)}
        self.documents = keep(self.documents)
        self.submission_sets = keep(self.submission_sets)
        self.folders = keep(self.folders)
        gone = before - {h.id for h in (*self.documents, *self.submission_sets, *self.folders)}
        kept = [a for a in self.associations if a.source not in gone and a.target not in gone]
        self.associations = keep(kept)


@dataclass(frozen=True)
class StoredQuery:
    name: str
    id: str
    params: dict[str, ParamSpec]
    required: tuple[str, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()
    run: Callable[[Session, Params], QueryResult] = lambda s, p: QueryResult()
    # Find queries are scoped by a patient parameter; Get queries may cross patients.
    patient_scoped: bool = False


def _spec(*items: tuple[str, str, bool, bool]) -> dict[str, ParamSpec]:
    return {name: ParamSpec(name, kind, multiple, and_or) for name, kind, multiple, and_or in items}


# ---------------------------------------------------------------------------------------------
# SQL building blocks
# ---------------------------------------------------------------------------------------------


def _codes_match(code_col: Any, scheme_col: Any, values: Iterable[str]) -> ColumnElement[bool]:
    return tokens_match(code_col, scheme_col, [parse_code(value) for value in values])


def tokens_match(
    code_col: Any, scheme_col: Any, tokens: Iterable[tuple[str | None, str | None]]
) -> ColumnElement[bool]:
    """Any of the (code, scheme) pairs; None leaves that half free (FHIR ``code``, ``system|``)."""
    terms = []
    for code, scheme in tokens:
        term = []
        if code is not None:
            term.append(code_col == code)
        if scheme is not None:
            term.append(scheme_col == scheme)
        terms.append(and_(*term) if term else code_col.is_not(None))
    return or_(*terms)


def _child_codes(kind: str, object_col: Any, values: list[str]) -> ColumnElement[bool]:
    return child_tokens_match(kind, object_col, [parse_code(value) for value in values])


def child_tokens_match(
    kind: str, object_col: Any, tokens: Iterable[tuple[str | None, str | None]]
) -> ColumnElement[bool]:
    """The object has a child code of ``kind`` ('event', 'conf', 'folder') matching any token."""
    return exists(
        select(CodeRow.id).where(
            CodeRow.object_uuid == object_col,
            CodeRow.kind == kind,
            tokens_match(CodeRow.code, CodeRow.scheme, tokens),
        )
    )


def like_escape(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (escape character backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _xcn_component(session: Session, person: Any, number: int) -> Any:
    """Component ``number`` (2 = family, 3 = given) of an XCN column, in portable SQL."""

    def position(haystack: Any) -> Any:
        fn = func.strpos if session.get_bind().dialect.name == "postgresql" else func.instr
        return fn(haystack, "^")

    rest = person
    for _ in range(number - 1):
        rest = func.substr(rest, position(rest.concat("^")) + 1, type_=String)
    return func.substr(rest, 1, position(rest.concat("^")) - 1, type_=String)


def author_names_match(
    session: Session, object_col: Any, family: list[str], given: list[str], exact: bool = False
) -> ColumnElement[bool]:
    """An author whose authorPerson family name (XCN.2) / given name (XCN.3) matches (FHIR string
    search: case-insensitive, starts-with unless ``exact``); each list is ORed, the two ANDed."""
    conds: list[ColumnElement[bool]] = []
    for number, values in ((2, family), (3, given)):
        if not values:
            continue
        part = _xcn_component(session, AuthorRow.person, number)
        if exact:
            conds.append(or_(*[part == val for val in values]))
        else:
            conds.append(
                or_(*[func.lower(part).like(like_escape(val.lower()) + "%", escape="\\") for val in values])
            )
    return exists(select(AuthorRow.id).where(AuthorRow.object_uuid == object_col, *conds))


def _authors(object_col: Any, patterns: list[str]) -> ColumnElement[bool]:
    # ITI-18 wildcards are SQL's: % any run, _ one character.
    return exists(
        select(AuthorRow.id).where(
            AuthorRow.object_uuid == object_col, or_(*[AuthorRow.person.like(p) for p in patterns])
        )
    )


def _time_range(col: Any, p: Params, from_name: str, to_name: str) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    lo, hi = p.one(from_name), p.one(to_name)
    # From is inclusive and To exclusive (ITI TF-2a 3.18.4.1.2.3.6.1), at the precision given.
    if lo:
        out.append(col >= dtm_to_key(lo))
    if hi:
        out.append(col < dtm_to_key(hi))
    return out


def _patient_ids(session: Session, p: Params, name: str) -> list[str]:
    pid = p.one(name)
    assert pid is not None
    return patients.query_ids(session, pid)


def _object_types(p: Params) -> list[str]:
    types = p.many("$XDSDocumentEntryType")
    return types or [v.DE_STABLE]


def _de_filters(p: Params) -> list[ColumnElement[bool]]:
    """The DocumentEntry parameters shared by FindDocuments and its variants."""
    f: list[ColumnElement[bool]] = []
    for name, code_col, scheme_col in (
        ("$XDSDocumentEntryClassCode", DE.class_code, DE.class_scheme),
        ("$XDSDocumentEntryTypeCode", DE.type_code, DE.type_scheme),
        ("$XDSDocumentEntryPracticeSettingCode", DE.practice_code, DE.practice_scheme),
        ("$XDSDocumentEntryHealthcareFacilityTypeCode", DE.hcft_code, DE.hcft_scheme),
        ("$XDSDocumentEntryFormatCode", DE.format_code, DE.format_scheme),
    ):
        if p.has(name):
            f.append(_codes_match(code_col, scheme_col, p.many(name)))
    f += _time_range(
        DE.creation_time, p, "$XDSDocumentEntryCreationTimeFrom", "$XDSDocumentEntryCreationTimeTo"
    )
    f += _time_range(
        DE.service_start_time,
        p,
        "$XDSDocumentEntryServiceStartTimeFrom",
        "$XDSDocumentEntryServiceStartTimeTo",
    )
    f += _time_range(
        DE.service_stop_time, p, "$XDSDocumentEntryServiceStopTimeFrom", "$XDSDocumentEntryServiceStopTimeTo"
    )
    for group in p.groups("$XDSDocumentEntryEventCodeList"):
        f.append(_child_codes("event", DE.entry_uuid, group))
    for group in p.groups("$XDSDocumentEntryConfidentialityCode"):
        f.append(_child_codes("conf", DE.entry_uuid, group))
    if p.has("$XDSDocumentEntryAuthorPerson"):
        f.append(_authors(DE.entry_uuid, p.many("$XDSDocumentEntryAuthorPerson")))
    for group in p.groups("$XDSDocumentEntryReferenceIdList"):
        f.append(
            exists(
                select(ReferenceIdRow.id).where(
                    ReferenceIdRow.entry_uuid == DE.entry_uuid, ReferenceIdRow.value.in_(group)
                )
            )
        )
    return f


def _content_filters(p: Params) -> list[ColumnElement[bool]]:
    """The document filters of GetAll, GetSubmissionSetAndContents and GetFolderAndContents."""
    f: list[ColumnElement[bool]] = [DE.object_type.in_(_object_types(p))]
    if p.has("$XDSDocumentEntryFormatCode"):
        f.append(_codes_match(DE.format_code, DE.format_scheme, p.many("$XDSDocumentEntryFormatCode")))
    for group in p.groups("$XDSDocumentEntryConfidentialityCode"):
        f.append(_child_codes("conf", DE.entry_uuid, group))
    return f


def _hits(
    session: Session, table: Any, kind: str, where: list[ColumnElement[bool]], order: Any = None
) -> list[Hit]:
    if kind == "Association":
        stmt = select(table.entry_uuid, table.fragment, table.status, table.source, table.target).where(
            *where
        )
        return [Hit(r[0], kind, r[1], None, r[2], r[3], r[4]) for r in session.execute(stmt)]
    stmt = select(table.entry_uuid, table.fragment, table.status, table.patient_id).where(*where)
    if order is not None:
        stmt = stmt.order_by(order)
    return [Hit(r[0], kind, r[1], r[3], r[2]) for r in session.execute(stmt)]


def _documents(session: Session, where: list[ColumnElement[bool]]) -> list[Hit]:
    return _hits(session, DE, "DocumentEntry", where, DE.creation_time)


def _associations(
    session: Session, where: list[ColumnElement[bool]], statuses: Iterable[str] = (v.APPROVED,)
) -> list[Hit]:
    return _hits(session, ASSOC, "Association", [*where, ASSOC.status.in_(list(statuses))])


def _association_statuses(p: Params) -> list[str]:
    """$XDSAssociationStatus (Metadata Update): which associations a Get query returns; Approved
    unless asked (a deprecated relationship or membership is history, NIST 20001)."""
    return p.many("$XDSAssociationStatus") or [v.APPROVED]


def _metadata_level(p: Params) -> str:
    level = p.one("$MetadataLevel") or "1"
    if level not in ("1", "2"):
        raise XDSError.of(ErrorCode.REGISTRY_ERROR, f"$MetadataLevel must be 1 or 2, got {level!r}")
    return level


def _by_unique_id(session: Session, table: Any, unique_ids: list[str], p: Params) -> list[str]:
    """Entry UUIDs of the objects with these uniqueIds: every version at $MetadataLevel 2, the
    latest version of each logical object otherwise (ITI TF-2a 3.18.4.1.2.3.5.1)."""
    rows = session.execute(
        select(table.entry_uuid, table.logical_id, table.version).where(table.unique_id.in_(unique_ids))
    ).all()
    if _metadata_level(p) == "2":
        return [r[0] for r in rows]
    latest: dict[str, tuple[str, int]] = {}
    for entry_uuid, logical_id, version in rows:
        if logical_id not in latest or version > latest[logical_id][1]:
            latest[logical_id] = (entry_uuid, version)
    return [entry_uuid for entry_uuid, _ in latest.values()]


def _one_of_ids(session: Session, p: Params, table: Any, prefix: str) -> list[str]:
    """Entry UUIDs named by $<prefix>EntryUUID, $<prefix>UniqueId or $<prefix>LogicalID."""
    if p.has(f"${prefix}EntryUUID"):
        return p.many(f"${prefix}EntryUUID")
    if p.has(f"${prefix}UniqueId"):
        return _by_unique_id(session, table, p.many(f"${prefix}UniqueId"), p)
    if p.has(f"${prefix}LogicalID"):
        return list(
            session.scalars(
                select(table.entry_uuid).where(table.logical_id.in_(p.many(f"${prefix}LogicalID")))
            )
        )
    return []


# ---------------------------------------------------------------------------------------------
# The queries
# ---------------------------------------------------------------------------------------------


def find_documents(session: Session, p: Params) -> QueryResult:
    pids = _patient_ids(session, p, "$XDSDocumentEntryPatientId")
    if not pids:
        return QueryResult()
    where = [
        DE.patient_id.in_(pids),
        DE.status.in_(p.many("$XDSDocumentEntryStatus")),
        DE.object_type.in_(_object_types(p)),
        *_de_filters(p),
    ]
    return QueryResult(documents=_documents(session, where))


def find_submission_sets(session: Session, p: Params) -> QueryResult:
    pids = _patient_ids(session, p, "$XDSSubmissionSetPatientId")
    if not pids:
        return QueryResult()
    where: list[ColumnElement[bool]] = [
        SS.patient_id.in_(pids),
        SS.status.in_(p.many("$XDSSubmissionSetStatus")),
    ]
    if p.has("$XDSSubmissionSetSourceId"):
        where.append(SS.source_id.in_(p.many("$XDSSubmissionSetSourceId")))
    where += _time_range(
        SS.submission_time, p, "$XDSSubmissionSetSubmissionTimeFrom", "$XDSSubmissionSetSubmissionTimeTo"
    )
    if p.has("$XDSSubmissionSetAuthorPerson"):
        where.append(_authors(SS.entry_uuid, p.many("$XDSSubmissionSetAuthorPerson")))
    if p.has("$XDSSubmissionSetContentType"):
        where.append(
            _codes_match(SS.content_type_code, SS.content_type_scheme, p.many("$XDSSubmissionSetContentType"))
        )
    return QueryResult(submission_sets=_hits(session, SS, "SubmissionSet", where, SS.submission_time))


def find_folders(session: Session, p: Params) -> QueryResult:
    pids = _patient_ids(session, p, "$XDSFolderPatientId")
    if not pids:
        return QueryResult()
    where: list[ColumnElement[bool]] = [
        FOL.patient_id.in_(pids),
        FOL.status.in_(p.many("$XDSFolderStatus")),
    ]
    where += _time_range(
        FOL.last_update_time, p, "$XDSFolderLastUpdateTimeFrom", "$XDSFolderLastUpdateTimeTo"
    )
    for group in p.groups("$XDSFolderCodeList"):
        where.append(_child_codes("folder", FOL.entry_uuid, group))
    return QueryResult(folders=_hits(session, FOL, "Folder", where, FOL.last_update_time))


def get_all(session: Session, p: Params) -> QueryResult:
    pids = _patient_ids(session, p, "$patientId")
    if not pids:
        return QueryResult()
    docs = _documents(
        session,
        [DE.patient_id.in_(pids), DE.status.in_(p.many("$XDSDocumentEntryStatus")), *_content_filters(p)],
    )
    sets = _hits(
        session,
        SS,
        "SubmissionSet",
        [SS.patient_id.in_(pids), SS.status.in_(p.many("$XDSSubmissionSetStatus"))],
    )
    folders = _hits(
        session, FOL, "Folder", [FOL.patient_id.in_(pids), FOL.status.in_(p.many("$XDSFolderStatus"))]
    )
    ids = [h.id for h in (*docs, *sets, *folders)]
    assocs = _associations_between(session, ids)
    return QueryResult(docs, sets, folders, assocs)


def _associations_between(session: Session, ids: list[str]) -> list[Hit]:
    """Associations from one of ``ids`` to another, plus SS HasMember of such associations."""
    if not ids:
        return []
    idset = set(ids)
    first = [h for h in _associations(session, [ASSOC.source.in_(ids)]) if h.target in idset]
    inner = [h.id for h in first]
    second = _associations(session, [ASSOC.source.in_(ids), ASSOC.target.in_(inner)]) if inner else []
    return first + second


def get_documents(session: Session, p: Params) -> QueryResult:
    ids = _one_of_ids(session, p, DE, "XDSDocumentEntry")
    return QueryResult(documents=_documents(session, [DE.entry_uuid.in_(ids)]) if ids else [])


def get_folders(session: Session, p: Params) -> QueryResult:
    ids = _one_of_ids(session, p, FOL, "XDSFolder")
    return QueryResult(folders=_hits(session, FOL, "Folder", [FOL.entry_uuid.in_(ids)]) if ids else [])


def get_associations(session: Session, p: Params) -> QueryResult:
    ids = p.many("$uuid")
    return QueryResult(
        associations=_associations(
            session, [or_(ASSOC.source.in_(ids), ASSOC.target.in_(ids))], _association_statuses(p)
        )
    )


def get_documents_and_associations(session: Session, p: Params) -> QueryResult:
    ids = _one_of_ids(session, p, DE, "XDSDocumentEntry")
    if not ids:
        return QueryResult()
    docs = _documents(session, [DE.entry_uuid.in_(ids)])
    found = [d.id for d in docs]
    assocs = (
        _associations(
            session, [or_(ASSOC.source.in_(found), ASSOC.target.in_(found))], _association_statuses(p)
        )
        if found
        else []
    )
    return QueryResult(documents=docs, associations=assocs)


def get_submission_sets(session: Session, p: Params) -> QueryResult:
    ids = p.many("$uuid")
    rows = session.execute(
        select(ASSOC.entry_uuid, ASSOC.source).where(
            ASSOC.target.in_(ids), ASSOC.association_type == v.HAS_MEMBER
        )
    ).all()
    ss_ids = {r[1] for r in rows}
    sets = _hits(session, SS, "SubmissionSet", [SS.entry_uuid.in_(ss_ids)]) if ss_ids else []
    found = {s.id for s in sets}
    assoc_ids = [r[0] for r in rows if r[1] in found]
    assocs = _associations(session, [ASSOC.entry_uuid.in_(assoc_ids)]) if assoc_ids else []
    return QueryResult(submission_sets=sets, associations=assocs)


def _members(session: Session, source: str, statuses: Iterable[str] = (v.APPROVED,)) -> list[tuple[str, str]]:
    """(association id, target) of the HasMember associations from ``source``."""
    return [
        (r[0], r[1])
        for r in session.execute(
            select(ASSOC.entry_uuid, ASSOC.target).where(
                ASSOC.source == source,
                ASSOC.association_type == v.HAS_MEMBER,
                ASSOC.status.in_(list(statuses)),
            )
        )
    ]


def get_submission_set_and_contents(session: Session, p: Params) -> QueryResult:
    if p.has("$XDSSubmissionSetEntryUUID"):
        where = [SS.entry_uuid == p.one("$XDSSubmissionSetEntryUUID")]
    else:
        where = [SS.unique_id == p.one("$XDSSubmissionSetUniqueId")]
    sets = _hits(session, SS, "SubmissionSet", where)
    if not sets:
        return QueryResult()
    ss_id = sets[0].id
    members = _members(session, ss_id)
    targets = [t for _, t in members]
    docs = _documents(session, [DE.entry_uuid.in_(targets), *_content_filters(p)]) if targets else []
    folders = _hits(session, FOL, "Folder", [FOL.entry_uuid.in_(targets)]) if targets else []
    # Associations among members: SS->member, and Folder->DE memberships that are members too.
    kept = {h.id for h in (*docs, *folders)}
    member_assocs = {t for _, t in members} - kept
    inner = (
        dict(
            session.execute(
                select(ASSOC.entry_uuid, ASSOC.target).where(ASSOC.entry_uuid.in_(member_assocs))
            ).all()
        )
        if member_assocs
        else {}
    )
    excluded_docs = (
        set(session.scalars(select(DE.entry_uuid).where(DE.entry_uuid.in_(targets)))) - kept
        if targets
        else set()
    )
    keep_inner = {a for a, t in inner.items() if t not in excluded_docs}
    keep = [a for a, t in members if t in kept or t in keep_inner]
    assocs = _associations(session, [ASSOC.entry_uuid.in_(keep + list(keep_inner))]) if keep else []
    return QueryResult(documents=docs, submission_sets=sets, folders=folders, associations=assocs)


def get_folder_and_contents(session: Session, p: Params) -> QueryResult:
    if p.has("$XDSFolderEntryUUID"):
        where = [FOL.entry_uuid == p.one("$XDSFolderEntryUUID")]
    else:
        # Metadata Update: one uniqueId may name several versions of the folder.
        uid = p.one("$XDSFolderUniqueId")
        where = [FOL.entry_uuid.in_(_by_unique_id(session, FOL, [uid] if uid else [], p))]
    folders = _hits(session, FOL, "Folder", where, FOL.version)
    statuses = _association_statuses(p)
    docs: dict[str, Hit] = {}
    assocs: list[Hit] = []
    for folder in folders:
        members = _members(session, folder.id, statuses)
        targets = [t for _, t in members]
        found = _documents(session, [DE.entry_uuid.in_(targets), *_content_filters(p)]) if targets else []
        docs.update((d.id, d) for d in found)
        kept = {d.id for d in found}
        keep = [a for a, t in members if t in kept]
        assocs += _associations(session, [ASSOC.entry_uuid.in_(keep)], statuses) if keep else []
    return QueryResult(documents=list(docs.values()), folders=folders, associations=assocs)


def get_folders_for_document(session: Session, p: Params) -> QueryResult:
    ids = _one_of_ids(session, p, DE, "XDSDocumentEntry")
    if not ids:
        return QueryResult()
    sources = session.scalars(
        select(ASSOC.source).where(ASSOC.target.in_(ids), ASSOC.association_type == v.HAS_MEMBER)
    )
    return QueryResult(folders=_hits(session, FOL, "Folder", [FOL.entry_uuid.in_(set(sources))]))


def get_related_documents(session: Session, p: Params) -> QueryResult:
    ids = _one_of_ids(session, p, DE, "XDSDocumentEntry")
    if not ids:
        return QueryResult()
    doc_id = ids[0]
    types = [v.ASSOCIATION_SHORT_NAMES.get(t, t) for t in p.many("$AssociationTypes")]
    types = [t for t in types if t in v.DOCUMENT_RELATIONSHIPS]
    if not types:
        return QueryResult()
    assocs = _associations(
        session,
        [or_(ASSOC.source == doc_id, ASSOC.target == doc_id), ASSOC.association_type.in_(types)],
        _association_statuses(p),
    )
    if not assocs:
        return QueryResult()
    ends = session.execute(
        select(ASSOC.source, ASSOC.target).where(ASSOC.entry_uuid.in_([a.id for a in assocs]))
    ).all()
    related = {x for pair in ends for x in pair}
    docs = _documents(session, [DE.entry_uuid.in_(related), DE.object_type.in_(_object_types(p))])
    return QueryResult(documents=docs, associations=assocs)


# ---------------------------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------------------------

_DE_FIND = (
    ("$XDSDocumentEntryPatientId", "str", False, False),
    ("$XDSDocumentEntryStatus", "status", True, False),
    ("$XDSDocumentEntryClassCode", "code", True, False),
    ("$XDSDocumentEntryTypeCode", "code", True, False),
    ("$XDSDocumentEntryPracticeSettingCode", "code", True, False),
    ("$XDSDocumentEntryHealthcareFacilityTypeCode", "code", True, False),
    ("$XDSDocumentEntryFormatCode", "code", True, False),
    ("$XDSDocumentEntryCreationTimeFrom", "time", False, False),
    ("$XDSDocumentEntryCreationTimeTo", "time", False, False),
    ("$XDSDocumentEntryServiceStartTimeFrom", "time", False, False),
    ("$XDSDocumentEntryServiceStartTimeTo", "time", False, False),
    ("$XDSDocumentEntryServiceStopTimeFrom", "time", False, False),
    ("$XDSDocumentEntryServiceStopTimeTo", "time", False, False),
    ("$XDSDocumentEntryEventCodeList", "code", True, True),
    ("$XDSDocumentEntryConfidentialityCode", "code", True, True),
    ("$XDSDocumentEntryAuthorPerson", "str", True, False),
    ("$XDSDocumentEntryType", "str", True, False),
)
_CONTENT = (
    ("$XDSDocumentEntryFormatCode", "code", True, False),
    ("$XDSDocumentEntryConfidentialityCode", "code", True, True),
    ("$XDSDocumentEntryType", "str", True, False),
)
_DE_IDS = (
    ("$XDSDocumentEntryEntryUUID", "str", True, False),
    ("$XDSDocumentEntryUniqueId", "str", True, False),
    ("$XDSDocumentEntryLogicalID", "str", True, False),
    ("$MetadataLevel", "str", False, False),
    ("$XDSAssociationStatus", "status", True, False),
    ("$homeCommunityId", "str", False, False),
)
# Metadata Update parameters of the Get queries that return associations.
_MU = (("$MetadataLevel", "str", False, False), ("$XDSAssociationStatus", "status", True, False))
_DE_ID = (
    ("$XDSDocumentEntryEntryUUID", "str", False, False),
    ("$XDSDocumentEntryUniqueId", "str", False, False),
    ("$homeCommunityId", "str", False, False),
)

QUERIES: dict[str, StoredQuery] = {
    q.id: q
    for q in [
        StoredQuery(
            "FindDocuments",
            "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
            _spec(*_DE_FIND),
            ("$XDSDocumentEntryPatientId", "$XDSDocumentEntryStatus"),
            run=find_documents,
            patient_scoped=True,
        ),
        StoredQuery(
            "FindDocumentsByReferenceId",
            "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492",
            _spec(*_DE_FIND, ("$XDSDocumentEntryReferenceIdList", "str", True, True)),
            ("$XDSDocumentEntryPatientId", "$XDSDocumentEntryStatus", "$XDSDocumentEntryReferenceIdList"),
            run=find_documents,
            patient_scoped=True,
        ),
        StoredQuery(
            "FindSubmissionSets",
            "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9",
            _spec(
                ("$XDSSubmissionSetPatientId", "str", False, False),
                ("$XDSSubmissionSetStatus", "status", True, False),
                ("$XDSSubmissionSetSourceId", "str", True, False),
                ("$XDSSubmissionSetSubmissionTimeFrom", "time", False, False),
                ("$XDSSubmissionSetSubmissionTimeTo", "time", False, False),
                ("$XDSSubmissionSetAuthorPerson", "str", False, False),
                ("$XDSSubmissionSetContentType", "code", True, False),
            ),
            ("$XDSSubmissionSetPatientId", "$XDSSubmissionSetStatus"),
            run=find_submission_sets,
            patient_scoped=True,
        ),
        StoredQuery(
            "FindFolders",
            "urn:uuid:958f3006-baad-4929-a4de-ff1114824431",
            _spec(
                ("$XDSFolderPatientId", "str", False, False),
                ("$XDSFolderStatus", "status", True, False),
                ("$XDSFolderLastUpdateTimeFrom", "time", False, False),
                ("$XDSFolderLastUpdateTimeTo", "time", False, False),
                ("$XDSFolderCodeList", "code", True, True),
            ),
            ("$XDSFolderPatientId", "$XDSFolderStatus"),
            run=find_folders,
            patient_scoped=True,
        ),
        StoredQuery(
            "GetAll",
            "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3",
            _spec(
                ("$patientId", "str", False, False),
                ("$XDSDocumentEntryStatus", "status", True, False),
                ("$XDSSubmissionSetStatus", "status", True, False),
                ("$XDSFolderStatus", "status", True, False),
                *_CONTENT,
            ),
            ("$patientId", "$XDSDocumentEntryStatus", "$XDSSubmissionSetStatus", "$XDSFolderStatus"),
            run=get_all,
            patient_scoped=True,
        ),
        StoredQuery(
            "GetDocuments",
            "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
            _spec(*_DE_IDS),
            one_of=(
                ("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId", "$XDSDocumentEntryLogicalID"),
            ),
            run=get_documents,
        ),
        StoredQuery(
            "GetFolders",
            "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4",
            _spec(
                ("$XDSFolderEntryUUID", "str", True, False),
                ("$XDSFolderUniqueId", "str", True, False),
                ("$XDSFolderLogicalID", "str", True, False),
                ("$MetadataLevel", "str", False, False),
                ("$homeCommunityId", "str", False, False),
            ),
            one_of=(("$XDSFolderEntryUUID", "$XDSFolderUniqueId", "$XDSFolderLogicalID"),),
            run=get_folders,
        ),
        StoredQuery(
            "GetAssociations",
            "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155",
            _spec(("$uuid", "str", True, False), ("$homeCommunityId", "str", False, False), *_MU),
            ("$uuid",),
            run=get_associations,
        ),
        StoredQuery(
            "GetDocumentsAndAssociations",
            "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a",
            _spec(*_DE_IDS),
            one_of=(("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"),),
            run=get_documents_and_associations,
        ),
        StoredQuery(
            "GetSubmissionSets",
            "urn:uuid:51224314-5390-4169-9b91-b1980040715a",
            _spec(("$uuid", "str", True, False), ("$homeCommunityId", "str", False, False)),
            ("$uuid",),
            run=get_submission_sets,
        ),
        StoredQuery(
            "GetSubmissionSetAndContents",
            "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83",
            _spec(
                ("$XDSSubmissionSetEntryUUID", "str", False, False),
                ("$XDSSubmissionSetUniqueId", "str", False, False),
                ("$homeCommunityId", "str", False, False),
                *_CONTENT,
            ),
            one_of=(("$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId"),),
            run=get_submission_set_and_contents,
        ),
        StoredQuery(
            "GetFolderAndContents",
            "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7",
            _spec(
                ("$XDSFolderEntryUUID", "str", False, False),
                ("$XDSFolderUniqueId", "str", False, False),
                ("$homeCommunityId", "str", False, False),
                *_CONTENT,
                *_MU,
            ),
            one_of=(("$XDSFolderEntryUUID", "$XDSFolderUniqueId"),),
            run=get_folder_and_contents,
        ),
        StoredQuery(
            "GetFoldersForDocument",
            "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578",
            _spec(*_DE_ID),
            one_of=(("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"),),
            run=get_folders_for_document,
        ),
        StoredQuery(
            "GetRelatedDocuments",
            "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6",
            _spec(
                *_DE_ID,
                ("$AssociationTypes", "str", True, False),
                ("$XDSDocumentEntryType", "str", True, False),
                *_MU,
            ),
            ("$AssociationTypes",),
            one_of=(("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"),),
            run=get_related_documents,
        ),
        # Carnet's extension (carnet.signature.query): the documents a verified signature covers.
        StoredQuery(
            signature_query.QUERY_NAME,
            signature_query.QUERY_ID,
            _spec(*signature_query.PARAMS),
            one_of=signature_query.ONE_OF,
            run=signature_query.get_signed_documents,
        ),
    ]
}
BY_NAME = {q.name: q for q in QUERIES.values()}


def prepare(query_id: str, slots: list[tuple[str, list[str]]]) -> tuple[StoredQuery, Params]:
    """Find the query and check its parameters: the ITI-18 parameter error codes come from here."""
    query = QUERIES.get(query_id)
    if query is None:
        raise XDSError.of(ErrorCode.UNKNOWN_STORED_QUERY, f"unknown stored query id '{query_id}'")
    params = parse_slots(slots, query.params)
    for name in query.required:
        if not params.has(name):
            raise XDSError.of(
                ErrorCode.STORED_QUERY_MISSING_PARAM, f"{query.name}: required parameter {name} is missing"
            )
    for group in query.one_of:
        given = [n for n in group if params.has(n)]
        if not given:
            raise XDSError.of(
                ErrorCode.STORED_QUERY_MISSING_PARAM, f"{query.name}: one of {', '.join(group)} is required"
            )
        if len(given) > 1:
            raise XDSError.of(
                ErrorCode.STORED_QUERY_PARAM_NUMBER,
                f"{query.name}: only one of {', '.join(group)} may be given, got {', '.join(given)}",
            )
    return query, params


def execute(session: Session, query: StoredQuery, params: Params) -> QueryResult:
    return query.run(session, params)
