"""Signature documents without a server: trust store and chains, each form signed and verified,
and every way a signature must fail (each failure naming the reference or certificate at fault)."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier, methods
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.xades import XAdESSigner

from carnet.signature import vocabulary as sv
from carnet.signature.dsg import Signer, SignerError, content_of, sign_detached, sign_submission_set
from carnet.signature.trust import CertificateError, TrustStore, TrustStoreError
from carnet.signature.verify import SignatureError, verify
from carnet.signature.xades import build_qualifying_properties
from carnet.signature.xmldsig import add_reference, canonicalize, element, fill_digest, finish
from tests.signing import NOW, PKI, build_pki, crl_of, pem

SS = "1.2.250.1.999.7.1"
DOCS = {
    "1.2.250.1.999.7.2": b"<ClinicalDocument xmlns='urn:hl7-org:v3'><title>CR</title></ClinicalDocument>\n",
    "1.2.250.1.999.7.3": bytes(range(256)) * 8,
}


@pytest.fixture(scope="module")
def pki() -> PKI:
    return build_pki()


def contents(docs: dict[str, bytes] = DOCS) -> dict[str, object]:
    return {uid: content_of(uid, data) for uid, data in docs.items()}


def tampered(xml: bytes, old: bytes, new: bytes) -> bytes:
    assert old in xml, old
    return xml.replace(old, new, 1)


# --- trust store and chains ----------------------------------------------------------------


def test_chain_from_leaf_through_intermediate_to_root(pki: PKI) -> None:
    chain = pki.trust().validate(pki.doctor.cert, pki.doctor.chain)
    assert [c.subject for c in chain] == [
        pki.doctor.cert.subject,
        pki.intermediate.cert.subject,
        pki.root.cert.subject,
    ]


@pytest.mark.parametrize(
    "who,intermediates,reason",
    [
        ("expired", None, r"'CN=Dr Expired,O=Hopital Test,C=FR' \(serial [0-9A-F]+, .*\) expired on"),
        ("revoked", None, r"'CN=Dr Revoked,.*' .* is revoked since"),
        ("stranger", None, r"'CN=Dr Stranger,.*' .* does not chain to a trust anchor"),
        ("doctor", [], r"'CN=Dr Alice MEDECIN,.*' .* does not chain to a trust anchor"),
    ],
)
def test_unacceptable_certificates_are_named(
    pki: PKI, who: str, intermediates: list | None, reason: str
) -> None:
    issued = getattr(pki, who)
    with pytest.raises(CertificateError, match=reason):
        pki.trust().validate(issued.cert, issued.chain if intermediates is None else intermediates)


def test_revocation_is_configuration_the_same_cert_passes_without_the_crl(pki: PKI) -> None:
    pki.trust(with_crl=False).validate(pki.revoked.cert, pki.revoked.chain)


def test_a_crl_that_does_not_verify_or_has_expired_fails_closed(pki: PKI) -> None:
    forged = crl_of(pki.intermediate, [], signing_key=pki.other_root.key)
    store = TrustStore.from_pem(pem(pki.root.cert, forged))
    with pytest.raises(CertificateError, match="does not verify with that issuer's key"):
        store.validate(pki.doctor.cert, pki.doctor.chain)
    stale = crl_of(pki.intermediate, [], next_update=NOW - timedelta(days=1))
    with pytest.raises(CertificateError, match="expired on"):
        TrustStore.from_pem(pem(pki.root.cert, stale)).validate(pki.doctor.cert, pki.doctor.chain)


def test_a_ca_certificate_is_not_a_signer(pki: PKI) -> None:
    with pytest.raises(CertificateError, match="does not chain"):
        pki.trust().validate(pki.intermediate.cert, [])


def test_trust_store_contents_are_checked(pki: PKI, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrustStoreError, match="no CERTIFICATE"):
        TrustStore.from_pem(pem(pki.crl), "crl-only.pem")
    with pytest.raises(TrustStoreError, match="'PRIVATE KEY' block"):
        TrustStore.from_pem(pem(pki.root.cert) + pki.doctor.pem_key(), "leaky.pem")
    with pytest.raises(TrustStoreError, match="cannot be read"):
        TrustStore.load(tmp_path / "absent.pem")


def test_signer_key_must_match_its_certificate(pki: PKI) -> None:
    cert, _ = pki.files(pki.doctor, "doctor")
    _, other_key = pki.files(pki.seal, "seal")
    with pytest.raises(SignerError, match="does not belong to the first certificate"):
        Signer.load(cert, other_key)


# --- each form, signed by Carnet and verified ---------------------------------------------


@pytest.mark.parametrize("legacy", [False, True])
def test_submission_set_signature_roundtrip(pki: PKI, legacy: bool) -> None:
    sig = sign_submission_set(SS, contents(), pki.doctor.signer, legacy=legacy)
    result = verify(sig, contents(), pki.trust(), submission_set=SS)
    assert result.form == sv.FORM_SUBMISSION_SET and result.submission_set == SS
    assert result.covered == list(DOCS) and result.legacy is legacy
    assert result.signer == pki.doctor.cert and len(result.chain) == 3
    assert result.signing_time and result.signing_time.startswith(str(NOW.year))
    root = etree.fromstring(sig)
    if legacy:  # the DMP's form, as the ANS DRIMbox writes it
        assert root.find(f".//{{{sv.XADES_111}}}SignedProperties") is not None
        assert root.find(f"{{{sv.DS}}}SignedInfo/{{{sv.DS}}}SignatureMethod").get("Algorithm") == sv.RSA_SHA1
        assert result.purposes == []
    else:
        assert root.find(f"{{{sv.DS}}}SignedInfo/{{{sv.DS}}}CanonicalizationMethod").get("Algorithm") == (
            sv.C14N_11_COMMENTS
        )
        assert result.purposes == [sv.PURPOSE_SOURCE]
    manifest = root.find(f".//{{{sv.DS}}}Manifest")
    assert [r.get("URI") for r in manifest] == [f"urn:oid:{SS}", *(f"urn:oid:{u}" for u in DOCS)]


def test_detached_signature_with_an_ec_key(pki: PKI) -> None:
    sig = sign_detached(contents(), pki.doctor_ec.signer)
    assert sv.ECDSA_SHA256.encode() in sig
    result = verify(sig, contents(), pki.trust())
    assert (result.form, result.covered, result.purposes) == (
        sv.FORM_DETACHED,
        list(DOCS),
        [sv.PURPOSE_AUTHOR],
    )


def test_detached_signature_verifies_with_signxml_too(pki: PKI) -> None:
    """A second implementation agrees with Carnet's signing (xmlsec1 is in test_signature_interop)."""
    sig = sign_detached(contents(), pki.doctor.signer)
    results = XMLVerifier().verify(
        sig,
        x509_cert=pki.doctor.cert,
        uri_resolver=lambda uri: DOCS[uri.removeprefix("urn:oid:")],
        expect_config=SignatureConfiguration(location="./", expect_references=3),
    )
    assert [r.signed_data for r in results[:2]] == list(DOCS.values())


def test_enveloping_xades_from_signxml_is_verified(pki: PKI) -> None:
    """A signature produced by another library (signxml's XAdES signer), enveloping (inline XML)."""
    document = etree.fromstring(DOCS["1.2.250.1.999.7.2"])
    signed = XAdESSigner(
        method=methods.enveloping,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1_WITH_COMMENTS,
    ).sign(document, key=pki.doctor.key, cert=[pki.doctor.cert, *pki.doctor.chain])
    result = verify(etree.tostring(signed), {}, pki.trust())
    assert result.form == sv.FORM_ENVELOPING and result.covered == [] and result.signer == pki.doctor.cert


# --- failures --------------------------------------------------------------------------------


def test_tampered_document_names_its_reference(pki: PKI) -> None:
    sig = sign_submission_set(SS, contents(), pki.doctor.signer)
    altered = dict(DOCS, **{"1.2.250.1.999.7.3": DOCS["1.2.250.1.999.7.3"][:-1] + b"!"})
    with pytest.raises(
        SignatureError, match=r"manifest reference 'urn:oid:1\.2\.250\.1\.999\.7\.3'.*altered"
    ):
        verify(sig, contents(altered), pki.trust(), submission_set=SS)


def test_tampered_manifest_fails_the_manifest_reference(pki: PKI) -> None:
    sig = sign_submission_set(SS, contents(), pki.doctor.signer)
    # A sender "fixing" the manifest after signing: the manifest's own digest no longer matches.
    digest = re.search(rb'URI="urn:oid:1\.2\.250\.1\.999\.7\.3">.*?<ds:DigestValue>([^<]+)<', sig).group(1)  # type: ignore[union-attr]
    forged = base64.b64encode(b"\x00" * 32)
    with pytest.raises(SignatureError, match="the digest of reference '#IHEManifest' does not match"):
        verify(tampered(sig, digest, forged), contents(), pki.trust(), submission_set=SS)


def test_tampered_signed_properties_and_signature_value(pki: PKI) -> None:
    sig = sign_submission_set(SS, contents(), pki.doctor.signer)
    year = str(NOW.year).encode()
    with pytest.raises(SignatureError, match=r"reference '#S-[0-9a-f]+-SignedProperties' does not match"):
        verify(
            tampered(sig, b"<xades:SigningTime>" + year, b"<xades:SigningTime>1999"),
            contents(),
            pki.trust(),
            submission_set=SS,
        )
    value = re.search(rb"<ds:SignatureValue>([^<]{8})", sig).group(1)  # type: ignore[union-attr]
    with pytest.raises(SignatureError, match=r"SignatureValue does not verify .*Dr Alice MEDECIN"):
        verify(tampered(sig, value, value[::-1]), contents(), pki.trust(), submission_set=SS)


@pytest.mark.parametrize(
    "who,reason",
    [
        ("expired", "expired on"),
        ("revoked", "is revoked"),
        ("stranger", "does not chain to a trust anchor"),
    ],
)
def test_signer_certificate_failures(pki: PKI, who: str, reason: str) -> None:
    sig = sign_submission_set(SS, contents(), getattr(pki, who).signer)
    with pytest.raises(SignatureError, match=f"signer: certificate .*{reason}"):
        verify(sig, contents(), pki.trust(), submission_set=SS)


def test_expired_certificate_verifies_at_a_time_it_was_valid(pki: PKI) -> None:
    sig = sign_submission_set(SS, contents(), pki.expired.signer)
    verify(sig, contents(), pki.trust(), submission_set=SS, at=NOW - timedelta(days=500))


def test_references_to_unknown_documents_and_the_submission_set(pki: PKI) -> None:
    sig = sign_submission_set(SS, contents(), pki.doctor.signer)
    partial = {u: c for u, c in contents().items() if u != "1.2.250.1.999.7.3"}
    with pytest.raises(SignatureError, match=r"'urn:oid:1\.2\.250\.1\.999\.7\.3' names no document"):
        verify(sig, partial, pki.trust(), submission_set=SS)
    with pytest.raises(SignatureError, match=f"'urn:oid:{SS}' names no document"):
        verify(sig, contents(), pki.trust(), submission_set="1.2.3.4")
    detached_with_ss = sign_detached({SS: content_of(SS, b"x"), **contents()}, pki.doctor.signer)
    with pytest.raises(
        SignatureError, match="names the SubmissionSet in SignedInfo; it belongs in a ds:Manifest"
    ):
        verify(detached_with_ss, contents(), pki.trust(), submission_set=SS)


def _hand_made(
    pki: PKI, *, digest: str, reference_props: bool = True, props_cert: x509.Certificate | None = None
) -> bytes:
    """A detached signature assembled from the building blocks, to break one rule at a time."""
    root = element(sv.DS, "Signature", nsmap={"ds": sv.DS}, Id="S1")
    si = element(sv.DS, "SignedInfo", root)
    element(sv.DS, "CanonicalizationMethod", si, Algorithm=sv.C14N_10)
    element(sv.DS, "SignatureMethod", si, Algorithm=sv.RSA_SHA256)
    element(sv.DS, "SignatureValue", root)
    x509_data = element(sv.DS, "X509Data", element(sv.DS, "KeyInfo", root))
    for cert in (pki.doctor.cert, *pki.doctor.chain):
        element(
            sv.DS,
            "X509Certificate",
            x509_data,
            base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
        )
    for uid, data in DOCS.items():
        fill_digest(add_reference(si, f"urn:oid:{uid}", digest), data)
    props = build_qualifying_properties(
        root,
        namespace=sv.XADES_132,
        target="S1",
        properties_id="S1-SP",
        certificate=props_cert or pki.doctor.cert,
        signing_time=NOW,
        digest_method=sv.SHA256,
        purpose=sv.PURPOSE_AUTHOR,
    )
    if reference_props:
        fill_digest(add_reference(si, "#S1-SP", sv.SHA256, type_=sv.SIGNED_PROPERTIES_TYPE), props)
    return finish(root, pki.doctor.key)


def test_building_blocks_make_a_valid_signature(pki: PKI) -> None:
    assert verify(_hand_made(pki, digest=sv.SHA256), contents(), pki.trust()).covered == list(DOCS)


def test_sha1_only_in_the_legacy_form(pki: PKI) -> None:
    with pytest.raises(SignatureError, match="uses '.*#sha1': SHA-1 is accepted only in the DMP legacy form"):
        verify(_hand_made(pki, digest=sv.SHA1), contents(), pki.trust())


def test_xades_properties_must_be_signed_and_name_the_signer(pki: PKI) -> None:
    with pytest.raises(SignatureError, match="SignedProperties is not referenced by SignedInfo"):
        verify(_hand_made(pki, digest=sv.SHA256, reference_props=False), contents(), pki.trust())
    with pytest.raises(SignatureError, match="SigningCertificate does not name the signer's certificate"):
        verify(_hand_made(pki, digest=sv.SHA256, props_cert=pki.seal.cert), contents(), pki.trust())


def test_duplicate_ids_and_doctype_are_refused(pki: PKI) -> None:
    sig = sign_submission_set(SS, contents(), pki.doctor.signer)
    # A second element carrying the manifest's Id: a wrapping attempt must not pick either.
    wrapped = tampered(
        sig, b"</ds:Signature>", b'<ds:Object><ds:Manifest Id="IHEManifest"/></ds:Object></ds:Signature>'
    )
    with pytest.raises(SignatureError, match="'#IHEManifest' is ambiguous"):
        verify(wrapped, contents(), pki.trust(), submission_set=SS)
    with pytest.raises(SignatureError, match="DOCTYPE"):
        verify(
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]>' + sig.split(b"?>", 1)[1],
            contents(),
            pki.trust(),
            submission_set=SS,
        )
    with pytest.raises(SignatureError, match="root is .*ClinicalDocument, not ds:Signature"):
        verify(DOCS["1.2.250.1.999.7.2"], contents(), pki.trust())


def test_canonical_form_of_a_default_namespace_subtree() -> None:
    """libxml2 writes xmlns="" into such a subtree; the DMP's default-namespace form needs it right."""
    root = etree.fromstring(b'<S xmlns="urn:d" xmlns:u="urn:u" xml:lang="fr"><SI><R><D A="x"/></R></SI></S>')
    expected = b'<SI xmlns="urn:d" xmlns:u="urn:u" xml:lang="fr"><R><D A="x"></D></R></SI>'
    assert canonicalize(root[0], sv.C14N_10) == expected
    assert canonicalize(root[0], sv.EXC_C14N) == b'<SI xmlns="urn:d"><R><D A="x"></D></R></SI>'


def test_keyinfo_certificates_the_same_twice_or_two_signers(pki: PKI) -> None:
    sig = sign_detached(contents(), pki.doctor.signer)
    cert = re.search(rb"<ds:X509Certificate>[^<]+</ds:X509Certificate>", sig).group(0)  # type: ignore[union-attr]
    assert verify(sig.replace(cert, cert + cert, 1), contents(), pki.trust()).signer == pki.doctor.cert
    other = base64.b64encode(pki.seal.cert.public_bytes(serialization.Encoding.DER))
    two = sig.replace(cert, cert + b"<ds:X509Certificate>" + other + b"</ds:X509Certificate>", 1)
    with pytest.raises(SignatureError, match="do not form one chain: cannot tell which one signed"):
        verify(two, contents(), pki.trust())


def test_keyinfo_without_certificate(pki: PKI) -> None:
    sig = sign_detached(contents(), pki.doctor.signer)
    stripped = re.sub(rb"<ds:KeyInfo>.*</ds:KeyInfo>", b"<ds:KeyInfo/>", sig)
    with pytest.raises(SignatureError, match="KeyInfo carries no X509Certificate"):
        verify(stripped, contents(), pki.trust())
