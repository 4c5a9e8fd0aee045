"""IHE XUA (ITI-40) with the DMP VIHF: the SAML 2.0 assertion in the WS-Security header.

``verify`` is what the X-Service Provider does with a request's ``wsse:Security`` header: exactly
one assertion, signed by its own enveloped signature over its own ID, verified by signxml against
the configured trust store only (never signxml's default certifi bundle), claims read only from
what the signature covers, issuer equal to the signing certificate, inside its validity window,
with the attributes the DMP requires. Any failure is a ``TokenError`` the SOAP layer turns into a
Fault. ``issue`` builds and signs such an assertion (``carnet token issue``).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml import InvalidInput, SignatureConfiguration, XMLSigner, XMLVerifier, methods
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidSignature

from carnet.security import vihf
from carnet.security.pki import Signer
from carnet.security.principal import Principal
from carnet.security.vihf import (
    HL7,
    INVALID_SECURITY_TOKEN,
    SAML,
    XSI,
    Claims,
    Code,
    TokenError,
)
from carnet.xml import qname

DS = "http://www.w3.org/2000/09/xmldsig#"
X509_SUBJECT_NAME = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
# Only SHA-2 RSA/ECDSA signatures: signxml's default list, minus anything keyed by a shared secret.
SIGNATURE_METHODS = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
    }
)
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Window:
    """How old an assertion may be and how much clock difference is forgiven."""

    max_age: timedelta = timedelta(hours=2)
    skew: timedelta = CLOCK_SKEW


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


# Extra checks on the signer's chain once signxml accepted it (revocation lists of the trust
# store: ``carnet.signature.trust.TrustStore.validate``); raises to refuse.
ChainCheck = Callable[[x509.Certificate, list[x509.Certificate]], object]


def verify(
    security: etree._Element,
    trust_store: Path,
    window: Window,
    now: datetime | None = None,
    check_chain: ChainCheck | None = None,
    replay: Callable[[Claims], None] | None = None,
) -> Principal:
    """The principal the assertion in ``security`` (a wsse:Security element) speaks for, carrying the
    assertion as received (``Principal.credential``) for forwarding. ``replay`` sees the claims of
    every assertion that passed the other checks, and raises TokenError to refuse a replayed one."""
    claims = read_claims(verified_assertion(security, trust_store, check_chain), window, now)
    principal = claims.principal()
    if replay is not None:
        replay(claims)
    # verified_assertion checked the signature over exactly these bytes.
    received = etree.tostring(next(security.iter(qname(SAML, "Assertion"))), encoding="unicode")
    return replace(principal, credential=received)


def verified_assertion(
    security: etree._Element, trust_store: Path, check_chain: ChainCheck | None = None
) -> etree._Element:
    """Check the signature and return the signed assertion (never the received, unsigned tree)."""
    assertions = list(security.iter(qname(SAML, "Assertion")))
    if not assertions:
        raise TokenError("wsse:Security holds no SAML 2.0 assertion", INVALID_SECURITY_TOKEN)
    if len(assertions) > 1:
        # Several assertions are how signature-wrapping attacks smuggle unsigned claims in.
        raise TokenError(f"wsse:Security holds {len(assertions)} SAML assertions; exactly one is accepted")
    assertion = assertions[0]
    if assertion.getparent() is not security:
        raise TokenError("the SAML assertion must be a direct child of wsse:Security", INVALID_SECURITY_TOKEN)
    assertion_id = assertion.get("ID")
    if not assertion_id:
        raise TokenError("the SAML assertion has no ID", INVALID_SECURITY_TOKEN)
    signatures = assertion.findall(qname(DS, "Signature"))
    if len(signatures) != 1:
        raise TokenError("the SAML assertion must carry exactly one enveloped ds:Signature")
    uris = [r.get("URI") for r in signatures[0].iter(qname(DS, "Reference"))]
    if uris != [f"#{assertion_id}"]:
        raise TokenError(
            f"the assertion signature must reference the assertion itself (#{assertion_id}), not {uris}"
        )
    try:
        result = XMLVerifier().verify(
            etree.tostring(assertion),
            ca_pem_file=str(trust_store),
            expect_config=SignatureConfiguration(
                require_x509=True, expect_references=1, signature_methods=SIGNATURE_METHODS
            ),
        )
    except (InvalidSignature, InvalidDigest, InvalidCertificate, InvalidInput) as exc:
        raise TokenError(f"the assertion signature does not verify against the trust store: {exc}") from exc
    # One reference expected, so one result; the isinstance narrows signxml's union type.
    assert not isinstance(result, list)
    signed = result.signed_xml
    if signed is None or signed.tag != qname(SAML, "Assertion") or signed.get("ID") != assertion_id:
        raise TokenError("the signature does not cover the assertion")
    leaf, others = _signing_certificate(result.signature_xml, result.signature_key)
    if check_chain is not None:
        try:
            check_chain(leaf, others)
        except Exception as exc:  # the checker's own error type names the certificate at fault
            raise TokenError(f"the assertion's signing certificate is refused: {exc}") from exc
    _check_issuer(signed, leaf)
    return signed


def _signing_certificate(
    signature: etree._Element, key_pem: bytes
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    certs = [
        x509.load_der_x509_certificate(_b64(el.text or ""))
        for el in signature.iter(qname(DS, "X509Certificate"))
    ]
    for cert in certs:
        pem = cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if pem == key_pem:
            return cert, [c for c in certs if c is not cert]
    # signxml verified with a certificate from X509Data (require_x509), so this cannot happen.
    raise TokenError("the signing certificate is not in the signature's KeyInfo")


def _check_issuer(assertion: etree._Element, cert: x509.Certificate) -> None:
    issuer = assertion.find(qname(SAML, "Issuer"))
    if issuer is None or not (issuer.text or "").strip():
        raise TokenError("the assertion has no Issuer", INVALID_SECURITY_TOKEN)
    if issuer.get("Format") == X509_SUBJECT_NAME and _dn(issuer.text or "") != _dn(
        cert.subject.rfc4514_string()
    ):
        raise TokenError(
            f"Issuer '{issuer.text}' is not the subject of the signing certificate "
            f"('{cert.subject.rfc4514_string()}')"
        )


def _b64(text: str) -> bytes:
    return base64.b64decode("".join(text.split()))


def _dn(name: str) -> frozenset[str]:
    """A DN as a set of TYPE=value pairs: Java writes RFC 2253 order, others the reverse."""
    parts: list[str] = []
    current = ""
    escaped = False
    for ch in name:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            current += ch
            escaped = True
        elif ch in ",;":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    out = set()
    for part in parts:
        key, _, value = part.strip().partition("=")
        out.add(f"{key.strip().upper()}={value.strip()}")
    return frozenset(out)


def _time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TokenError(f"{what} '{value}' is not an xs:dateTime", INVALID_SECURITY_TOKEN) from exc
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def read_claims(assertion: etree._Element, window: Window, now: datetime | None = None) -> Claims:
    """The VIHF claims of a verified assertion, after the validity-window checks."""
    now = now or datetime.now(UTC)
    issued = _time(assertion.get("IssueInstant"), "IssueInstant")
    if issued is None:
        raise TokenError("the assertion has no IssueInstant", INVALID_SECURITY_TOKEN)
    if issued > now + window.skew:
        raise TokenError(f"the assertion was issued in the future ({assertion.get('IssueInstant')})")
    conditions = assertion.find(qname(SAML, "Conditions"))
    not_before = _time(conditions.get("NotBefore"), "NotBefore") if conditions is not None else None
    not_after = _time(conditions.get("NotOnOrAfter"), "NotOnOrAfter") if conditions is not None else None
    if not_before is not None and not_before > now + window.skew:
        raise TokenError(f"the assertion is not valid before {_iso(not_before)}")
    if not_after is not None and not_after <= now - window.skew:
        raise TokenError(f"the assertion expired at {_iso(not_after)}")
    # The DMP leaves Conditions empty, so the age of the assertion is bounded here.
    # The last moment this assertion is acceptable: what a replay cache must remember it for.
    expires_at = issued + window.max_age + window.skew
    if not_after is not None:
        expires_at = min(expires_at, not_after + window.skew)
    one_time_use = conditions is not None and conditions.find(qname(SAML, "OneTimeUse")) is not None
    if issued < now - window.max_age - window.skew:
        raise TokenError(
            f"the assertion was issued at {assertion.get('IssueInstant')}, more than "
            f"{int(window.max_age.total_seconds())} s ago"
        )
    name_id = assertion.find(f"{qname(SAML, 'Subject')}/{qname(SAML, 'NameID')}")
    if name_id is None or not (name_id.text or "").strip():
        raise TokenError("the assertion has no Subject/NameID", INVALID_SECURITY_TOKEN)
    attrs = _attributes(assertion)

    def one(name: str) -> str | None:
        values = [v for v in attrs.get(name, []) if isinstance(v, str)]
        return values[0] if values else None

    def codes(name: str) -> list[Code]:
        return [v for v in attrs.get(name, []) if isinstance(v, Code)]

    purposes = codes(vihf.PURPOSE_OF_USE)
    roles = codes(vihf.ROLE)
    kinds = [vihf.SUBJECT_KIND_CODES.get(r.code) for r in roles if r.system == vihf.SUBJECT_KIND_SYSTEM]
    if len(kinds) > 1 or None in kinds:
        raise TokenError(
            f"the assertion's {vihf.SUBJECT_KIND_SYSTEM} roles must be one of PATIENT, REPRESENTANT_LEGAL"
        )
    roles = [r for r in roles if r.system != vihf.SUBJECT_KIND_SYSTEM]
    issuer = assertion.find(qname(SAML, "Issuer"))
    extra = {
        k: v
        for k in (
            vihf.LPS_NOM,
            vihf.LPS_VERSION,
            vihf.LPS_ID,
            vihf.LPS_ID_HOMOLOGATION_DMP,
            vihf.RESSOURCE_URN,
        )
        if (v := one(k))
    }
    return Claims(
        subject=(name_id.text or "").strip(),
        subject_name=one(vihf.SUBJECT_ID),
        kind=kinds[0] if kinds and kinds[0] else "professional",
        roles=roles,
        purpose=purposes[0] if purposes else None,
        structure=one(vihf.IDENTIFIANT_STRUCTURE) or one(vihf.ORGANIZATION_ID),
        authentication_mode=one(vihf.AUTHENTIFICATION_MODE),
        version=one(vihf.VIHF_VERSION),
        sector=one(vihf.SECTEUR_ACTIVITE),
        patient=one(vihf.RESOURCE_ID),
        reason=one(vihf.MODE_ACCES_RAISON),
        token_id=assertion.get("ID"),
        issuer=(issuer.text or "").strip() if issuer is not None else None,
        extra=extra,
        one_time_use=one_time_use,
        expires_at=expires_at,
    )


def _attributes(assertion: etree._Element) -> dict[str, list[str | Code]]:
    out: dict[str, list[str | Code]] = {}
    for attr in assertion.iter(qname(SAML, "Attribute")):
        values: list[str | Code] = []
        for value in attr.findall(qname(SAML, "AttributeValue")):
            coded = [c for c in value if isinstance(c.tag, str)]
            if coded:
                el = coded[0]
                values.append(Code(el.get("code", ""), el.get("codeSystem", ""), el.get("displayName", "")))
            elif (value.text or "").strip():
                values.append((value.text or "").strip())
        out.setdefault(attr.get("Name", ""), []).extend(values)
    return out


# ---------------------------------------------------------------------------------------------
# Issuing (the test authority's side)
# ---------------------------------------------------------------------------------------------


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue(signer: Signer, claims: Claims, validity: timedelta, now: datetime | None = None) -> bytes:
    """A signed VIHF assertion (exclusive c14n, RSA/ECDSA-SHA256) ready for a wsse:Security header."""
    now = now or datetime.now(UTC)
    assertion_id = claims.token_id or f"_{uuid.uuid4().hex}"
    nsmap = {"saml2": SAML, "xsi": XSI}
    a = etree.Element(
        qname(SAML, "Assertion"), nsmap=nsmap, ID=assertion_id, IssueInstant=_iso(now), Version="2.0"
    )
    issuer = etree.SubElement(a, qname(SAML, "Issuer"), Format=X509_SUBJECT_NAME)
    issuer.text = signer.subject
    # signxml puts the enveloped signature where this placeholder is: after Issuer, as SAML requires.
    etree.SubElement(a, qname(DS, "Signature"), {"Id": "placeholder"}, nsmap={"ds": DS})
    subject = etree.SubElement(a, qname(SAML, "Subject"))
    name_id = etree.SubElement(subject, qname(SAML, "NameID"))
    name_id.text = claims.subject
    etree.SubElement(subject, qname(SAML, "SubjectConfirmation"), Method=BEARER)
    conditions = etree.SubElement(
        a, qname(SAML, "Conditions"), NotBefore=_iso(now), NotOnOrAfter=_iso(now + validity)
    )
    if claims.one_time_use:
        etree.SubElement(conditions, qname(SAML, "OneTimeUse"))
    authn = etree.SubElement(a, qname(SAML, "AuthnStatement"), AuthnInstant=_iso(now))
    ctx = etree.SubElement(
        etree.SubElement(authn, qname(SAML, "AuthnContext")), qname(SAML, "AuthnContextClassRef")
    )
    ctx.text = "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient"
    statement = etree.SubElement(a, qname(SAML, "AttributeStatement"))

    def text(name: str, value: str | None) -> None:
        if value:
            attr = etree.SubElement(statement, qname(SAML, "Attribute"), Name=name)
            etree.SubElement(attr, qname(SAML, "AttributeValue")).text = value

    def coded(name: str, element: str, values: Iterable[Code], system_name: str) -> None:
        attr = etree.SubElement(statement, qname(SAML, "Attribute"), Name=name)
        for c in values:
            holder = etree.SubElement(attr, qname(SAML, "AttributeValue"))
            el = etree.SubElement(holder, qname(HL7, element), nsmap={None: HL7})
            el.set(qname(XSI, "type"), "CE")
            el.set("code", c.code)
            el.set("codeSystem", c.system)
            el.set("codeSystemName", system_name)
            el.set("displayName", c.display or c.code)

    text(vihf.VIHF_VERSION, claims.version)
    text(vihf.SUBJECT_ID, claims.subject_name)
    text(vihf.IDENTIFIANT_STRUCTURE, claims.structure)
    text(vihf.SECTEUR_ACTIVITE, claims.sector)
    text(vihf.AUTHENTIFICATION_MODE, claims.authentication_mode)
    text(vihf.RESSOURCE_URN, "urn:dmp")
    text(vihf.RESOURCE_ID, claims.patient)
    text(vihf.MODE_ACCES_RAISON, claims.reason)
    for key, value in claims.extra.items():
        text(key, value)
    kind_codes = {k: c for c, k in vihf.SUBJECT_KIND_CODES.items()}
    roles = list(claims.roles)
    if claims.kind in kind_codes:
        roles.insert(0, Code(kind_codes[claims.kind], vihf.SUBJECT_KIND_SYSTEM, claims.kind))
    if roles:
        coded(vihf.ROLE, "Role", roles, "JDV_J65 SubjectRole-DMP")
    if claims.purpose:
        coded(vihf.PURPOSE_OF_USE, "PurposeOfUse", [claims.purpose], "mode acces VIHF 2.0")
    signed = XMLSigner(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256
        if isinstance(signer.key, rsa.RSAPrivateKey)
        else SignatureMethod.ECDSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        # Exclusive c14n: the assertion is moved into another document (the SOAP envelope).
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    ).sign(a, key=signer.key, cert=signer.chain, reference_uri=assertion_id)
    return etree.tostring(signed)


def security_header(assertion: bytes) -> str:
    """A wsse:Security header carrying ``assertion`` (for tests and the conformance client)."""
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    return f'<wsse:Security xmlns:wsse="{wsse}">{assertion.decode()}</wsse:Security>'
