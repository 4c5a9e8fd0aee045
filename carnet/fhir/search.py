"""FHIR search mechanics shared by ITI-66, ITI-67 and Patient search (FHIR R4 search.html).

Parameters arrive as (name, value) pairs from the query string or, for ``POST [type]/_search``, the
form body too. A repeated parameter is an AND, a comma inside a value an OR; token, date, string
and reference values are parsed here, with the prefixes and modifiers FHIR defines. Unknown
parameters are ignored, as MHD asks (ITI TF-2 3.67.4.1.2.1), and left out of the ``self`` link so
a client sees what was applied. Paging is stateless: ``next`` repeats the search with ``_offset``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntrySearch, BundleLink
from fhir.resources.R4B.resource import Resource
from sqlalchemy import and_, not_, or_
from sqlalchemy.sql.elements import ColumnElement

from carnet.fhir.outcome import FHIRError, Issue, operation_outcome

DEFAULT_COUNT = 50
MAX_COUNT = 500
# Result parameters this server applies (all others starting with _ are ignored, and reported).
CONTROL = {"_count", "_offset", "_sort", "_format", "_summary"}


@dataclass
class Params:
    """The search parameters of one request, in order, with what was used and what was not."""

    items: list[tuple[str, str]]
    used: set[str] = field(default_factory=set)

    def values(self, name: str) -> list[str]:
        """Every value given for ``name`` (each may still hold a comma-separated OR list)."""
        self.used.add(name)
        return [v for n, v in self.items if n == name]

    def one(self, name: str) -> str | None:
        vals = self.values(name)
        if len(vals) > 1:
            raise FHIRError.of(400, "invalid", f"search parameter {name} may be given once")
        return vals[0] if vals else None

    def names(self) -> set[str]:
        return {n for n, _ in self.items}

    def ignored(self) -> list[str]:
        return sorted(
            {n for n in self.names() if n not in self.used and n not in CONTROL}
            | ({"_summary"} if self._summary_ignored() else set())
        )

    def _summary_ignored(self) -> bool:
        """Only ``_summary=count`` is applied; the summary views (true, text, data) are not, and a
        client is told so rather than shown them in the ``self`` link."""
        return any(n == "_summary" and v != "count" for n, v in self.items)

    def refuse_unsupported_modifiers(self, supported: list[str]) -> None:
        """A modifier left unread on a parameter this search supports (``category:not``,
        ``status:missing``) is a 400: ignoring it would widen the answer past what the client
        excluded (FHIR R4 search.html#errors). Modifiers of unknown parameters are ignored with them."""
        for name in self.ignored():
            base, sep, modifier = name.partition(":")
            if sep and base in supported:
                raise FHIRError.of(
                    400, "not-supported", f"search parameter {base}: modifier ':{modifier}' is not supported"
                )

    def applied(self) -> list[tuple[str, str]]:
        return [
            (n, v)
            for n, v in self.items
            if (n in self.used or n in CONTROL - {"_offset"}) and not (n == "_summary" and v != "count")
        ]


def split_or(value: str) -> list[str]:
    """A value's comma-separated alternatives, honouring the FHIR escape ``\\,``."""
    out, buf, i = [], [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            buf.append(value[i + 1])
            i += 2
            continue
        if c == ",":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    out.append("".join(buf))
    return [v for v in out if v != ""]


@dataclass(frozen=True)
class Token:
    """``[system|]code``: system None when not given; '' when explicitly empty (``|code``)."""

    system: str | None
    code: str | None


def token(value: str) -> Token:
    system, sep, code = value.partition("|")
    if not sep:
        return Token(None, value or None)
    return Token(system, code or None)


# ---------------------------------------------------------------------------------------------
# Dates (search.html#date): a value stands for the range its precision covers; prefixes compare.
# ---------------------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


@dataclass(frozen=True)
class DateValue:
    prefix: str
    lo: datetime  # inclusive, UTC
    hi: datetime  # exclusive, UTC

    @property
    def lo_key(self) -> str:
        return self.lo.strftime("%Y%m%d%H%M%S")

    @property
    def hi_key(self) -> str:
        return self.hi.strftime("%Y%m%d%H%M%S")


def date_value(name: str, value: str) -> DateValue:
    prefix = "eq"
    if value[:2] in PREFIXES:
        prefix, value = value[:2], value[2:]
    m = _DATE_RE.fullmatch(value)
    if not m:
        raise FHIRError.of(
            400,
            "invalid",
            f"search parameter {name}: '{value}' is not a FHIR date (YYYY[-MM[-DD[Thh:mm[:ss][Z|+hh:mm]]]])",
        )
    try:
        y = int(m["y"])
        if m["H"] is not None:
            tz = UTC
            if m["tz"] and m["tz"] != "Z":
                sign = 1 if m["tz"][0] == "+" else -1
                tz = _offset(sign * (int(m["tz"][1:3]) * 60 + int(m["tz"][4:6])))
            lo = datetime(y, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), int(m["S"] or 0), tzinfo=tz)
            step = timedelta(seconds=1) if m["S"] is not None else timedelta(minutes=1)
            lo = lo.astimezone(UTC)
            hi = lo + step
        elif m["d"] is not None:
            lo = datetime(y, int(m["m"]), int(m["d"]), tzinfo=UTC)
            hi = lo + timedelta(days=1)
        elif m["m"] is not None:
            lo = datetime(y, int(m["m"]), 1, tzinfo=UTC)
            hi = datetime(y + (lo.month == 12), lo.month % 12 + 1, 1, tzinfo=UTC)
        else:
            lo, hi = datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC)
    except ValueError as exc:
        raise FHIRError.of(
            400, "invalid", f"search parameter {name}: '{value}' is not a valid date: {exc}"
        ) from exc
    return DateValue(prefix, lo, hi)


def _offset(minutes: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(minutes=minutes))


def instant_condition(col: Any, d: DateValue, as_key: bool) -> ColumnElement[bool]:
    """``col`` (one instant per row: a 14-digit DTM key, or a DateTime) against a date value."""
    lo: Any = d.lo_key if as_key else d.lo
    hi: Any = d.hi_key if as_key else d.hi
    inside = and_(col >= lo, col < hi)
    return {
        "eq": inside,
        "ap": inside,
        "ne": and_(col.is_not(None), not_(inside)),
        "gt": col >= hi,
        "sa": col >= hi,
        "ge": col >= lo,
        "lt": col < lo,
        "eb": col < lo,
        "le": col < hi,
    }[d.prefix]


def period_condition(start: Any, stop: Any, d: DateValue) -> ColumnElement[bool]:
    """A Period (two DTM key columns, a missing end open) against a date value, FHIR semantics:
    ge/gt/le/lt ask for an overlap, eq for containment, sa/eb for starting after / ending before."""
    lo, hi = d.lo_key, d.hi_key
    has = or_(start.is_not(None), stop.is_not(None))
    ends_from = lambda k: and_(has, or_(stop >= k, stop.is_(None)))  # noqa: E731
    starts_before = lambda k: and_(has, or_(start < k, start.is_(None)))  # noqa: E731
    return {
        "ge": ends_from(lo),
        "gt": ends_from(hi),
        "le": starts_before(hi),
        "lt": starts_before(lo),
        "eq": and_(start >= lo, stop < hi),
        "ap": and_(start >= lo, stop < hi),
        "ne": and_(has, not_(and_(start >= lo, stop < hi))),
        "sa": start >= hi,
        "eb": stop < lo,
    }[d.prefix]


def integer(name: str, value: str | None, default: int, maximum: int | None = None) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise FHIRError.of(400, "invalid", f"{name} must be a non-negative integer, got '{value}'")
    n = int(value)
    return min(n, maximum) if maximum is not None else n


@dataclass
class Page:
    count: int
    offset: int


def page_of(params: Params) -> Page:
    return Page(
        integer("_count", params.one("_count"), DEFAULT_COUNT, MAX_COUNT),
        integer("_offset", params.one("_offset"), 0),
    )


def searchset(
    resources: list[Resource],
    total: int,
    page: Page,
    params: Params,
    search_url: str,
    base: str,
    warnings: list[Issue] | None = None,
) -> Bundle:
    """The searchset Bundle: absolute self/first/next/previous links repeating every applied parameter."""
    applied = [(n, v) for n, v in params.applied() if n not in ("_count", "_offset")]

    def link(relation: str, offset: int) -> BundleLink:
        query = urlencode([*applied, ("_count", str(page.count)), ("_offset", str(offset))])
        return BundleLink(relation=relation, url=f"{search_url}?{query}")

    links = [link("self", page.offset), link("first", 0)]
    if page.offset + page.count < total and page.count > 0:
        links.append(link("next", page.offset + page.count))
    if page.offset > 0:
        links.append(link("previous", max(0, page.offset - page.count)))
    entries = [
        BundleEntry(
            fullUrl=f"{base}/{r.get_resource_type()}/{r.id}",
            resource=r,
            search=BundleEntrySearch(mode="match"),
        )
        for r in resources
    ]
    ignored = params.ignored()
    issues = list(warnings or [])
    if ignored:
        issues.append(
            Issue(
                "not-supported",
                f"search parameters not supported here were ignored: {', '.join(ignored)}",
                severity="warning",
            )
        )
    if issues:
        entries.append(
            BundleEntry(resource=operation_outcome(issues), search=BundleEntrySearch(mode="outcome"))
        )
    return Bundle(type="searchset", total=total, link=links, entry=entries or None)


# ---------------------------------------------------------------------------------------------
# Parameters ITI-66 and ITI-67 both have, validated alike.
# ---------------------------------------------------------------------------------------------


def status_codes(value: str, statuses: dict[str, list[str]]) -> list[str]:
    """The XDS availability statuses one ``status`` value (a comma list) stands for, by ``statuses``
    (FHIR code -> XDS statuses); an unknown code matches nothing. MHD: "the system portion of the
    token shall not be populated" (ITI-66, ITI-67): a system is a 400, not a silent mismatch."""
    codes: list[str] = []
    for alt in split_or(value):
        t = token(alt)
        if t.system:
            raise FHIRError.of(400, "invalid", "status is a code without a system (MHD ITI-66, ITI-67)")
        codes += statuses.get(t.code or "", [])
    return codes


def archived_flags(value: str) -> set[str]:
    """The flags one PDSm ``isArchived`` value (a comma list) asks for: a subset of {"true",
    "false"}; anything else is a 400 rather than a filter silently dropped."""
    flags = {token(alt).code or "" for alt in split_or(value)}
    if flags - {"true", "false"}:
        raise FHIRError.of(400, "invalid", "isArchived is true or false")
    return flags
