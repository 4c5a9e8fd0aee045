"""The NIST XDS Toolkit testkit on disk: tests, their collections and their sections.

A testkit holds ``tests/<id>/`` directories. Each test has ``collections.txt`` (the collection
tags it belongs to, one per line), and either ``index.idx`` (its sections, in the order they
run) with one ``testplan.xml`` per section directory, or a single ``testplan.xml`` at its root.
Several testkits may be searched in order, as the toolkit's own TestKitSearchPath does: the
first one holding a test wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Section:
    """One section of a test: a directory with a testplan.xml (``name`` "" for a root plan)."""

    test_id: str
    name: str
    directory: Path

    @property
    def plan(self) -> Path:
        return self.directory / "testplan.xml"

    @property
    def label(self) -> str:
        return f"{self.test_id}/{self.name}" if self.name else self.test_id


@dataclass
class TestDefinition:
    id: str
    directory: Path
    collections: frozenset[str]
    sections: list[Section] = field(default_factory=list)
    readme: str = ""

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)


def tests_dir(root: Path) -> Path:
    """Accept the testkit directory (holding ``tests/``) or the ``tests`` directory itself."""
    return root / "tests" if (root / "tests").is_dir() else root


class Testkit:
    """The tests of one or more testkit directories, searched in order."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, roots: list[Path]):
        self.roots = [Path(r) for r in roots]
        self._cache: dict[str, TestDefinition | None] = {}

    def schema_dir(self) -> Path | None:
        """The ebRS 3.0 schemas shipped beside the testkit (``toolkitx/schema/v3``), if any."""
        for root in self.roots:
            for candidate in (root.parent / "schema" / "v3", root.parent.parent / "schema" / "v3"):
                if (candidate / "rs.xsd").is_file():
                    return candidate
        return None

    def test(self, test_id: str) -> TestDefinition | None:
        if test_id not in self._cache:
            self._cache[test_id] = self._load(test_id)
        return self._cache[test_id]

    def all_ids(self) -> list[str]:
        ids: set[str] = set()
        for root in self.roots:
            base = tests_dir(root)
            if base.is_dir():
                ids.update(p.name for p in base.iterdir() if p.is_dir())
        return sorted(ids, key=natural_key)

    def in_collection(self, collection: str) -> list[str]:
        return [t for t in self.all_ids() if (d := self.test(t)) is not None and collection in d.collections]

    def locate(self, directory: Path) -> Section | None:
        """The section whose directory is ``directory`` (a resolved path), if it is one."""
        directory = directory.resolve()
        for root in self.roots:
            base = tests_dir(root).resolve()
            try:
                rel = directory.relative_to(base)
            except ValueError:
                continue
            parts = rel.parts
            if not parts or len(parts) > 2:
                return None
            test = self.test(parts[0])
            if test is None:
                return None
            name = parts[1] if len(parts) > 1 else ""
            return test.section(name)
        return None

    def _load(self, test_id: str) -> TestDefinition | None:
        for root in self.roots:
            directory = tests_dir(root) / test_id
            if not directory.is_dir():
                continue
            collections_file = directory / "collections.txt"
            tags = collections_file.read_text().split() if collections_file.is_file() else []
            readme = directory / "readme.txt"
            test = TestDefinition(
                test_id,
                directory,
                frozenset(tags),
                readme=readme.read_text(errors="replace").strip() if readme.is_file() else "",
            )
            index = directory / "index.idx"
            if index.is_file():
                for name in index.read_text().split():
                    test.sections.append(Section(test_id, name, directory / name))
            elif (directory / "testplan.xml").is_file():
                test.sections.append(Section(test_id, "", directory))
            return test
        return None


def natural_key(text: str) -> tuple[int, int, str]:
    """Sort 11990 before 11990b before 12000, and numbered tests before named ones."""
    match = re.match(r"\d+", text)
    return (0, int(match.group()), text) if match else (1, 0, text)
