"""ITI-65 Provide Document Bundle: a FHIR transaction Bundle -> the same Submission as ITI-41.

``translate`` reads the bundle without touching the database: it checks what MHD asks of the
bundle itself (a transaction, an MHD or PDSm Provide Document Bundle profile, one SubmissionSet
List, every local reference resolvable, every DocumentReference's document a Binary of the bundle),
resolves the ``urn:uuid:`` placeholders (``Attachment.url`` included) to the entryUUIDs it mints,
turns ``List.entry`` into HasMember associations and ``relatesTo`` into RPLC/XFRM/APND/signs,
and pairs each DocumentEntry with its Binary's bytes. The result is a ``ProvideRequest``, which
goes through the ITI-41 code unchanged: ``iti41.check_documents`` (size and SHA-1 computed from
the bytes, repositoryUniqueId), then ``iti41.store_and_register`` (the registry's rules, one
database transaction, blobs published after the commit).

Every problem is collected with the FHIRPath of the element at fault and the XDS error code the
rule raises, and the bundle is refused as a whole (HTTP 400, nothing stored).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryResponse
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.list import List
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

from carnet.fhir import datatypes as fdt
from carnet.fhir import documentreference as fdr
from carnet.fhir import listresource as flist
from carnet.fhir.outcome import operation_outcome
from carnet.repository.iti41 import ProvidedDocument, ProvideRequest
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, ErrorCollector, RegistryError
from carnet.xds.model import Association, DocumentEntry, Folder, Submission

MHD = "https://profiles.ihe.net/ITI/MHD/StructureDefinition"
PDSM = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition"
PROFILE_MINIMAL = f"{MHD}/IHE.MHD.Minimal.ProvideBundle"
PROFILE_COMPREHENSIVE = f"{MHD}/IHE.MHD.Comprehensive.ProvideBundle"
PROFILE_UNCONTAINED = f"{MHD}/IHE.MHD.UnContained.Comprehensive.ProvideBundle"
PROFILE_PDSM = f"{PDSM}/pdsm-comprehensive-provide-document-bundle"
# The profiles this Document Recipient takes (http:// spellings as MobileAccessGateway accepts them).
ACCEPTED_PROFILES = {
    p
    for profile in (PROFILE_MINIMAL, PROFILE_COMPREHENSIVE, PROFILE_PDSM)
    for p in (profile, profile.replace("https://", "http://", 1))
}
UNCONTAINED_PROFILES = {PROFILE_UNCONTAINED, PROFILE_UNCONTAINED.replace("https://", "http://", 1)}

META = ErrorCode.REGISTRY_METADATA_ERROR
REPO_META = ErrorCode.REPOSITORY_METADATA_ERROR
FHIR_DOCUMENT_NOT_SUPPORTED = "FHIRDocumentNotSupported"  # ITI TF-3 Table 4.2.4.1-2 (MHD)


@dataclass
class EntryResult:
    """What the transaction-response says about one request entry."""

    status: str
    location: str


@dataclass
class Provided:
    """A translated bundle: the ITI-41 request, the per-entry answers, and who is who."""

    request: ProvideRequest
    results: list[EntryResult]
    # Minted entryUUID -> "Bundle.entry[i]" (with its fullUrl), to explain registry errors.
    names: dict[str, str] = field(default_factory=dict)


@dataclass
class _Entry:
    index: int
    where: str
    full_url: str | None
    resource: Resource
    method: str
    url: str


class _Bundle:
    """The bundle's entries and the references that resolve inside it (FHIR R4 bundle.html#references)."""

    def __init__(self, bundle: Bundle, base: str, errors: ErrorCollector):
        self.base = base.rstrip("/")
        self.entries: list[_Entry] = []
        self.local: dict[str, _Entry] = {}
        for i, e in enumerate(bundle.entry or []):
            where = f"Bundle.entry[{i}]"
            if e.resource is None:
                errors.add(META, f"{where}: an entry of a Provide Document Bundle carries a resource", where)
                continue
            if e.request is None or not e.request.method:
                errors.add(META, f"{where}: a transaction entry needs request.method and request.url", where)
                continue
            entry = _Entry(i, where, e.fullUrl, e.resource, e.request.method.upper(), e.request.url or "")
            rtype = e.resource.get_resource_type()
            # (A PATCH carries Parameters to a DocumentReference: its target is checked with it.)
            if entry.method != "PATCH" and self._url_type(entry.url) != rtype:
                # The transaction names where each entry goes: a DocumentReference sent to
                # Observation is not one this server may quietly file as a DocumentReference.
                errors.add(
                    META,
                    f"{where}.request.url '{entry.url}' does not name the entry's resource type {rtype}",
                    f"{where}.request.url",
                )
            self.entries.append(entry)
            if e.fullUrl:
                self.local[e.fullUrl] = entry
                tail = _type_id(e.fullUrl)
                if tail and not e.fullUrl.startswith("urn:"):
                    self.local.setdefault(tail, entry)

    def _url_type(self, url: str) -> str:
        """The resource type a transaction entry's request.url names (``Type``, ``Type/id``,
        ``Type?query``, relative or under this server's base)."""
        path = url.split("?", 1)[0].removeprefix(self.base + "/")
        return path.split("/", 1)[0]

    def find(self, reference: str | None) -> _Entry | None:
        if not reference:
            return None
        return self.local.get(reference) or self.local.get(_type_id(reference) or "")

    def server_id(self, reference: str, resource_type: str) -> str | None:
        """The id in ``Type/id`` or ``<this server's base>/Type/id`` (not a bundle entry)."""
        ref = reference
        if ref.startswith(self.base + "/"):
            ref = ref[len(self.base) + 1 :]
        parts = ref.split("/")
        if (
            len(parts) >= 2
            and parts[0] == resource_type
            and parts[1]
            and "?" not in ref
            and ":" not in parts[0]
        ):
            return parts[1]
        return None


def _type_id(url: str) -> str | None:
    parts = url.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return f"{parts[-2]}/{parts[-1]}"
    if len(parts) >= 4 and parts[-2] == "_history":
        return f"{parts[-4]}/{parts[-3]}"
    return None


def _new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


# An existing Folder by entryUUID: the Folder and the entryUUIDs of its member DocumentEntries.
ExistingFolder = Callable[[str], tuple[Folder, set[str]] | None]


def translate(bundle: Bundle, base: str, existing_folder: ExistingFolder | None = None) -> Provided:
    """The Provide Document Bundle as an ITI-41 request; raises XDSError with every problem.

    ``existing_folder`` looks a Folder up for a ``PUT List/[id]`` entry (adding documents to it);
    without it such entries are refused.
    """
    errors = ErrorCollector()
    if bundle.type != "transaction":
        errors.add(
            META,
            f"Bundle.type is '{bundle.type}': a Provide Document Bundle is a 'transaction'",
            "Bundle.type",
        )
    profiles = {str(p) for p in (bundle.meta.profile or []) if p} if bundle.meta else set()
    if profiles & UNCONTAINED_PROFILES:
        errors.add(
            META,
            "Bundle.meta.profile: the UnContained References Option cannot be used with XDS on FHIR (MHD "
            "1:33.2.3): this Document Recipient is an XDS registry and takes authors and sourcePatientInfo "
            "as contained resources (Comprehensive or Minimal ProvideBundle)",
            "Bundle.meta.profile",
        )
    elif not profiles & ACCEPTED_PROFILES:
        errors.add(
            META,
            f"Bundle.meta.profile must name a Provide Document Bundle profile this Recipient takes "
            f"({', '.join(sorted({PROFILE_COMPREHENSIVE, PROFILE_MINIMAL, PROFILE_PDSM}))}); got "
            f"{sorted(profiles) or 'none'}",
            "Bundle.meta.profile",
        )
    entries = _Bundle(bundle, base, errors)
    return _Translator(entries, errors, existing_folder).run()


class _Translator:
    def __init__(self, bundle: _Bundle, errors: ErrorCollector, existing_folder: ExistingFolder | None):
        self.b = bundle
        self.errors = errors
        self.existing_folder = existing_folder
        self.uuids: dict[int, str] = {}  # entry index -> minted entryUUID
        self.updated: dict[int, str] = {}  # PUT List entry index -> the existing Folder's entryUUID
        self.refused: set[int] = set()  # PUT List entries refused
        self.names: dict[str, str] = {}
        self.results: dict[int, EntryResult] = {}
        # One resolution (and one error) per Patient of the bundle, however often it is referenced.
        self.bundle_patients: dict[int, str | None] = {}

    def bad(self, where: str, text: str, code: ErrorCode | str = META) -> None:
        self.errors.errors.append(RegistryError(code, f"{where}: {text}", where))

    def mint(self, e: _Entry) -> str:
        entry_uuid = _new_uuid()
        self.uuids[e.index] = entry_uuid
        self.names[entry_uuid] = f"{e.where}" + (f" ({e.full_url})" if e.full_url else "")
        return entry_uuid

    # ----------------------------------------------------------------------------------- patients

    def patient_of(self, ref: Reference, where: str) -> str | None:
        code = ErrorCode.UNKNOWN_PATIENT_ID
        if ref.reference:
            target = self.b.find(ref.reference)
            if target is not None:
                if not isinstance(target.resource, Patient):
                    self.bad(
                        where,
                        f"'{ref.reference}' is a {target.resource.get_resource_type()}, not a Patient",
                        code,
                    )
                    return None
                return self._patient_in_bundle(target)
            if ref.reference.startswith("Patient?") or "/Patient?" in ref.reference:
                return self._conditional(ref.reference, where)
            rid = self.b.server_id(ref.reference, "Patient")
            if rid is not None:
                cx = fdt.cx_of_patient_resource_id(rid)
                if cx is None:
                    self.bad(
                        where,
                        f"'{ref.reference}' is not a Patient of this server (Patient ids here are "
                        f"<assigning authority OID>-<identifier>; search Patient?identifier= to find one, or "
                        f"reference the patient by identifier)",
                        code,
                    )
                return cx
            self.bad(
                where,
                f"'{ref.reference}' cannot be resolved: reference a Patient of this server, a Patient of the "
                f"bundle, Patient?identifier=urn:oid:<OID>|<id>, or give Reference.identifier",
                code,
            )
            return None
        if ref.identifier is not None:
            try:
                return fdt.cx_of(ref.identifier.system, ref.identifier.value)
            except ValueError as exc:
                self.bad(f"{where}.identifier", str(exc), code)
                return None
        self.bad(where, "the reference is empty", code)
        return None

    def _conditional(self, reference: str, where: str) -> str | None:
        query = parse_qs(urlsplit(reference).query)
        values = query.get("identifier", [])
        if len(values) != 1 or "|" not in values[0] or len(query) != 1:
            self.bad(
                where,
                f"conditional reference '{reference}': only Patient?identifier=<system>|<value> is supported",
                ErrorCode.UNKNOWN_PATIENT_ID,
            )
            return None
        system, _, value = unquote(values[0]).partition("|")
        try:
            return fdt.cx_of(system, value)
        except ValueError as exc:
            self.bad(where, str(exc), ErrorCode.UNKNOWN_PATIENT_ID)
            return None

    def _patient_in_bundle(self, e: _Entry) -> str | None:
        if e.index not in self.bundle_patients:
            self.bundle_patients[e.index] = self._read_bundle_patient(e)
        return self.bundle_patients[e.index]

    def _read_bundle_patient(self, e: _Entry) -> str | None:
        assert isinstance(e.resource, Patient)
        problems = []
        for ident in e.resource.identifier or []:
            try:
                return fdt.cx_of(ident.system, ident.value)
            except ValueError as exc:
                problems.append(str(exc))
        self.bad(
            e.where,
            "the Patient of the bundle carries no identifier the registry can file documents under "
            f"(system urn:oid:<assigning authority>){': ' + '; '.join(problems) if problems else ''}",
            ErrorCode.UNKNOWN_PATIENT_ID,
        )
        return None

    # ----------------------------------------------------------------------------------- the run

    def run(self) -> Provided:
        sets: list[_Entry] = []
        folders: list[_Entry] = []
        docs: list[_Entry] = []
        binaries: list[_Entry] = []
        patches: list[_Entry] = []
        updates: list[_Entry] = []
        for e in self.b.entries:
            r = e.resource
            if isinstance(r, List) and e.method == "POST":
                kind = flist.list_kind(r)
                if kind == flist.SUBMISSION_SET:
                    sets.append(e)
                elif kind == flist.FOLDER:
                    folders.append(e)
                else:
                    self.bad(
                        f"{e.where}.resource.code", "a List is a submissionset or a folder (MHDlistTypes)"
                    )
            elif isinstance(r, List) and e.method == "PUT" and flist.list_kind(r) == flist.FOLDER:
                updates.append(e)
            elif isinstance(r, DocumentReference) and e.method == "POST":
                docs.append(e)
            elif isinstance(r, Binary) and e.method == "POST":
                binaries.append(e)
            elif isinstance(r, Bundle):
                self.bad(
                    e.where,
                    "a FHIR Document Bundle as the document: the ITI-65 FHIR Document Publish Option is not "
                    "implemented by this Document Recipient",
                    FHIR_DOCUMENT_NOT_SUPPORTED,
                )
            elif isinstance(r, Parameters) and e.method == "PATCH":
                patches.append(e)
            elif isinstance(r, Patient) and e.method in ("POST", "PUT", "GET"):
                self.results[e.index] = EntryResult("200 OK", "")
            else:
                self.bad(
                    e.where,
                    f"{r.get_resource_type()} with request.method {e.method} is not part of a Provide "
                    f"Document Bundle (SubmissionSet and Folder Lists, DocumentReferences, Binaries, a "
                    f"Patient, and the PATCH of a replaced DocumentReference)",
                )
        if len(sets) != 1:
            self.bad(
                "Bundle.entry",
                f"a Provide Document Bundle holds exactly one SubmissionSet List (code submissionset), "
                f"this one holds {len(sets)}",
            )
            self.errors.raise_if_any()

        sub = Submission()
        ss_entry = sets[0]
        assert isinstance(ss_entry.resource, List)
        ss = flist.submission_set_from_fhir(
            ss_entry.resource, f"{ss_entry.where}.resource", self.patient_of, self.errors
        )
        ss.entry_uuid = self.mint(ss_entry)
        sub.submission_set = ss

        documents: dict[str, ProvidedDocument] = {}
        used_binaries: dict[int, list[DocumentEntry]] = {}
        replaced: set[str] = set()
        for e in docs:
            assert isinstance(e.resource, DocumentReference)
            de = fdr.from_fhir(e.resource, f"{e.where}.resource", self.patient_of, self.errors)
            de.entry_uuid = self.mint(e)
            sub.documents.append(de)
            self._attachment(e, de, documents, used_binaries)
            replaced |= self._relations(e, de, sub)
        for e in binaries:
            if e.index not in used_binaries:
                self.bad(
                    e.where,
                    "no DocumentReference's content.attachment.url points at this Binary",
                    ErrorCode.MISSING_DOCUMENT_METADATA,
                )
        for e in folders:
            assert isinstance(e.resource, List)
            fol = flist.folder_from_fhir(e.resource, f"{e.where}.resource", self.patient_of, self.errors)
            fol.entry_uuid = self.mint(e)
            sub.folders.append(fol)
        existing_members = {e.index: self._updated_folder(e) for e in updates}
        self._members(ss_entry, sub)
        for e, fol in zip(folders, sub.folders, strict=True):
            self._folder_members(e, fol.entry_uuid, set(), sub)
        for e in updates:
            members = existing_members[e.index]
            if members is not None:
                self._folder_members(e, self.updated[e.index], members, sub)
                self.results[e.index] = EntryResult(
                    "200 OK", f"List/{fdt.resource_id(self.updated[e.index])}"
                )
        for e in patches:
            self._patch(e, replaced)
        for e in self.b.entries:
            if isinstance(e.resource, Patient) and e.index in self.results:
                cx = self._patient_in_bundle(e)
                rid = fdt.patient_resource_id(cx) if cx else None
                self.results[e.index] = EntryResult("200 OK", f"Patient/{rid}" if rid else "")
        self.errors.raise_if_any()

        results: list[EntryResult] = []
        for e in self.b.entries:
            if e.index in self.results:
                results.append(self.results[e.index])
            elif e.index in self.uuids:
                rtype = "DocumentReference" if isinstance(e.resource, DocumentReference) else "List"
                results.append(EntryResult("201 Created", f"{rtype}/{fdt.resource_id(self.uuids[e.index])}"))
            else:
                owner = used_binaries[e.index][0]
                results.append(EntryResult("201 Created", f"Binary/{fdr.binary_id(owner.entry_uuid)}"))
        return Provided(ProvideRequest(sub, documents), results, self.names)

    # ----------------------------------------------------------------------------------- documents

    def _attachment(
        self,
        e: _Entry,
        de: DocumentEntry,
        documents: dict[str, ProvidedDocument],
        used_binaries: dict[int, list[DocumentEntry]],
    ) -> None:
        assert isinstance(e.resource, DocumentReference)
        contents = e.resource.content or []
        if not contents:
            return
        att = contents[0].attachment
        where = f"{e.where}.resource.content[0].attachment"
        data: bytes | None = None
        if att.url:
            target = self.b.find(str(att.url))
            if target is None:
                self.bad(
                    f"{where}.url",
                    f"'{att.url}' is not an entry of the bundle: this Document Recipient is an XDS "
                    f"repository and stores the document, which must come as a Binary of the bundle",
                    ErrorCode.MISSING_DOCUMENT,
                )
                return
            if isinstance(target.resource, Bundle):
                return  # refused with FHIRDocumentNotSupported on the Bundle entry itself
            if not isinstance(target.resource, Binary):
                self.bad(
                    f"{where}.url",
                    f"points at a {target.resource.get_resource_type()}, not a Binary",
                    ErrorCode.MISSING_DOCUMENT,
                )
                return
            binary = target.resource
            used_binaries.setdefault(target.index, []).append(de)
            if binary.data is None:
                self.bad(
                    f"{target.where}.resource.data", "the Binary carries no data", ErrorCode.MISSING_DOCUMENT
                )
                return
            if binary.contentType and att.contentType and binary.contentType != att.contentType:
                self.bad(
                    f"{where}.contentType",
                    f"'{att.contentType}' differs from the Binary's contentType '{binary.contentType}'",
                    REPO_META,
                )
            data = binary.data
        elif att.data is not None:
            data = att.data  # inline, as ITI-105 sends it; robust for ITI-65
        else:
            self.bad(
                where,
                "neither url (to a Binary of the bundle) nor data: no document",
                ErrorCode.MISSING_DOCUMENT,
            )
            return
        self._check_digests(where, att.hash, att.size, data)
        # The repository computes size and hash from the bytes (ITI-41 code), the only truth.
        de.hash, de.size = None, None
        documents[de.entry_uuid] = ProvidedDocument(de.entry_uuid, data=data)

    def _check_digests(self, where: str, hash_: bytes | None, size: int | None, data: bytes) -> None:
        import hashlib

        sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
        if hash_ is not None:
            given = fdt.hash_to_hex(hash_)
            if given is None:
                self.bad(
                    f"{where}.hash",
                    "is not a SHA-1: expected base64 of the 20-byte digest (or of its 40 hex digits)",
                    REPO_META,
                )
            elif given != sha1:
                self.bad(
                    f"{where}.hash",
                    f"'{fdt.b64(hash_)}' is SHA-1 {given}, but the "
                    f"document's SHA-1 is {sha1} (base64 {fdt.hash_to_fhir(sha1)})",
                    REPO_META,
                )
        if size is not None and size != len(data):
            self.bad(f"{where}.size", f"{size} differs from the document's {len(data)} bytes", REPO_META)

    def _relations(self, e: _Entry, de: DocumentEntry, sub: Submission) -> set[str]:
        """relatesTo -> document relationship associations; returns the replaced entryUUIDs."""
        assert isinstance(e.resource, DocumentReference)
        by_target: dict[str, set[str]] = {}
        for i, rel in enumerate(e.resource.relatesTo or []):
            where = f"{e.where}.resource.relatesTo[{i}]"
            atype = fdr.ASSOCIATION_OF.get(rel.code or "")
            if atype is None:
                self.bad(f"{where}.code", f"'{rel.code}' is not a document relationship type")
                continue
            target = self._existing_document(rel.target, f"{where}.target")
            if target is not None:
                by_target.setdefault(target, set()).add(atype)
        replaced: set[str] = set()
        for target, types in by_target.items():
            if {v.RPLC, v.XFRM} <= types:
                # replaces + transforms of the same document is one XFRM_RPLC association.
                types = (types - {v.RPLC, v.XFRM}) | {v.XFRM_RPLC}
            for atype in sorted(types):
                a = Association(
                    entry_uuid=_new_uuid(), association_type=atype, source=de.entry_uuid, target=target
                )
                self.names[a.entry_uuid] = f"{e.where}.resource.relatesTo"
                sub.associations.append(a)
                if atype in v.REPLACEMENTS:
                    replaced.add(target)
        return replaced

    def _existing_document(self, ref: Reference, where: str) -> str | None:
        if not ref.reference:
            self.bad(where, "needs a reference to the existing DocumentReference")
            return None
        if self.b.find(ref.reference) is not None:
            self.bad(
                where,
                f"'{ref.reference}' is in this bundle: relatesTo points at a document already registered",
            )
            return None
        rid = self.b.server_id(ref.reference, "DocumentReference")
        entry_uuid = fdt.entry_uuid_of(rid) if rid else None
        if entry_uuid is None:
            self.bad(
                where,
                f"'{ref.reference}' is not a DocumentReference of this server "
                f"(DocumentReference/<entryUUID>)",
            )
        return entry_uuid

    # ----------------------------------------------------------------------------------- members

    def _member_of(self, ref: Reference | None, where: str) -> tuple[str, str, bool] | None:
        """An entry.item -> (kind, entryUUID, new in this bundle)."""
        if ref is None or not ref.reference:
            self.bad(where, "entry.item needs a reference")
            return None
        local = self.b.find(ref.reference)
        if local is not None:
            if local.index in self.updated:
                return "Folder", self.updated[local.index], False
            if local.index in self.refused:
                return None  # the entry itself was refused, with the reason
            if local.index not in self.uuids:
                self.bad(
                    where, f"'{ref.reference}' is neither a DocumentReference nor a Folder List of the bundle"
                )
                return None
            kind = "Folder" if isinstance(local.resource, List) else "DocumentEntry"
            return kind, self.uuids[local.index], True
        rid = self.b.server_id(ref.reference, "DocumentReference")
        existing = fdt.entry_uuid_of(rid) if rid else None
        if existing is None:
            self.bad(
                where,
                f"'{ref.reference}' is neither an entry of the bundle nor a DocumentReference of this server",
            )
            return None
        return "DocumentEntry", existing, False

    def _members(self, ss_entry: _Entry, sub: Submission) -> None:
        assert isinstance(ss_entry.resource, List) and sub.submission_set is not None
        ss_id = sub.submission_set.entry_uuid
        members: set[str] = set()
        for i, item in enumerate(ss_entry.resource.entry or []):
            found = self._member_of(item.item, f"{ss_entry.where}.resource.entry[{i}].item")
            if found is None:
                continue
            kind, target, new = found
            if kind == "Folder" and not new:
                continue  # an updated Folder: the SubmissionSet holds its new memberships instead
            if target in members:
                continue
            members.add(target)
            a = Association(
                entry_uuid=_new_uuid(), association_type=v.HAS_MEMBER, source=ss_id, target=target
            )
            if kind == "DocumentEntry":
                a.extra_slots["SubmissionSetStatus"] = ["Original" if new else "Reference"]
            sub.associations.append(a)
        for obj in [*sub.documents, *sub.folders]:
            if obj.entry_uuid not in members:
                self.bad(
                    self.names[obj.entry_uuid].split(" ")[0],
                    "is not an entry.item of the SubmissionSet List (every DocumentReference and Folder of "
                    "the bundle is a member of the SubmissionSet)",
                )

    def _folder_members(self, e: _Entry, folder_id: str, current: set[str], sub: Submission) -> None:
        """Folder -> DocumentEntry HasMember for each entry not already a member (``current``)."""
        assert isinstance(e.resource, List) and sub.submission_set is not None
        seen: set[str] = set()
        for i, item in enumerate(e.resource.entry or []):
            where = f"{e.where}.resource.entry[{i}].item"
            found = self._member_of(item.item, where)
            if found is None:
                continue
            kind, target, _ = found
            if kind != "DocumentEntry":
                self.bad(where, "a Folder's entries are DocumentReferences")
                continue
            if target in seen or target in current:
                continue
            seen.add(target)
            membership = Association(
                entry_uuid=_new_uuid(), association_type=v.HAS_MEMBER, source=folder_id, target=target
            )
            # ITI TF-3 4.2.2.1.4: the membership itself is a member of the SubmissionSet.
            sub.associations += [
                membership,
                Association(
                    entry_uuid=_new_uuid(),
                    association_type=v.HAS_MEMBER,
                    source=sub.submission_set.entry_uuid,
                    target=membership.entry_uuid,
                ),
            ]

    def _updated_folder(self, e: _Entry) -> set[str] | None:
        """A ``PUT List/[id]`` of an existing Folder: documents may be added, nothing else changed
        (ITI TF-2 3.65.4.1.3: "A Document Recipient may require that an Updated Folder only have new
        .entry elements added"). Returns the Folder's current members, None when refused."""
        assert isinstance(e.resource, List)
        rid = self.b.server_id(e.url, "List")
        folder_id = fdt.entry_uuid_of(rid) if rid else None
        if folder_id is None:
            self.refused.add(e.index)
            self.bad(f"{e.where}.request.url", f"'{e.url}': a PUT updates an existing Folder, List/[id]")
            return None
        found = self.existing_folder(folder_id) if self.existing_folder else None
        if found is None:
            self.refused.add(e.index)
            self.bad(f"{e.where}.request.url", f"'{e.url}' is not a Folder of this server")
            return None
        folder, members = found
        self.updated[e.index] = folder_id
        self.names[folder_id] = f"{e.where}" + (f" ({e.full_url})" if e.full_url else "")
        submitted = flist.folder_from_fhir(e.resource, f"{e.where}.resource", self.patient_of, self.errors)
        same_codes = sorted(c.key() for c in submitted.codes) == sorted(c.key() for c in folder.codes)
        if submitted.unique_id and submitted.unique_id != folder.unique_id:
            self.bad(
                f"{e.where}.resource.identifier",
                f"uniqueId {submitted.unique_id} is not the Folder's ({folder.unique_id})",
            )
        if submitted.title != folder.title or not same_codes:
            self.bad(
                f"{e.where}.resource",
                "a Folder update through ITI-65 adds documents; its title and codes stay as registered "
                "(changing them is an ITI-57 metadata update)",
            )
        listed = set()
        for i, item in enumerate(e.resource.entry or []):
            found_member = self._member_of(item.item, f"{e.where}.resource.entry[{i}].item")
            if found_member is not None:
                listed.add(found_member[1])
        for missing in sorted(members - listed):
            self.bad(
                f"{e.where}.resource.entry",
                f"DocumentReference/{fdt.resource_id(missing)} is a member of the Folder and is missing: "
                f"documents are not removed from a Folder (XDS)",
            )
        return members

    def _patch(self, e: _Entry, replaced: set[str]) -> None:
        """The UpdateDocumentRefs slice: the replaced DocumentReference marked superseded."""
        assert isinstance(e.resource, Parameters)
        where = e.where
        rid = self.b.server_id(e.url, "DocumentReference")
        target = fdt.entry_uuid_of(rid) if rid else None
        ops = [p for p in e.resource.parameter or [] if p.name == "operation"]
        parts = {part.name: part for op in ops for part in op.part or []}
        path = parts["path"].valueString if "path" in parts else None
        op_type = parts["type"].valueCode if "type" in parts else None
        value = parts["value"].valueCode or parts["value"].valueString if "value" in parts else None
        if (
            len(ops) != 1
            or op_type != "replace"
            or path != "DocumentReference.status"
            or value != "superseded"
        ):
            self.bad(
                f"{where}.resource",
                "in a Provide Document Bundle a PATCH only marks a replaced DocumentReference superseded "
                "(one operation: replace DocumentReference.status with 'superseded'); other changes are "
                "metadata updates (PATCH DocumentReference outside the bundle)",
            )
            return
        if target is None:
            self.bad(f"{where}.request.url", f"'{e.url}' is not a DocumentReference of this server")
            return
        if target not in replaced:
            self.bad(
                f"{where}.request.url",
                f"'{e.url}' is marked superseded but no DocumentReference of the bundle replaces it "
                f"(relatesTo code 'replaces')",
            )
            return
        self.results[e.index] = EntryResult("200 OK", f"DocumentReference/{fdt.resource_id(target)}")


def explain(errors: list[RegistryError], names: dict[str, str]) -> list[RegistryError]:
    """Registry errors name the entryUUIDs minted for the bundle; say which entries they are."""
    out = []
    for err in errors:
        context, location = err.context, err.location
        # The object the message names first is the one at fault: its entry is the location.
        mentioned = sorted((context.find(i), i) for i in names if i in context)
        if mentioned and not location:
            location = names[mentioned[0][1]].split(" ")[0]
        for _, entry_uuid in mentioned:
            context = context.replace(entry_uuid, names[entry_uuid])
        out.append(RegistryError(err.code, context, location, err.warning))
    return out


def response_bundle(provided: Provided, warnings: list[RegistryError]) -> Bundle:
    """The transaction-response: one entry per request entry, in order (ITI TF-2 3.65.4.2.2)."""
    now = datetime.now(UTC).replace(microsecond=0)
    entries = []
    for i, r in enumerate(provided.results):
        outcome = None
        if i == 0 and warnings:
            from carnet.fhir.outcome import issue_of

            outcome = operation_outcome([issue_of(w) for w in explain(warnings, provided.names)])
        created = r.status.startswith("201")
        entries.append(
            BundleEntry(
                response=BundleEntryResponse(
                    status=r.status,
                    location=r.location or None,
                    etag='W/"1"' if created else None,
                    lastModified=now,
                    outcome=outcome,
                )
            )
        )
    return Bundle(type="transaction-response", entry=entries)
