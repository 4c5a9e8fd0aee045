"""ebRIM 3.0 binding of the XDS model: SubmitObjectsRequest -> model, model -> ebRIM elements.

Parsing checks what only the wire form can show (one value where one is allowed, a codingScheme
on every code, ExternalIdentifiers that point at their parent, slot names that are legal extra
metadata); the rules about values live in ``carnet.registry.validate``. Rendering produces
self-contained, namespace-complete fragments: the registry stores them and answers LeafClass
queries by concatenating them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from lxml import etree

from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, ErrorCollector
from carnet.xds.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    RegistryObject,
    Submission,
    SubmissionSet,
)
from carnet.xml import localname, qname

META = ErrorCode.REGISTRY_METADATA_ERROR


def R(local: str) -> str:  # noqa: N802 - mirrors the rim: prefix
    return qname(v.RIM, local)


def new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

DE_SLOTS_SINGLE = {
    "creationTime",
    "hash",
    "size",
    "repositoryUniqueId",
    "URI",
    "languageCode",
    "legalAuthenticator",
    "serviceStartTime",
    "serviceStopTime",
    "sourcePatientId",
    "documentAvailability",
}
DE_SLOTS_MULTI = {"sourcePatientInfo", "urn:ihe:iti:xds:2013:referenceIdList"}
SS_SLOTS = {"submissionTime", "intendedRecipient"}
FOLDER_SLOTS = {"lastUpdateTime"}
# Slots that ITI-57 places on associations, and the HasMember SubmissionSetStatus.
ASSOCIATION_SLOTS = {
    "SubmissionSetStatus",
    "PreviousVersion",
    "OriginalStatus",
    "NewStatus",
    "AssociationPropagation",
}


def read_slots(el: etree._Element, owner: str, errors: ErrorCollector) -> dict[str, list[str]]:
    """The Slot children of ``el`` as name -> values, refusing a name given twice."""
    out: dict[str, list[str]] = {}
    for slot in el.findall(R("Slot")):
        name = slot.get("name") or ""
        if not name:
            errors.add(META, f"{owner}: Slot without a name")
            continue
        if name in out:
            errors.add(META, f"{owner}: Slot '{name}' appears more than once")
            continue
        out[name] = [(val.text or "") for val in slot.iterfind(f"{R('ValueList')}/{R('Value')}")]
    return out


def localized(el: etree._Element, child: str) -> str | None:
    ls = el.find(f"{R(child)}/{R('LocalizedString')}")
    return ls.get("value") if ls is not None else None


def _single(slots: dict[str, list[str]], name: str, owner: str, errors: ErrorCollector) -> str | None:
    values = slots.get(name)
    if values is None:
        return None
    if len(values) != 1:
        errors.add(META, f"{owner}: Slot '{name}' must have exactly one value, has {len(values)}")
        return values[0] if values else None
    return values[0]


def _is_legal_extra_slot(name: str) -> bool:
    # ITI TF-3 §4.1.14: extra metadata are slots whose name is a URN outside the urn:ihe: space.
    return name.startswith("urn:") and not name.startswith("urn:ihe:") and not name.startswith("urn:oasis:")


def _common(obj: RegistryObject, el: etree._Element) -> None:
    obj.logical_id = el.get("lid")
    vi = el.find(R("VersionInfo"))
    if vi is not None and vi.get("versionName"):
        obj.version = vi.get("versionName") or "1"
    obj.home_community_id = el.get("home")
    obj.title = localized(el, "Name")
    obj.comments = localized(el, "Description")
    status = el.get("status")
    if status:
        obj.status = status


def _code(cl: etree._Element, owner: str, what: str, errors: ErrorCollector) -> Code | None:
    node = cl.get("nodeRepresentation")
    cs = read_slots(cl, f"{owner} {what}", errors).get("codingScheme")
    if not node:
        errors.add(META, f"{owner}: {what} Classification has no nodeRepresentation (code)")
        return None
    if not cs or len(cs) != 1 or not cs[0]:
        errors.add(META, f"{owner}: {what} '{node}' must carry exactly one codingScheme Slot value")
        return None
    return Code(code=node, scheme=cs[0], display=localized(cl, "Name"), id=cl.get("id"))


def _author(cl: etree._Element, owner: str, errors: ErrorCollector) -> Author:
    slots = read_slots(cl, f"{owner} author", errors)
    person = slots.get("authorPerson")
    if person is not None and len(person) != 1:
        errors.add(META, f"{owner}: author Slot 'authorPerson' must have exactly one value")
    return Author(
        person=person[0] if person else None,
        institutions=slots.get("authorInstitution", []),
        roles=slots.get("authorRole", []),
        specialties=slots.get("authorSpecialty", []),
        telecoms=slots.get("authorTelecommunication", []),
        id=cl.get("id"),
    )


class _Classified:
    """Classifications and ExternalIdentifiers of one object, grouped by scheme."""

    def __init__(self, el: etree._Element, owner: str, errors: ErrorCollector):
        obj_id = el.get("id")
        self.by_scheme: dict[str, list[etree._Element]] = {}
        self.nodes: list[str] = []
        self.ext: dict[str, list[etree._Element]] = {}
        for cl in el.findall(R("Classification")):
            target = cl.get("classifiedObject")
            if target and obj_id and target != obj_id:
                errors.add(META, f"{owner}: Classification {cl.get('id')} classifies {target}, not {obj_id}")
            if cl.get("classificationNode"):
                self.nodes.append(cl.get("classificationNode") or "")
            else:
                self.by_scheme.setdefault(cl.get("classificationScheme") or "", []).append(cl)
        for ei in el.findall(R("ExternalIdentifier")):
            ro = ei.get("registryObject")
            if ro and obj_id and ro != obj_id:
                errors.add(
                    META,
                    f"{owner}: ExternalIdentifier {ei.get('id')} names registryObject {ro}, not {obj_id}",
                )
            self.ext.setdefault(ei.get("identificationScheme") or "", []).append(ei)

    def ext_value(
        self, scheme: str, what: str, owner: str, errors: ErrorCollector, ids: dict[str, str]
    ) -> str:
        found = self.ext.get(scheme, [])
        if len(found) > 1:
            errors.add(META, f"{owner}: {what} ExternalIdentifier appears {len(found)} times")
        if not found:
            return ""
        if found[0].get("id"):
            ids[scheme] = found[0].get("id") or ""
        return found[0].get("value") or ""

    def code(
        self, scheme: str, what: str, owner: str, errors: ErrorCollector, multiple: bool = False
    ) -> list[Code]:
        found = self.by_scheme.get(scheme, [])
        if not multiple and len(found) > 1:
            errors.add(META, f"{owner}: {what} appears {len(found)} times, at most once is allowed")
        out = [c for c in (_code(cl, owner, what, errors) for cl in found) if c is not None]
        return out


def parse_document_entry(el: etree._Element, errors: ErrorCollector) -> DocumentEntry:
    eid = el.get("id") or ""
    owner = f"DocumentEntry {eid}"
    de = DocumentEntry(entry_uuid=eid)
    _common(de, el)
    de.mime_type = el.get("mimeType") or ""
    de.object_type = el.get("objectType") or ""
    slots = read_slots(el, owner, errors)
    de.creation_time = _single(slots, "creationTime", owner, errors)
    de.hash = _single(slots, "hash", owner, errors)
    size = _single(slots, "size", owner, errors)
    if size is not None:
        if size.isdigit():
            de.size = int(size)
        else:
            errors.add(META, f"{owner}: size '{size}' is not a non-negative integer")
    de.repository_unique_id = _single(slots, "repositoryUniqueId", owner, errors)
    de.uri = _single(slots, "URI", owner, errors)
    de.language_code = _single(slots, "languageCode", owner, errors)
    de.legal_authenticator = _single(slots, "legalAuthenticator", owner, errors)
    de.service_start_time = _single(slots, "serviceStartTime", owner, errors)
    de.service_stop_time = _single(slots, "serviceStopTime", owner, errors)
    de.source_patient_id = _single(slots, "sourcePatientId", owner, errors)
    de.document_availability = _single(slots, "documentAvailability", owner, errors)
    de.source_patient_info = slots.get("sourcePatientInfo", [])
    de.reference_ids = slots.get("urn:ihe:iti:xds:2013:referenceIdList", [])
    de.extra_slots = _extra(slots, DE_SLOTS_SINGLE | DE_SLOTS_MULTI, owner, errors)

    c = _Classified(el, owner, errors)
    de.class_code = _first(c.code(v.DE_CLASS_CODE, "classCode", owner, errors))
    de.type_code = _first(c.code(v.DE_TYPE_CODE, "typeCode", owner, errors))
    de.format_code = _first(c.code(v.DE_FORMAT_CODE, "formatCode", owner, errors))
    de.healthcare_facility_type_code = _first(
        c.code(v.DE_HCFT_CODE, "healthcareFacilityTypeCode", owner, errors)
    )
    de.practice_setting_code = _first(
        c.code(v.DE_PRACTICE_SETTING_CODE, "practiceSettingCode", owner, errors)
    )
    de.confidentiality_codes = c.code(v.DE_CONFIDENTIALITY_CODE, "confidentialityCode", owner, errors, True)
    de.event_codes = c.code(v.DE_EVENT_CODE, "eventCodeList", owner, errors, True)
    de.authors = [_author(cl, owner, errors) for cl in c.by_scheme.get(v.DE_AUTHOR, [])]
    de.limited_metadata = v.DE_LIMITED_METADATA in c.nodes
    known = {
        v.DE_CLASS_CODE,
        v.DE_TYPE_CODE,
        v.DE_FORMAT_CODE,
        v.DE_HCFT_CODE,
        v.DE_PRACTICE_SETTING_CODE,
        v.DE_CONFIDENTIALITY_CODE,
        v.DE_EVENT_CODE,
        v.DE_AUTHOR,
        v.DE_LIMITED_METADATA,
    }
    for scheme in c.by_scheme:
        if scheme not in known:
            errors.add(META, f"{owner}: unknown classificationScheme '{scheme}'")
    de.patient_id = c.ext_value(v.DE_PATIENT_ID, "XDSDocumentEntry.patientId", owner, errors, de.ebrim_ids)
    de.unique_id = c.ext_value(v.DE_UNIQUE_ID, "XDSDocumentEntry.uniqueId", owner, errors, de.ebrim_ids)
    for scheme in c.ext:
        if scheme not in (v.DE_PATIENT_ID, v.DE_UNIQUE_ID):
            errors.add(META, f"{owner}: unknown identificationScheme '{scheme}'")
    return de


def parse_registry_package(el: etree._Element, kind: str, errors: ErrorCollector) -> SubmissionSet | Folder:
    pid = el.get("id") or ""
    c = None
    if kind == "SubmissionSet":
        owner = f"SubmissionSet {pid}"
        ss = SubmissionSet(entry_uuid=pid)
        _common(ss, el)
        slots = read_slots(el, owner, errors)
        ss.submission_time = _single(slots, "submissionTime", owner, errors)
        ss.intended_recipients = slots.get("intendedRecipient", [])
        ss.extra_slots = _extra(slots, SS_SLOTS, owner, errors)
        c = _Classified(el, owner, errors)
        ss.content_type_code = _first(c.code(v.SS_CONTENT_TYPE_CODE, "contentTypeCode", owner, errors))
        ss.authors = [_author(cl, owner, errors) for cl in c.by_scheme.get(v.SS_AUTHOR, [])]
        ss.limited_metadata = v.SS_LIMITED_METADATA in c.nodes
        for scheme in c.by_scheme:
            if scheme not in (v.SS_CONTENT_TYPE_CODE, v.SS_AUTHOR, v.SS_LIMITED_METADATA):
                errors.add(META, f"{owner}: unknown classificationScheme '{scheme}'")
        ss.patient_id = c.ext_value(
            v.SS_PATIENT_ID, "XDSSubmissionSet.patientId", owner, errors, ss.ebrim_ids
        )
        ss.unique_id = c.ext_value(v.SS_UNIQUE_ID, "XDSSubmissionSet.uniqueId", owner, errors, ss.ebrim_ids)
        ss.source_id = c.ext_value(v.SS_SOURCE_ID, "XDSSubmissionSet.sourceId", owner, errors, ss.ebrim_ids)
        for scheme in c.ext:
            if scheme not in (v.SS_PATIENT_ID, v.SS_UNIQUE_ID, v.SS_SOURCE_ID):
                errors.add(META, f"{owner}: unknown identificationScheme '{scheme}'")
        return ss
    owner = f"Folder {pid}"
    fol = Folder(entry_uuid=pid)
    _common(fol, el)
    slots = read_slots(el, owner, errors)
    fol.last_update_time = _single(slots, "lastUpdateTime", owner, errors)
    fol.extra_slots = _extra(slots, FOLDER_SLOTS, owner, errors)
    c = _Classified(el, owner, errors)
    fol.codes = c.code(v.FOLDER_CODE_LIST, "codeList", owner, errors, True)
    fol.limited_metadata = v.FOLDER_LIMITED_METADATA in c.nodes
    for scheme in c.by_scheme:
        if scheme not in (v.FOLDER_CODE_LIST, v.FOLDER_LIMITED_METADATA):
            errors.add(META, f"{owner}: unknown classificationScheme '{scheme}'")
    fol.patient_id = c.ext_value(v.FOLDER_PATIENT_ID, "XDSFolder.patientId", owner, errors, fol.ebrim_ids)
    fol.unique_id = c.ext_value(v.FOLDER_UNIQUE_ID, "XDSFolder.uniqueId", owner, errors, fol.ebrim_ids)
    for scheme in c.ext:
        if scheme not in (v.FOLDER_PATIENT_ID, v.FOLDER_UNIQUE_ID):
            errors.add(META, f"{owner}: unknown identificationScheme '{scheme}'")
    return fol


def parse_association(el: etree._Element, errors: ErrorCollector) -> Association:
    aid = el.get("id") or ""
    owner = f"Association {aid}"
    a = Association(entry_uuid=aid)
    _common(a, el)
    atype = el.get("associationType") or ""
    a.association_type = v.ASSOCIATION_SHORT_NAMES.get(atype, atype)
    a.source = el.get("sourceObject") or ""
    a.target = el.get("targetObject") or ""
    slots = read_slots(el, owner, errors)
    # Association slots are all kept: SubmissionSetStatus, ITI-57 slots and legal extra metadata.
    for name in slots:
        if name not in ASSOCIATION_SLOTS and not _is_legal_extra_slot(name):
            errors.add(META, f"{owner}: Slot '{name}' is not defined for an Association")
    a.extra_slots = slots
    c = _Classified(el, owner, errors)
    a.documentation = c.code(v.ASSOCIATION_DOCUMENTATION, "associationDocumentation", owner, errors, True)
    for scheme in c.by_scheme:
        if scheme != v.ASSOCIATION_DOCUMENTATION:
            errors.add(META, f"{owner}: unknown classificationScheme '{scheme}'")
    return a


def package_kind(el: etree._Element, external_nodes: dict[str, list[str]]) -> str | None:
    """SubmissionSet or Folder, by the classificationNode inside the package or pointing at it."""
    nodes = [cl.get("classificationNode") for cl in el.findall(R("Classification"))]
    nodes += external_nodes.get(el.get("id") or "", [])
    if v.SS_NODE in nodes:
        return "SubmissionSet"
    if v.FOLDER_NODE in nodes:
        return "Folder"
    return None


def parse_submission(rol: etree._Element, errors: ErrorCollector) -> Submission:
    """Translate a rim:RegistryObjectList into a Submission, collecting structural errors."""
    sub = Submission()
    external_nodes: dict[str, list[str]] = {}
    for cl in rol.findall(R("Classification")):
        node = cl.get("classificationNode")
        if node in (v.SS_NODE, v.FOLDER_NODE):
            external_nodes.setdefault(cl.get("classifiedObject") or "", []).append(node or "")
        else:
            errors.add(
                META,
                f"Classification {cl.get('id')} at top level must classify a SubmissionSet "
                f"or a Folder, has classificationNode '{node}'",
            )
    for el in rol:
        if not isinstance(el.tag, str):
            continue
        name = localname(el)
        if el.tag == R("ExtrinsicObject"):
            sub.documents.append(parse_document_entry(el, errors))
        elif el.tag == R("RegistryPackage"):
            kind = package_kind(el, external_nodes)
            if kind is None:
                errors.add(
                    META,
                    f"RegistryPackage {el.get('id')} is classified neither as a SubmissionSet "
                    f"nor as a Folder",
                )
                continue
            obj = parse_registry_package(el, kind, errors)
            if isinstance(obj, SubmissionSet):
                if sub.submission_set is not None:
                    errors.add(META, "the submission holds more than one SubmissionSet")
                sub.submission_set = obj
            else:
                sub.folders.append(obj)
        elif el.tag == R("Association"):
            sub.associations.append(parse_association(el, errors))
        elif el.tag == R("ObjectRef"):
            sub.object_refs.append(el.get("id") or "")
        elif el.tag == R("Classification"):
            continue
        else:
            errors.add(META, f"unexpected element {name} in RegistryObjectList")
    return sub


def _first(codes: list[Code]) -> Code | None:
    return codes[0] if codes else None


def _extra(
    slots: dict[str, list[str]], known: set[str], owner: str, errors: ErrorCollector
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, values in slots.items():
        if name in known:
            continue
        if _is_legal_extra_slot(name):
            out[name] = values
        else:
            errors.add(
                META,
                f"{owner}: Slot '{name}' is neither XDS metadata nor legal extra metadata "
                f"(ITI TF-3 4.1.14: a URN outside urn:ihe:)",
            )
    return out


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _el(tag: str, parent: etree._Element | None = None, **attrs: str | None) -> etree._Element:
    clean = {k: val for k, val in attrs.items() if val is not None}
    if parent is None:
        return etree.Element(R(tag), clean, nsmap={"rim": v.RIM})
    return etree.SubElement(parent, R(tag), clean)


def _slot(parent: etree._Element, name: str, values: Iterable[str | None]) -> None:
    vals = [x for x in values if x is not None]
    if not vals:
        return
    s = _el("Slot", parent, name=name)
    vl = _el("ValueList", s)
    for val in vals:
        _el("Value", vl).text = val


def _localized(parent: etree._Element, tag: str, text: str | None) -> None:
    if text is None:
        return
    _el("LocalizedString", _el(tag, parent), value=text)


def _classification(
    parent: etree._Element, scheme: str, obj_id: str, node: str, cid: str | None
) -> tuple[etree._Element, str]:
    """A scheme Classification of ``obj_id``; keeps a UUID id it already had, else mints one."""
    cid = cid if cid and cid.startswith("urn:uuid:") else new_uuid()
    cl = _el(
        "Classification",
        parent,
        id=cid,
        objectType=v.OBJECT_TYPE_CLASSIFICATION,
        classificationScheme=scheme,
        classifiedObject=obj_id,
        nodeRepresentation=node,
    )
    return cl, cid


def _code_el(parent: etree._Element, scheme: str, code: Code, obj_id: str) -> None:
    cl, code.id = _classification(parent, scheme, obj_id, code.code, code.id)
    _slot(cl, "codingScheme", [code.scheme])
    _localized(cl, "Name", code.display if code.display is not None else code.code)


def _author_el(parent: etree._Element, scheme: str, a: Author, obj_id: str) -> None:
    cl, a.id = _classification(parent, scheme, obj_id, "", a.id)
    _slot(cl, "authorPerson", [a.person])
    _slot(cl, "authorInstitution", a.institutions)
    _slot(cl, "authorRole", a.roles)
    _slot(cl, "authorSpecialty", a.specialties)
    _slot(cl, "authorTelecommunication", a.telecoms)


def _ext_el(parent: etree._Element, obj: RegistryObject, scheme: str, value: str) -> None:
    eid = obj.ebrim_ids.get(scheme)
    if not eid or not eid.startswith("urn:uuid:"):
        eid = obj.ebrim_ids[scheme] = new_uuid()
    ei = _el(
        "ExternalIdentifier",
        parent,
        id=eid,
        objectType=v.OBJECT_TYPE_EXTERNAL_ID,
        registryObject=obj.entry_uuid,
        identificationScheme=scheme,
        value=value,
    )
    _localized(ei, "Name", v.EXTERNAL_ID_NAMES[scheme])


def _node_el(parent: etree._Element, obj: RegistryObject, node: str) -> None:
    key = "node:" + node
    cid = obj.ebrim_ids.get(key)
    if not cid or not cid.startswith("urn:uuid:"):
        cid = obj.ebrim_ids[key] = new_uuid()
    _el(
        "Classification",
        parent,
        id=cid,
        objectType=v.OBJECT_TYPE_CLASSIFICATION,
        classifiedObject=obj.entry_uuid,
        classificationNode=node,
    )


def _head(tag: str, obj: RegistryObject, **attrs: str | None) -> etree._Element:
    el = _el(
        tag,
        None,
        id=obj.entry_uuid,
        lid=obj.logical_id or obj.entry_uuid,
        home=obj.home_community_id,
        status=obj.status,
        **attrs,
    )
    return el


def _names(el: etree._Element, obj: RegistryObject) -> None:
    _localized(el, "Name", obj.title)
    _localized(el, "Description", obj.comments)
    _el("VersionInfo", el, versionName=obj.version or "1")


def render_document_entry(de: DocumentEntry) -> etree._Element:
    el = _head("ExtrinsicObject", de, mimeType=de.mime_type, objectType=de.object_type)
    _slot(el, "creationTime", [de.creation_time])
    _slot(el, "hash", [de.hash])
    _slot(el, "languageCode", [de.language_code])
    _slot(el, "legalAuthenticator", [de.legal_authenticator])
    _slot(el, "repositoryUniqueId", [de.repository_unique_id])
    _slot(el, "serviceStartTime", [de.service_start_time])
    _slot(el, "serviceStopTime", [de.service_stop_time])
    _slot(el, "size", [str(de.size) if de.size is not None else None])
    _slot(el, "sourcePatientId", [de.source_patient_id])
    _slot(el, "sourcePatientInfo", de.source_patient_info)
    _slot(el, "URI", [de.uri])
    _slot(el, "documentAvailability", [de.document_availability])
    _slot(el, "urn:ihe:iti:xds:2013:referenceIdList", de.reference_ids)
    for name, values in de.extra_slots.items():
        _slot(el, name, values)
    _names(el, de)
    for a in de.authors:
        _author_el(el, v.DE_AUTHOR, a, de.entry_uuid)
    singles = [
        (v.DE_CLASS_CODE, de.class_code),
        (v.DE_FORMAT_CODE, de.format_code),
        (v.DE_HCFT_CODE, de.healthcare_facility_type_code),
        (v.DE_PRACTICE_SETTING_CODE, de.practice_setting_code),
        (v.DE_TYPE_CODE, de.type_code),
    ]
    for scheme, code in singles:
        if code is not None:
            _code_el(el, scheme, code, de.entry_uuid)
    for code in de.confidentiality_codes:
        _code_el(el, v.DE_CONFIDENTIALITY_CODE, code, de.entry_uuid)
    for code in de.event_codes:
        _code_el(el, v.DE_EVENT_CODE, code, de.entry_uuid)
    if de.limited_metadata:
        _node_el(el, de, v.DE_LIMITED_METADATA)
    _ext_el(el, de, v.DE_PATIENT_ID, de.patient_id)
    _ext_el(el, de, v.DE_UNIQUE_ID, de.unique_id)
    return el


def render_submission_set(ss: SubmissionSet) -> etree._Element:
    el = _head("RegistryPackage", ss, objectType=v.OBJECT_TYPE_REGISTRY_PACKAGE)
    _slot(el, "submissionTime", [ss.submission_time])
    _slot(el, "intendedRecipient", ss.intended_recipients)
    for name, values in ss.extra_slots.items():
        _slot(el, name, values)
    _names(el, ss)
    _node_el(el, ss, v.SS_NODE)
    if ss.limited_metadata:
        _node_el(el, ss, v.SS_LIMITED_METADATA)
    for a in ss.authors:
        _author_el(el, v.SS_AUTHOR, a, ss.entry_uuid)
    if ss.content_type_code is not None:
        _code_el(el, v.SS_CONTENT_TYPE_CODE, ss.content_type_code, ss.entry_uuid)
    _ext_el(el, ss, v.SS_UNIQUE_ID, ss.unique_id)
    _ext_el(el, ss, v.SS_SOURCE_ID, ss.source_id)
    _ext_el(el, ss, v.SS_PATIENT_ID, ss.patient_id)
    return el


def render_folder(fol: Folder) -> etree._Element:
    el = _head("RegistryPackage", fol, objectType=v.OBJECT_TYPE_REGISTRY_PACKAGE)
    _slot(el, "lastUpdateTime", [fol.last_update_time])
    for name, values in fol.extra_slots.items():
        _slot(el, name, values)
    _names(el, fol)
    _node_el(el, fol, v.FOLDER_NODE)
    if fol.limited_metadata:
        _node_el(el, fol, v.FOLDER_LIMITED_METADATA)
    for code in fol.codes:
        _code_el(el, v.FOLDER_CODE_LIST, code, fol.entry_uuid)
    _ext_el(el, fol, v.FOLDER_PATIENT_ID, fol.patient_id)
    _ext_el(el, fol, v.FOLDER_UNIQUE_ID, fol.unique_id)
    return el


def render_association(a: Association) -> etree._Element:
    el = _el(
        "Association",
        None,
        id=a.entry_uuid,
        lid=a.logical_id or a.entry_uuid,
        home=a.home_community_id,
        objectType=v.OBJECT_TYPE_ASSOCIATION,
        status=a.status,
        associationType=a.association_type,
        sourceObject=a.source,
        targetObject=a.target,
    )
    for name, values in a.extra_slots.items():
        _slot(el, name, values)
    _names(el, a)
    for code in a.documentation:
        _code_el(el, v.ASSOCIATION_DOCUMENTATION, code, a.entry_uuid)
    return el


def render(obj: RegistryObject) -> etree._Element:
    if isinstance(obj, DocumentEntry):
        return render_document_entry(obj)
    if isinstance(obj, SubmissionSet):
        return render_submission_set(obj)
    if isinstance(obj, Folder):
        return render_folder(obj)
    if isinstance(obj, Association):
        return render_association(obj)
    raise TypeError(type(obj))  # pragma: no cover - the model has no other kinds


def to_fragment(obj: RegistryObject) -> str:
    """The object as a self-contained ebRIM fragment (declares rim: itself)."""
    return etree.tostring(render(obj), encoding="unicode")


def from_fragment(fragment: str) -> RegistryObject:
    """Parse a stored fragment back into the model (used to change status or versions)."""
    el = etree.fromstring(fragment)
    errors = ErrorCollector()
    obj: RegistryObject
    if el.tag == R("ExtrinsicObject"):
        obj = parse_document_entry(el, errors)
    elif el.tag == R("Association"):
        obj = parse_association(el, errors)
    else:
        kind = package_kind(el, {}) or "Folder"
        obj = parse_registry_package(el, kind, errors)
    if errors:  # a fragment we wrote ourselves must read back
        raise ValueError(f"stored fragment does not parse: {errors.errors}")
    return obj


def render_submit_objects_request(sub: Submission) -> etree._Element:
    """A whole submission as lcm:SubmitObjectsRequest (what a repository forwards by ITI-42)."""
    root = etree.Element(qname(v.LCM, "SubmitObjectsRequest"), nsmap={"lcm": v.LCM, "rim": v.RIM})
    rol = etree.SubElement(root, R("RegistryObjectList"))
    for obj in sub.objects():
        rol.append(render(obj))
    for ref in sub.object_refs:
        etree.SubElement(rol, R("ObjectRef"), id=ref)
    return root
