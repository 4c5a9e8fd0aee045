"""XML Signature core (W3C XMLDSig 1.1), as far as signature documents need it.

Signature documents (DSG detached, enveloping and submission-set signatures, the DMP's XAdES
form) all have ``ds:Signature`` as their root and reference either elements inside it by ``Id``
(``ds:Manifest``, ``xades:SignedProperties``, the enveloping ``ds:Object``) or documents outside
it by ``urn:oid:<uniqueId>``. This module parses that shape, computes and checks reference
digests and signature values, and builds them when signing; the same functions serve both sides,
and the tests cross-check them against xmlsec1 and signxml.

Why not signxml's verifier: it does not process ``ds:Manifest`` references (the DMP and DSG
submission-set signatures put every document there), cannot apply a canonicalisation transform
to an external document, and cannot reuse the SHA-1/SHA-256 the repository already computed
while it streamed each document. The cryptography is ``cryptography``'s; canonicalisation is
libxml2's through lxml.

Safety rules: input is parsed by Carnet's hardened parser (no DTD, no entities, no network);
a same-document reference must name exactly one element inside the signature (a duplicated Id
is refused, so no element can be wrapped in and read instead of the one digested); only
canonicalisation and base64 transforms are accepted (no XPath, no XSLT).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from carnet.signature import vocabulary as sv
from carnet.xml import UnsafeXMLError, parse, qname

DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    sv.SHA1: hashes.SHA1,
    sv.SHA256: hashes.SHA256,
    sv.SHA384: hashes.SHA384,
    sv.SHA512: hashes.SHA512,
}
SIGNATURE_METHODS: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    sv.RSA_SHA1: ("rsa", hashes.SHA1),
    sv.RSA_SHA256: ("rsa", hashes.SHA256),
    sv.RSA_SHA384: ("rsa", hashes.SHA384),
    sv.RSA_SHA512: ("rsa", hashes.SHA512),
    sv.ECDSA_SHA256: ("ecdsa", hashes.SHA256),
    sv.ECDSA_SHA384: ("ecdsa", hashes.SHA384),
    sv.ECDSA_SHA512: ("ecdsa", hashes.SHA512),
}
ID_ATTRIBUTES = ("Id", "ID", "id")
XML_NS = "{http://www.w3.org/XML/1998/namespace}"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class XMLDSigError(Exception):
    """The signature is malformed, uses something not accepted, or does not verify."""


def ds(local: str) -> str:
    return qname(sv.DS, local)


# ---------------------------------------------------------------------------------------------
# Canonicalisation, digests, signature values
# ---------------------------------------------------------------------------------------------


def canonicalize(
    node: etree._Element | etree._ElementTree,
    algorithm: str,
    *,
    inclusive_prefixes: list[str] | None = None,
    comments: bool | None = None,
) -> bytes:
    """The canonical form of ``node`` (an element in its context, or a whole document).

    lxml implements Canonical XML 1.0 and Exclusive C14N; Canonical XML 1.1 differs from 1.0
    only in how xml:id and xml:base are inherited into a document subset, so 1.1 is computed as
    1.0 without inheriting xml:id (no signature document relies on xml:base). ``comments``
    overrides the algorithm's choice: a bare-name ``#id`` reference never includes comments
    (XMLDSig §4.4.3.3).
    """
    if algorithm not in sv.CANONICALIZATIONS:
        raise XMLDSigError(f"canonicalisation algorithm '{algorithm}' is not accepted")
    exclusive = algorithm.startswith(sv.EXC_C14N)
    with_comments = algorithm.endswith("WithComments") if comments is None else comments
    if isinstance(node, etree._Element) and node.getparent() is not None:
        node = _as_document(
            node, inherit_xml_attributes=not exclusive, xml_id=algorithm.startswith(sv.C14N_10)
        )
    return etree.tostring(
        node,
        method="c14n",
        exclusive=exclusive,
        with_comments=with_comments,
        inclusive_ns_prefixes=inclusive_prefixes if exclusive else None,
    )


def _as_document(el: etree._Element, *, inherit_xml_attributes: bool, xml_id: bool) -> etree._Element:
    """``el`` as the root of a document of its own, canonicalising to what ``el`` in context does.

    libxml2 (2.14, in lxml 6) canonicalises an element whose default namespace is declared on an
    ancestor wrongly: it writes ``xmlns=""`` on the element's grandchildren, which breaks every
    signature in the DMP's default-namespace form (signxml has the same trouble, its issue
    #275). A document root is canonicalised right, so the element is copied out with the
    namespaces in scope (lxml's serialisation declares them all on the copy) and, for inclusive
    canonicalisation, the xml:* attributes it inherits (Canonical XML 1.0 §2.4; 1.1 does not
    inherit xml:id).
    """
    copy = parse(etree.tostring(el, with_tail=False))
    if inherit_xml_attributes:
        for ancestor in el.iterancestors():
            for name, value in ancestor.attrib.items():
                if name.startswith(XML_NS) and name not in copy.attrib and (xml_id or name != XML_NS + "id"):
                    copy.set(name, value)
    return copy


def digest(algorithm: str, data: bytes) -> bytes:
    try:
        h = hashes.Hash(DIGESTS[algorithm]())
    except KeyError:
        raise XMLDSigError(f"digest algorithm '{algorithm}' is not accepted") from None
    h.update(data)
    return h.finalize()


def _hash_of(method: str) -> tuple[str, hashes.HashAlgorithm]:
    try:
        kind, hash_cls = SIGNATURE_METHODS[method]
    except KeyError:
        raise XMLDSigError(f"signature method '{method}' is not accepted") from None
    return kind, hash_cls()


def check_signature_value(method: str, key: object, value: bytes, data: bytes) -> None:
    """Raise XMLDSigError unless ``value`` is ``key``'s signature of ``data`` by ``method``."""
    kind, hash_alg = _hash_of(method)
    try:
        if kind == "rsa":
            if not isinstance(key, rsa.RSAPublicKey):
                raise XMLDSigError(f"signature method '{method}' needs an RSA key")
            key.verify(value, data, padding.PKCS1v15(), hash_alg)
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise XMLDSigError(f"signature method '{method}' needs an EC key")
            # XMLDSig carries ECDSA signatures as r || s, each the size of the curve order.
            size = (key.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                raise XMLDSigError(f"an ECDSA SignatureValue on {key.curve.name} has {2 * size} bytes")
            r, s = int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_alg))
    except InvalidSignature:
        raise XMLDSigError("the SignatureValue does not verify with the signer's public key") from None


def signature_value(method: str, key: PrivateKey, data: bytes) -> bytes:
    kind, hash_alg = _hash_of(method)
    if kind == "rsa":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise XMLDSigError(f"signature method '{method}' needs an RSA key")
        return key.sign(data, padding.PKCS1v15(), hash_alg)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise XMLDSigError(f"signature method '{method}' needs an EC key")
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_alg)))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def signature_method_for(key: PrivateKey, digest_method: str) -> str:
    """The SignatureMethod matching a key type and a digest algorithm."""
    kind = "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ecdsa"
    for method, (k, hash_cls) in SIGNATURE_METHODS.items():
        if k == kind and hash_cls is DIGESTS[digest_method]:
            return method
    raise XMLDSigError(f"no {kind} signature method uses digest '{digest_method}'")


def b64decode(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise XMLDSigError(f"{what} is not valid base64") from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Reading a signature
# ---------------------------------------------------------------------------------------------


@dataclass
class Reference:
    """One ds:Reference, of SignedInfo or of a ds:Manifest."""

    element: etree._Element
    uri: str
    type: str | None
    transforms: list[tuple[str, etree._Element]]
    digest_method: str
    digest_text: str

    @property
    def is_local(self) -> bool:
        return self.uri.startswith("#")

    def digest_value(self) -> bytes:
        return b64decode(self.digest_text, f"the DigestValue of reference '{self.uri}'")


def read_reference(el: etree._Element) -> Reference:
    uri = el.get("URI")
    if uri is None or uri == "":
        raise XMLDSigError(
            'a ds:Reference without a URI (or with URI="", an enveloped signature) is not accepted: '
            "signature documents reference '#Id' inside the signature or 'urn:oid:<uniqueId>'"
        )
    transforms: list[tuple[str, etree._Element]] = []
    ts = el.find(ds("Transforms"))
    if ts is not None:
        transforms = [(t.get("Algorithm") or "", t) for t in ts.findall(ds("Transform"))]
    dm = el.find(ds("DigestMethod"))
    dv = el.find(ds("DigestValue"))
    if dm is None or not dm.get("Algorithm") or dv is None:
        raise XMLDSigError(f"reference '{uri}' lacks its DigestMethod or DigestValue")
    return Reference(el, uri, el.get("Type"), transforms, dm.get("Algorithm") or "", dv.text or "")


@dataclass
class ParsedSignature:
    """A signature document read but not yet verified: nothing in it is trusted yet."""

    root: etree._Element
    signed_info: etree._Element
    c14n_method: str
    inclusive_prefixes: list[str] | None
    signature_method: str
    signature_value: bytes
    references: list[Reference]
    certificates: list[x509.Certificate] = field(default_factory=list)


def _inclusive_prefixes(method_el: etree._Element) -> list[str] | None:
    for child in method_el:
        if isinstance(child.tag, str) and child.tag.endswith("}InclusiveNamespaces"):
            return (child.get("PrefixList") or "").split()
    return None


def parse_signature(data: bytes) -> ParsedSignature:
    try:
        root = parse(data)
    except UnsafeXMLError as exc:
        raise XMLDSigError(f"the signature document is not acceptable XML: {exc}") from None
    if root.tag != ds("Signature"):
        raise XMLDSigError(
            f"the signature document's root is {root.tag}, not ds:Signature "
            "(signatures enveloped inside the signed document are not accepted)"
        )
    signed_infos = root.findall(ds("SignedInfo"))
    if len(signed_infos) != 1:
        raise XMLDSigError("ds:Signature must hold exactly one ds:SignedInfo")
    si = signed_infos[0]
    cm, sm = si.find(ds("CanonicalizationMethod")), si.find(ds("SignatureMethod"))
    if cm is None or sm is None:
        raise XMLDSigError("ds:SignedInfo lacks its CanonicalizationMethod or SignatureMethod")
    c14n = cm.get("Algorithm") or ""
    if c14n not in sv.CANONICALIZATIONS:
        raise XMLDSigError(f"canonicalisation algorithm '{c14n}' is not accepted")
    method = sm.get("Algorithm") or ""
    if method not in SIGNATURE_METHODS:
        raise XMLDSigError(f"signature method '{method}' is not accepted")
    refs = [read_reference(r) for r in si.findall(ds("Reference"))]
    if not refs:
        raise XMLDSigError("ds:SignedInfo holds no ds:Reference")
    values = root.findall(ds("SignatureValue"))
    if len(values) != 1:
        raise XMLDSigError("ds:Signature must hold exactly one ds:SignatureValue")
    certs = []
    for el in root.iterfind(f"{ds('KeyInfo')}/{ds('X509Data')}/{ds('X509Certificate')}"):
        try:
            certs.append(x509.load_der_x509_certificate(b64decode(el.text, "an X509Certificate")))
        except ValueError as exc:
            raise XMLDSigError(f"an X509Certificate of KeyInfo cannot be read: {exc}") from None
    return ParsedSignature(
        root,
        si,
        c14n,
        _inclusive_prefixes(cm),
        method,
        b64decode(values[0].text, "the SignatureValue"),
        refs,
        certs,
    )


def same_document_target(root: etree._Element, uri: str) -> etree._Element:
    """The one element under ``root`` whose Id is ``uri`` without its '#'."""
    ident = uri[1:]
    matches = [
        el for el in root.iter() if isinstance(el.tag, str) and any(el.get(a) == ident for a in ID_ATTRIBUTES)
    ]
    if not matches:
        raise XMLDSigError(f"reference '{uri}' names no element of the signature")
    if len(matches) > 1:
        raise XMLDSigError(f"reference '{uri}' is ambiguous: {len(matches)} elements carry that Id")
    return matches[0]


# ---------------------------------------------------------------------------------------------
# Reference processing (the same for signing and verifying)
# ---------------------------------------------------------------------------------------------


def apply_transforms(ref: Reference, target: etree._Element | bytes) -> bytes:
    """The octets a reference digests: its target after its transforms (XMLDSig §4.4.3)."""
    data: etree._Element | etree._ElementTree | bytes = target
    same_document = isinstance(target, etree._Element)
    for algorithm, transform in ref.transforms:
        if algorithm == sv.BASE64_TRANSFORM:
            text = (
                "".join(data.itertext()) if not isinstance(data, bytes) else data.decode("ascii", "replace")
            )
            data = b64decode(text, f"the base64 content of reference '{ref.uri}'")
            same_document = False
        elif algorithm in sv.CANONICALIZATIONS:
            if isinstance(data, bytes):
                try:
                    data = parse(data).getroottree()
                except UnsafeXMLError as exc:
                    raise XMLDSigError(
                        f"reference '{ref.uri}' canonicalises content that is not acceptable XML: {exc}"
                    ) from None
            data = canonicalize(
                data,
                algorithm,
                inclusive_prefixes=_inclusive_prefixes(transform),
                comments=False if same_document else None,
            )
            same_document = False
        else:
            raise XMLDSigError(f"reference '{ref.uri}' uses transform '{algorithm}', which is not accepted")
    if isinstance(data, bytes):
        return data
    # A node-set with no canonicalisation transform is serialised by Canonical XML 1.0 (§4.4.3.2).
    return canonicalize(data, sv.C14N_10, comments=False)


def check_reference(ref: Reference, octets: bytes) -> None:
    if digest(ref.digest_method, octets) != ref.digest_value():
        raise XMLDSigError(f"the digest of reference '{ref.uri}' does not match its content")


# ---------------------------------------------------------------------------------------------
# Building a signature
# ---------------------------------------------------------------------------------------------


def element(
    ns: str,
    local: str,
    parent: etree._Element | None = None,
    text: str | None = None,
    nsmap: dict[str | None, str] | None = None,
    **attrs: str,
) -> etree._Element:
    el = (
        etree.SubElement(parent, qname(ns, local), nsmap=nsmap)
        if parent is not None
        else etree.Element(qname(ns, local), nsmap=nsmap)
    )
    for name, value in attrs.items():
        el.set(name, value)
    if text is not None:
        el.text = text
    return el


def add_reference(
    parent: etree._Element,
    uri: str,
    digest_method: str,
    *,
    type_: str | None = None,
    transforms: Iterable[str] = (),
    digest_value: str | None = None,
) -> Reference:
    ref = element(sv.DS, "Reference", parent, URI=uri)
    if type_:
        ref.set("Type", type_)
    transforms = list(transforms)
    if transforms:
        ts = element(sv.DS, "Transforms", ref)
        for algorithm in transforms:
            element(sv.DS, "Transform", ts, Algorithm=algorithm)
    element(sv.DS, "DigestMethod", ref, Algorithm=digest_method)
    element(sv.DS, "DigestValue", ref, digest_value)
    return read_reference(ref)


def fill_digest(ref: Reference, target: etree._Element | bytes) -> None:
    value = b64(digest(ref.digest_method, apply_transforms(ref, target)))
    dv = ref.element.find(ds("DigestValue"))
    assert dv is not None
    dv.text = value
    ref.digest_text = value


def finish(root: etree._Element, key: PrivateKey) -> bytes:
    """Sign SignedInfo (whose references are filled) and return the document's bytes.

    These bytes are the signature document: they are stored and served as they are, since
    re-serialising a signed document can change what it canonicalises to.
    """
    si = root.find(ds("SignedInfo"))
    sv_el = root.find(ds("SignatureValue"))
    assert si is not None and sv_el is not None
    cm, sm = si.find(ds("CanonicalizationMethod")), si.find(ds("SignatureMethod"))
    assert cm is not None and sm is not None
    data = canonicalize(si, cm.get("Algorithm") or "")
    sv_el.text = b64(signature_value(sm.get("Algorithm") or "", key, data))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
