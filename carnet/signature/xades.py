"""XAdES qualifying properties (ETSI TS 101 903): what binds the signer's certificate to a signature.

Two namespaces meet in practice. The DMP's senders write XAdES **1.1.1** (the ANS DRIMbox:
SigningTime, SigningCertificate with a SHA-1 CertDigest, SignaturePolicyImplied); IHE DSG wants
XAdES (1.3.2 today), with a CommitmentTypeIndication naming the purpose of the signature.
Carnet reads both and writes 1.3.2 unless asked for the DMP legacy form.

Only properties under a ``SignedProperties`` element that SignedInfo references are read, and only
after that reference verified: unsigned properties are claims anyone could have added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from carnet.signature import vocabulary as sv
from carnet.signature.xmldsig import XMLDSigError, b64, b64decode, digest, element
from carnet.xml import localname, qname


@dataclass
class CertDigest:
    algorithm: str
    value: bytes
    issuer: str | None = None
    serial: str | None = None


@dataclass
class SignedProperties:
    namespace: str
    signing_time: str | None = None
    certificates: list[CertDigest] = field(default_factory=list)
    purposes: list[str] = field(default_factory=list)

    @property
    def legacy(self) -> bool:
        return self.namespace == sv.XADES_111


def is_signed_properties(el: etree._Element) -> bool:
    return isinstance(el.tag, str) and el.tag in {qname(ns, "SignedProperties") for ns in sv.XADES_NAMESPACES}


def _child(el: etree._Element, local: str) -> etree._Element | None:
    # XAdES 1.1.1 declares CertDigest's DigestMethod/DigestValue in its own namespace, 1.3.2 takes
    # them from XMLDSig: read them by local name.
    for c in el:
        if isinstance(c.tag, str) and localname(c) == local:
            return c
    return None


def read_signed_properties(el: etree._Element) -> SignedProperties:
    ns = el.tag[1:].split("}", 1)[0]
    props = SignedProperties(ns)
    ssp = el.find(qname(ns, "SignedSignatureProperties"))
    if ssp is not None:
        props.signing_time = (ssp.findtext(qname(ns, "SigningTime")) or "").strip() or None
        for sc_name in ("SigningCertificate", "SigningCertificateV2"):
            for cert in ssp.iterfind(f"{qname(ns, sc_name)}/{qname(ns, 'Cert')}"):
                cd = cert.find(qname(ns, "CertDigest"))
                dm = _child(cd, "DigestMethod") if cd is not None else None
                dv = _child(cd, "DigestValue") if cd is not None else None
                if dm is None or dv is None:
                    raise XMLDSigError(f"a {sc_name}/Cert of SignedProperties has no CertDigest")
                issuer_serial = cert.find(qname(ns, "IssuerSerial"))
                props.certificates.append(
                    CertDigest(
                        dm.get("Algorithm") or "",
                        b64decode(dv.text, f"a {sc_name} CertDigest"),
                        issuer_serial.findtext(qname(sv.DS, "X509IssuerName"))
                        if issuer_serial is not None
                        else None,
                        issuer_serial.findtext(qname(sv.DS, "X509SerialNumber"))
                        if issuer_serial is not None
                        else None,
                    )
                )
    for cti in el.iterfind(
        f"{qname(ns, 'SignedDataObjectProperties')}/{qname(ns, 'CommitmentTypeIndication')}"
    ):
        ident = (cti.findtext(f"{qname(ns, 'CommitmentTypeId')}/{qname(ns, 'Identifier')}") or "").strip()
        if ident:
            props.purposes.append(ident.removeprefix("urn:oid:"))
    return props


def names_certificate(props: SignedProperties, cert: x509.Certificate) -> bool:
    """Whether SigningCertificate names ``cert`` (by the digest of its DER encoding)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return any(digest(cd.algorithm, der) == cd.value for cd in props.certificates)


def build_qualifying_properties(
    parent: etree._Element,
    *,
    namespace: str,
    target: str,
    properties_id: str,
    certificate: x509.Certificate,
    signing_time: datetime,
    digest_method: str,
    purpose: str | None,
) -> etree._Element:
    """Append ds:Object/QualifyingProperties to ``parent``; return the SignedProperties element.

    1.1.1 reproduces the DMP form (SignaturePolicyImplied, no commitment type: the DMP carries the
    purpose in an unsigned ds:SignatureProperty); 1.3.2 adds DSG's CommitmentTypeIndication.
    """
    obj = element(sv.DS, "Object", parent)
    qp = element(namespace, "QualifyingProperties", obj, nsmap={"xades": namespace}, Target=f"#{target}")
    sp = element(namespace, "SignedProperties", qp, Id=properties_id)
    ssp = element(namespace, "SignedSignatureProperties", sp)
    element(namespace, "SigningTime", ssp, signing_time.isoformat(timespec="seconds").replace("+00:00", "Z"))
    cert_el = element(namespace, "Cert", element(namespace, "SigningCertificate", ssp))
    cd = element(namespace, "CertDigest", cert_el)
    digest_ns = namespace if namespace == sv.XADES_111 else sv.DS
    element(digest_ns, "DigestMethod", cd, Algorithm=digest_method)
    element(
        digest_ns,
        "DigestValue",
        cd,
        b64(digest(digest_method, certificate.public_bytes(serialization.Encoding.DER))),
    )
    issuer_serial = element(namespace, "IssuerSerial", cert_el)
    element(sv.DS, "X509IssuerName", issuer_serial, certificate.issuer.rfc4514_string())
    element(sv.DS, "X509SerialNumber", issuer_serial, str(certificate.serial_number))
    element(namespace, "SignaturePolicyImplied", element(namespace, "SignaturePolicyIdentifier", ssp))
    sdop = element(namespace, "SignedDataObjectProperties", sp)
    if purpose and namespace != sv.XADES_111:
        cti = element(namespace, "CommitmentTypeIndication", sdop)
        element(namespace, "Identifier", element(namespace, "CommitmentTypeId", cti), f"urn:oid:{purpose}")
        element(namespace, "AllSignedDataObjects", cti)
    return sp
