"""ebRIM 2.1 -> 3.0 translation of SubmitObjectsRequests, as the NIST XDS Toolkit does before sending.

Most NIST test-plan submissions are ebRIM 2.1 (``rs:SubmitObjectsRequest/rim:LeafRegistryObjectList``
in ``urn:oasis:names:tc:ebxml-regrep:{registry,rim}:xsd:2.1``). The Java engine translates them
(``registry-metadata/.../TranslateToV3.java``, ``deep_copy`` and ``copy_attributes``); this module
reproduces that translation so the result is what NIST would put on the wire:

- the root becomes ``lcm:SubmitObjectsRequest/rim:RegistryObjectList``, every element moves to the
  ``rim:3.0`` namespace, comments are not copied;
- ``ObjectRef`` elements are dropped (in 3.0 a submission may reference objects it does not
  carry, so NIST does not send them);
- children are reordered as the 3.0 schema requires: Slot, Name, Description, VersionInfo,
  Classification, ExternalIdentifier, then anything else;
- Associations and Classifications without an ``id`` get one (``id_N``); every ExternalIdentifier
  gets an ``id`` and ``registryObject`` = the id of the object that holds it (both required in 3.0);
- ``status`` and ``associationType`` short names become URNs; ``majorVersion``/``minorVersion``
  are dropped (no such attributes in 3.0); ``lang`` becomes ``xml:lang``;
- ``objectType`` is forced on RegistryPackage, Association, Classification and ExternalIdentifier.

Slots are copied untouched, so the 2.1 HasMember ``SubmissionSetStatus`` slot survives.
"""

from __future__ import annotations

from lxml import etree

from carnet.xds import vocabulary as v
from carnet.xml import localname

RS21 = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"
XML_NS = "http://www.w3.org/XML/1998/namespace"

# The 3.0 RegistryObjectType sequence; TranslateToV3's ``Att`` enum.
_ORDERED = ("Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier")

# Metadata.iheAssocTypes: the short names that live in the IHE namespace. IsSnapshotOf (On-Demand,
# 2010) is not in NIST's list; its correct URN is taken from the vocabulary rather than guessed.
_IHE_2007_TYPES = {"APND", "XFRM", "RPLC", "XFRM_RPLC", "signs"}
_IHE_2007_PREFIX = "urn:ihe:iti:2007:AssociationType:"
_EBRIM_ASSOC_PREFIX = "urn:oasis:names:tc:ebxml-regrep:AssociationType:"

# objectType values TranslateToV3.copy_attributes forces, by element.
_FORCED_OBJECT_TYPE = {
    "RegistryPackage": v.OBJECT_TYPE_REGISTRY_PACKAGE,
    "Association": v.OBJECT_TYPE_ASSOCIATION,
    "Classification": v.OBJECT_TYPE_CLASSIFICATION,
    "ExternalIdentifier": v.OBJECT_TYPE_EXTERNAL_ID,
}


def is_v21(root: etree._Element) -> bool:
    """True for an ebRIM 2.1 SubmitObjectsRequest (or a bare 2.1 LeafRegistryObjectList)."""
    return etree.QName(root).namespace in (RS21, v.RIM21)


def association_type_v3(value: str) -> str:
    """Metadata.addNamespace(value, v3AssociationNamespace(value)): a value with a ':' is kept."""
    if ":" in value:
        return value
    if value in _IHE_2007_TYPES:
        return _IHE_2007_PREFIX + value
    if value == "IsSnapshotOf":
        return v.IS_SNAPSHOT_OF
    return _EBRIM_ASSOC_PREFIX + value


def status_v3(value: str) -> str:
    return value if ":" in value else v.STATUS_PREFIX + value


class _Translator:
    """One translation: owns the ``id_N`` counter, which never reuses an id of the input."""

    def __init__(self, taken: set[str]):
        self._taken = taken
        self._count = 0

    def new_id(self) -> str:
        while True:
            self._count += 1
            candidate = f"id_{self._count}"
            if candidate not in self._taken:
                self._taken.add(candidate)
                return candidate

    def copy(self, src: etree._Element) -> etree._Element:
        name = localname(src)
        dst = etree.Element(etree.QName(v.RIM, name).text)
        self._copy_attributes(src, dst, name)
        if name in ("Association", "Classification") and not dst.get("id"):
            dst.set("id", self.new_id())

        children = [c for c in src if isinstance(c.tag, str)]
        for wanted in _ORDERED:
            for child in children:
                if localname(child) != wanted:
                    continue
                new = self.copy(child)
                if wanted == "ExternalIdentifier":
                    if not new.get("id"):
                        new.set("id", self.new_id())
                    # TranslateToV3 always points it at its holder (3.0 requires the attribute).
                    if src.get("id"):
                        new.set("registryObject", src.get("id") or "")
                dst.append(new)
        for child in children:
            if localname(child) not in _ORDERED and localname(child) != "ObjectRef":
                dst.append(self.copy(child))
        if not children and src.text is not None:
            dst.text = src.text
        return dst

    @staticmethod
    def _copy_attributes(src: etree._Element, dst: etree._Element, element_name: str) -> None:
        for key, value in src.attrib.items():
            attr = etree.QName(key).localname
            if attr in ("majorVersion", "minorVersion"):
                continue
            if attr == "status":
                value = status_v3(value)
            elif attr == "associationType":
                value = association_type_v3(value)
            if attr == "lang":
                dst.set(etree.QName(XML_NS, "lang").text, value)
            else:
                dst.set(attr, value)
        forced = _FORCED_OBJECT_TYPE.get(element_name)
        if forced:
            dst.set("objectType", forced)


def to_v3(root: etree._Element) -> etree._Element:
    """Translate an ebRIM 2.1 SubmitObjectsRequest into a new ebRIM 3.0 lcm:SubmitObjectsRequest.

    The input is not modified. Raises ValueError when ``root`` is not ebRIM 2.1.
    """
    if not is_v21(root):
        raise ValueError(f"not an ebRIM 2.1 SubmitObjectsRequest: {root.tag}")
    leaf_list = (
        root
        if localname(root) == "LeafRegistryObjectList"
        else root.find(f"{{{v.RIM21}}}LeafRegistryObjectList")
    )
    if leaf_list is None:
        raise ValueError("ebRIM 2.1 SubmitObjectsRequest without a LeafRegistryObjectList")

    taken = {el.get("id") or "" for el in leaf_list.iter() if isinstance(el.tag, str)}
    translator = _Translator(taken)
    out = etree.Element(etree.QName(v.LCM, "SubmitObjectsRequest").text, nsmap={"lcm": v.LCM, "rim": v.RIM})
    rol = etree.SubElement(out, etree.QName(v.RIM, "RegistryObjectList").text)
    for child in leaf_list:
        if isinstance(child.tag, str) and localname(child) != "ObjectRef":
            rol.append(translator.copy(child))
    return out
