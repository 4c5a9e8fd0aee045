"""The matrice d'habilitations: which document types each profession may read, as data.

The table is a JSON file the deployment owns (``CARNET_DMP_MATRIX``; the seed shipped with Carnet
is ``matrice_habilitations.json`` beside this module, documented in docs/dmp.md). Rows are
professions (TRE_G15 codes, plus the R94/R95 codes of non-PS readers), cells name document types by
XDS typeCode, directly or through a named category; ``*`` is every type. A deny entry wins over an
allow entry, and a profession or a document without a typeCode that the table does not name reads
nothing: the matrix fails closed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ALL = "*"
DEFAULT_RESOURCE = "matrice_habilitations.json"


class MatrixError(ValueError):
    """The matrix file is not a well-formed table; the message names the faulty entry."""


@dataclass(frozen=True)
class ProfessionRule:
    code: str
    label: str
    allow_all: bool
    allowed: frozenset[str]
    denied: frozenset[str]

    def reads(self, type_code: str | None) -> bool:
        if type_code is None:
            return False
        if type_code in self.denied:
            return False
        return self.allow_all or type_code in self.allowed


@dataclass(frozen=True)
class Matrix:
    professions: dict[str, ProfessionRule]
    categories: dict[str, frozenset[str]]
    source: str = ""

    def allows(self, profession: str | None, type_code: str | None) -> bool:
        rule = self.professions.get(profession or "")
        return rule is not None and rule.reads(type_code)

    def reason(self, profession: str | None, type_code: str | None) -> str:
        """Why ``allows`` said no, in words a caller can act on."""
        rule = self.professions.get(profession or "")
        if rule is None:
            return f"profession '{profession}' has no row in the matrice d'habilitations"
        if type_code is None:
            return "the document has no typeCode, so the matrice d'habilitations cannot grant it"
        return (
            f"the matrice d'habilitations does not let profession {rule.code} ({rule.label}) "
            f"read typeCode {type_code}"
        )

    @classmethod
    def parse(cls, data: object, origin: str = "matrix") -> Matrix:
        if not isinstance(data, dict):
            raise MatrixError(f"{origin}: the top level must be a JSON object")
        raw_categories = data.get("categories", {})
        if not isinstance(raw_categories, dict):
            raise MatrixError(f"{origin}: 'categories' must be an object of name -> [typeCode, ...]")
        categories: dict[str, frozenset[str]] = {}
        for name, codes in raw_categories.items():
            if not isinstance(codes, list) or not all(isinstance(c, str) and c for c in codes):
                raise MatrixError(f"{origin}: category '{name}' must be a list of typeCode strings")
            categories[name] = frozenset(codes)
        raw_professions = data.get("professions")
        if not isinstance(raw_professions, dict) or not raw_professions:
            raise MatrixError(f"{origin}: 'professions' must be a non-empty object of code -> rule")

        def expand(code: str, key: str, entries: object) -> tuple[bool, frozenset[str]]:
            if not isinstance(entries, list) or not all(isinstance(e, str) and e for e in entries):
                raise MatrixError(f"{origin}: professions.{code}.{key} must be a list of strings")
            everything = ALL in entries
            out: set[str] = set()
            for entry in entries:
                if entry == ALL:
                    continue
                out |= categories.get(entry, {entry})
            return everything, frozenset(out)

        professions: dict[str, ProfessionRule] = {}
        for code, rule in raw_professions.items():
            if not isinstance(rule, dict) or "allow" not in rule:
                raise MatrixError(f"{origin}: professions.{code} must be an object with an 'allow' list")
            unknown = set(rule) - {"label", "allow", "deny"}
            if unknown:
                raise MatrixError(f"{origin}: professions.{code} has unknown keys {sorted(unknown)}")
            allow_all, allowed = expand(code, "allow", rule["allow"])
            deny_all, denied = expand(code, "deny", rule.get("deny", []))
            if deny_all:
                raise MatrixError(f"{origin}: professions.{code}.deny cannot be '*'; remove the row instead")
            professions[code] = ProfessionRule(code, str(rule.get("label", code)), allow_all, allowed, denied)
        return cls(professions, categories, str(data.get("source", "")))

    @classmethod
    def load(cls, path: Path | None = None) -> Matrix:
        """The deployment's matrix, or the seed shipped with Carnet when ``path`` is None."""
        if path is None:
            text = resources.files("carnet.security").joinpath(DEFAULT_RESOURCE).read_text(encoding="utf-8")
            origin = DEFAULT_RESOURCE
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise MatrixError(f"cannot read the matrice d'habilitations {path}: {exc}") from exc
            origin = str(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MatrixError(f"{origin}: not JSON: {exc}") from exc
        return cls.parse(data, origin)
