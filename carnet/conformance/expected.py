"""``ExpectedContents``: the named checks of NIST ``Validator.run_test_assertion`` on a query result.

Each check reads the objects of an AdhocQueryResponse (DocumentEntries, SubmissionSets, Folders,
Associations, ObjectRefs) and returns what is wrong, worded like the Java validator. A check
this module does not know raises :class:`UnknownCheck`: the step is reported as not run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from carnet.conformance.testplan import UseId
from carnet.xds import vocabulary as v
from carnet.xml import localname

R = f"{{{v.RIM}}}"


class UnknownCheck(Exception):
    """An ExpectedContents element this runner does not implement."""


@dataclass
class QueryObjects:
    documents: list[etree._Element] = field(default_factory=list)
    submission_sets: list[etree._Element] = field(default_factory=list)
    folders: list[etree._Element] = field(default_factory=list)
    associations: list[etree._Element] = field(default_factory=list)
    object_refs: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, response: etree._Element | None) -> QueryObjects:
        out = cls()
        rol = response.find(f"{R}RegistryObjectList") if response is not None else None
        if rol is None:
            return out
        external_nodes: dict[str, str] = {
            cl.get("classifiedObject") or "": cl.get("classificationNode") or ""
            for cl in rol.findall(f"{R}Classification")
        }
        for obj in rol:
            if obj.tag == f"{R}ExtrinsicObject":
                out.documents.append(obj)
            elif obj.tag == f"{R}RegistryPackage":
                nodes = {cl.get("classificationNode") for cl in obj.findall(f"{R}Classification")}
                nodes.add(external_nodes.get(obj.get("id") or ""))
                schemes = {e.get("identificationScheme") for e in obj.findall(f"{R}ExternalIdentifier")}
                is_ss = v.SS_NODE in nodes or (v.FOLDER_NODE not in nodes and v.SS_UNIQUE_ID in schemes)
                (out.submission_sets if is_ss else out.folders).append(obj)
            elif obj.tag == f"{R}Association":
                out.associations.append(obj)
            elif obj.tag == f"{R}ObjectRef":
                out.object_refs.append(obj.get("id") or "")
        return out


def _status(el: etree._Element) -> str:
    return (el.get("status") or "").rsplit(":", 1)[-1]


def _short(assoc_type: str | None) -> str:
    return (assoc_type or "").rsplit(":", 1)[-1]


class Validator:
    """One run of the checks of an ExpectedContents element over a query result."""

    def __init__(self, objects: QueryObjects, resolve: Callable[[UseId], str]):
        self.m = objects
        self.resolve = resolve
        self.errors: list[str] = []

    def err(self, message: str) -> None:
        self.errors.append(message)

    # --- counts -----------------------------------------------------------------------------
    def count(self, what: str, found: int, expected: int) -> bool:
        if found != expected:
            self.err(f"Found {found} {what} instead of {expected}")
            return False
        return True

    def has_ss(self) -> bool:
        if len(self.m.submission_sets) != 1:
            self.err(
                "No Submission Set found" if not self.m.submission_sets else "More than one Submission Set"
            )
            return False
        return True

    # --- associations -------------------------------------------------------------------------
    def association(self, source: str, targets: list[str], assoc_type: str) -> etree._Element | None:
        for a in self.m.associations:
            if (
                a.get("sourceObject") == source
                and a.get("targetObject") in targets
                and (_short(a.get("associationType")) == assoc_type)
            ):
                return a
        self.err(f"{assoc_type} association missing between sourceObject {source} and targetObject {targets}")
        return None

    def ss_with(self, docs: int, folders: int, assocs: int) -> None:
        self.has_ss()
        self.count("Documents", len(self.m.documents), docs)
        self.count("Folders", len(self.m.folders), folders)
        if self.errors:
            return
        self.count("Associations", len(self.m.associations), assocs)
        ss = self.m.submission_sets[0].get("id") or ""
        for obj in [*self.m.documents, *self.m.folders]:
            self.association(ss, [obj.get("id") or ""], "HasMember")

    def folder_memberships(self, each_doc: bool) -> None:
        """Folder->DE HasMember for each (or one) document, each itself a member of the SS."""
        ss = self.m.submission_sets[0].get("id") or ""
        fol = self.m.folders[0].get("id") or ""
        docs = [d.get("id") or "" for d in self.m.documents]
        for targets in [[d] for d in docs] if each_doc else [docs]:
            member = self.association(fol, targets, "HasMember")
            if member is not None:
                self.association(ss, [member.get("id") or ""], "HasMember")

    # --- statuses -----------------------------------------------------------------------------
    def statuses(self, objects: list[etree._Element], want: str, what: str) -> None:
        for obj in objects:
            if _status(obj) != want:
                self.err(f"{what} {obj.get('id')} has status {_status(obj)} instead of '{want}'")

    def exactly_one(self, want: str) -> None:
        n = sum(1 for d in self.m.documents if _status(d) == want)
        if n != 1:
            self.err(f"Found {n} {want} ExtrinsicObjects instead of one")

    def unique_relationship(self, assoc_type: str) -> None:
        if not any(_short(a.get("associationType")) == assoc_type for a in self.m.associations):
            self.err(f"{assoc_type} association not found.")

    # --- DocumentEntries (MustOnlyInclude / Include / Exclude) -------------------------------
    def document_entries(self, el: etree._Element) -> None:
        for selection in el:
            if not isinstance(selection.tag, str):
                continue
            mode = localname(selection)
            if mode == "DocumentEntryType":
                for doc in self.m.documents:
                    if doc.get("objectType") != (selection.text or "").strip():
                        self.err(f"ExtrinsicObject {doc.get('id')} has objectType {doc.get('objectType')}")
                continue
            if mode not in ("MustOnlyInclude", "Include", "Exclude"):
                raise UnknownCheck(f"DocumentEntries/{mode}")
            matched = 0
            for de in selection:
                if not isinstance(de.tag, str) or localname(de) != "DocumentEntry":
                    continue
                found: etree._Element | None = None
                for part in de:
                    if not isinstance(part.tag, str):
                        continue
                    if localname(part) == "UseId":
                        use = UseId(
                            part.get("symbol") or "",
                            part.get("id") or "",
                            part.get("step") or "",
                            part.get("section") or "",
                            part.get("testdir"),
                        )
                        wanted = self.resolve(use)
                        found = next((d for d in self.m.documents if d.get("id") == wanted), None)
                        if found is not None:
                            matched += 1
                        if mode != "Exclude" and found is None:
                            self.err(f"The submitted id [{wanted}] was not found in the registry response.")
                        if mode == "Exclude" and found is not None:
                            self.err(f"The id [{wanted}] was found in the registry response.")
                    elif (
                        localname(part) == "DocumentEntryType"
                        and found is not None
                        and found.get("objectType") != (part.text or "").strip()
                    ):
                        self.err(f"objectType of {found.get('id')} is {found.get('objectType')}")
            if mode == "MustOnlyInclude" and matched != len(self.m.documents):
                self.err(f"{matched} DocumentEntries matched, the response holds {len(self.m.documents)}")

    # --- dispatcher -----------------------------------------------------------------------------
    def run(self, contents: etree._Element) -> list[str]:
        for check in contents:
            if isinstance(check.tag, str):
                self.check(check)
        return self.errors

    def check(self, el: etree._Element) -> None:  # noqa: C901 - one branch per named check
        name = localname(el)
        count = int((el.get("count") or "-1").strip())
        m = self.m
        if name == "SSwithOneDoc":
            self.ss_with(1, 0, 1)
            self.statuses(m.submission_sets, "Approved", "SubmissionSet")
        elif name == "SSwithOneDocOnly":
            self.ss_with(1, 0, 1)
        elif name == "SSwithTwoDoc":
            self.ss_with(2, 0, 2)
            self.statuses(m.submission_sets, "Approved", "SubmissionSet")
        elif name == "SSwithTwoDocOnly":
            self.ss_with(2, 0, 2)
        elif name == "SSwithOneFol":
            self.ss_with(0, 1, 1)
        elif name == "SSwithOneDocOneFol":
            self.ss_with(1, 1, 4)
            if not self.errors:
                self.folder_memberships(each_doc=True)
        elif name == "SSwithTwoDocOneFol":
            self.ss_with(2, 1, 7)
            if not self.errors:
                self.folder_memberships(each_doc=True)
        elif name == "SSwithTwoDocOneFolOneDocInFol":
            self.ss_with(2, 1, 5)
            if not self.errors:
                self.folder_memberships(each_doc=False)
        elif name == "SSApproved":
            if self.has_ss():
                self.statuses(m.submission_sets, "Approved", "SubmissionSet")
        elif name == "NoSubmissionSet":
            self.count("SubmissionSets", len(m.submission_sets), 0)
        elif name == "NoDocument":
            self.count("Documents", len(m.documents), 0)
        elif name == "DocApp":
            self.statuses(m.documents, "Approved", "ExtrinsicObject")
        elif name == "DocDep":
            self.statuses(m.documents, "Deprecated", "ExtrinsicObject")
        elif name == "FolApp":
            self.statuses(m.folders, "Approved", "Folder")
        elif name == "FolDep":
            self.statuses(m.folders, "Deprecated", "Folder")
        elif name == "OneDocApp":
            self.exactly_one("Approved")
        elif name == "OneDocDep":
            self.exactly_one("Deprecated")
        elif name in ("HasRPLC", "HasAPND", "HasXFRM_RPLC"):
            self.unique_relationship(name[3:])
        elif name == "None":
            self.count("SubmissionSets", len(m.submission_sets), 0)
            self.count("Documents", len(m.documents), 0)
            self.count("Folders", len(m.folders), 0)
            if not self.errors:
                self.count("Associations", len(m.associations), 0)
        elif name == "ObjectRefs":
            self.count("ObjectRefs", len(m.object_refs), count)
            self.count("SubmissionSets", len(m.submission_sets), 0)
            self.count("Documents", len(m.documents), 0)
            self.count("Folders", len(m.folders), 0)
            self.count("Associations", len(m.associations), 0)
        elif name == "Documents":
            self.count("Documents", len(m.documents), count)
        elif name == "Folders":
            self.count("Folders", len(m.folders), count)
        elif name == "SubmissionSets":
            self.count("SubmissionSets", len(m.submission_sets), count)
        elif name == "Associations":
            self.count("Associations", len(m.associations), count)
        elif name == "DocumentEntries":
            self.document_entries(el)
        else:
            raise UnknownCheck(name)
