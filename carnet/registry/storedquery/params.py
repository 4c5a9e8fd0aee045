"""Stored-query parameters (ITI TF-2a 3.18.4.1.2.3): slot values into typed Python values.

A Value holds a quoted string ('x'), a number (20041224), a parenthesised list ('a','b') or, from
senders in the wild, a bare string. Multi-valued parameters may spread their list over several
Value elements (CP 295); code-list parameters marked AND/OR may be repeated: each Slot is an
AND term, the values within it are ORed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carnet.xds.errors import ErrorCode, XDSError


def split_value(text: str) -> list[str]:
    """One rim:Value into its items: "('a','b')" -> ['a', 'b'], "'a'" -> ['a'], "2004" -> ['2004']."""
    s = text.strip()
    if s.startswith("(") and s.endswith(")"):
        return _items(s[1:-1])
    return _items(s)


def _items(s: str) -> list[str]:
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        while i < n and s[i] in " \t\r\n,":
            i += 1
        if i >= n:
            break
        if s[i] == "'":
            i += 1
            buf: list[str] = []
            while i < n:
                if s[i] == "'":
                    if i + 1 < n and s[i + 1] == "'":  # '' is an escaped quote
                        buf.append("'")
                        i += 2
                        continue
                    break
                buf.append(s[i])
                i += 1
            out.append("".join(buf))
            i += 1
        else:
            j = s.find(",", i)
            j = n if j < 0 else j
            out.append(s[i:j].strip())
            i = j
    return out


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: str = "str"  # str | code | time | status
    multiple: bool = False
    and_or: bool = False


@dataclass
class Params:
    """Parsed parameters of one query: single values, lists, or AND-of-OR lists."""

    values: dict[str, object] = field(default_factory=dict)

    def get(self, name: str, default: object = None) -> object:
        return self.values.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.values

    def one(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    def many(self, name: str) -> list[str]:
        value = self.values.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        return [str(value)]

    def groups(self, name: str) -> list[list[str]]:
        value = self.values.get(name)
        return (
            value
            if isinstance(value, list) and value and isinstance(value[0], list)
            else ([self.many(name)] if value is not None else [])
        )


def parse_slots(slots: list[tuple[str, list[str]]], specs: dict[str, ParamSpec]) -> Params:
    """Slots of an AdhocQuery, checked against the query's parameter specs.

    Parameters the query does not define are ignored, as the TF lets a registry do; a single-valued
    parameter with several values, or a non AND/OR parameter given twice, is XDSStoredQueryParamNumber.
    """
    params = Params()
    seen: set[str] = set()
    for name, raw_values in slots:
        spec = specs.get(name)
        if spec is None:
            continue
        items = [item for raw in raw_values for item in split_value(raw)]
        items = [item for item in items if item != ""]
        if not items:
            raise XDSError.of(ErrorCode.STORED_QUERY_PARAM_NUMBER, f"parameter {name} has no value")
        if name in seen and not spec.and_or:
            raise XDSError.of(
                ErrorCode.STORED_QUERY_PARAM_NUMBER,
                f"parameter {name} is given more than once and is not an AND/OR parameter",
            )
        seen.add(name)
        if spec.and_or:
            groups = params.values.setdefault(name, [])
            assert isinstance(groups, list)
            groups.append(items)
        elif spec.multiple:
            params.values[name] = items
        else:
            if len(items) != 1 or len(raw_values) != 1:
                raise XDSError.of(
                    ErrorCode.STORED_QUERY_PARAM_NUMBER,
                    f"parameter {name} takes a single value, got {len(items)}",
                )
            params.values[name] = items[0]
    for name, spec in specs.items():
        if spec.kind == "code" and name in params.values:
            for group in params.groups(name):
                for item in group:
                    # The coding scheme is required (NIST 11897 classcode_scheme_mismatch); an
                    # empty code is legal and simply matches nothing.
                    parts = item.split("^")
                    if len(parts) < 3 or not parts[2]:
                        raise XDSError.of(
                            ErrorCode.REGISTRY_ERROR,
                            f"parameter {name}: '{item}' is not a code of the form code^^codingScheme",
                        )
        if spec.kind == "time" and name in params.values:
            value = params.values[name]
            if not isinstance(value, str) or not value.isdigit() or len(value) not in (4, 6, 8, 10, 12, 14):
                raise XDSError.of(
                    ErrorCode.REGISTRY_ERROR,
                    f"parameter {name} must be a DTM (YYYY[MM[DD[hh[mm[ss]]]]]), got {value!r}",
                )
    return params


def parse_code(value: str) -> tuple[str, str]:
    """'code^^scheme' -> (code, scheme); parse_slots has checked both are present."""
    parts = value.split("^")
    return parts[0], parts[2]
