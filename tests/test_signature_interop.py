"""Interoperability with an independent XML Signature implementation: xmlsec1 (Debian's, on OpenSSL).

Carnet's signatures must verify with xmlsec1 (SignedInfo references, and the manifest references
it can resolve through --url-map; the SubmissionSet reference's zero digest is by design the one
it cannot), and signatures xmlsec1 produces from templates must verify with Carnet and fail
with Carnet when a document is altered.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from carnet.signature import vocabulary as sv
from carnet.signature.dsg import content_of, sign_detached, sign_submission_set
from carnet.signature.verify import SignatureError, verify
from tests.signing import PKI, build_pki

pytestmark = pytest.mark.skipif(
    shutil.which("xmlsec1") is None,
    reason="xmlsec1 is not installed (apt-get install xmlsec1; .ci/run installs it)",
)

SS = "1.2.250.1.999.8.1"
DOCS = {
    "1.2.250.1.999.8.2": b"<ClinicalDocument xmlns='urn:hl7-org:v3'><!-- c --><title>CR</title>"
    b"</ClinicalDocument>",
    "1.2.250.1.999.8.3": b"%PDF-1.4 pretend\n" * 500,
}
ID_ATTRS = [f"--id-attr:Id {ns}:SignedProperties" for ns in (sv.XADES_111, sv.XADES_132)]


@pytest.fixture(scope="module")
def pki() -> PKI:
    return build_pki()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {uid: tmp_path / f"{uid}.bin" for uid in DOCS}
    for uid, path in out.items():
        path.write_bytes(DOCS[uid])
    out[SS] = tmp_path / "submission-set.bin"
    out[SS].write_bytes(b"")  # the SubmissionSet has no bytes: its reference carries "AA=="
    return out


def url_maps(files: dict[str, Path]) -> list[str]:
    return [arg for uid, path in files.items() for arg in (f"--url-map:urn:oid:{uid}", str(path))]


def xmlsec1(*args: str) -> subprocess.CompletedProcess[str]:
    split = [part for arg in args for part in (arg.split(" ", 1) if arg.startswith("--id-attr") else [arg])]
    return subprocess.run(["xmlsec1", *split], capture_output=True, text=True, timeout=60)


def contents() -> dict[str, object]:
    return {uid: content_of(uid, data) for uid, data in DOCS.items()}


# --- Carnet signs, xmlsec1 verifies ----------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True])
def test_xmlsec1_verifies_carnet_submission_set_signatures(
    pki: PKI, files, tmp_path: Path, legacy: bool
) -> None:  # type: ignore[no-untyped-def]
    sig = tmp_path / "sig.xml"
    sig.write_bytes(sign_submission_set(SS, contents(), pki.doctor.signer, legacy=legacy))
    res = xmlsec1(
        "--verify",
        "--trusted-pem",
        str(pki.directory / "trust-no-crl.pem"),
        *ID_ATTRS,
        *url_maps(files),
        str(sig),
    )
    assert res.returncode == 0, res.stderr
    assert "SignedInfo References (ok/all): 2/2" in res.stderr
    # Every document reference verifies; the SubmissionSet's zero digest is the one that cannot.
    assert "Manifests References (ok/all): 2/3" in res.stderr

    files["1.2.250.1.999.8.3"].write_bytes(DOCS["1.2.250.1.999.8.3"] + b"tampered")
    res = xmlsec1(
        "--verify",
        "--trusted-pem",
        str(pki.directory / "trust-no-crl.pem"),
        *ID_ATTRS,
        *url_maps(files),
        str(sig),
    )
    assert "Manifests References (ok/all): 1/3" in res.stderr


def test_xmlsec1_verifies_carnet_detached_signature(pki: PKI, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sig = tmp_path / "sig.xml"
    sig.write_bytes(sign_detached(contents(), pki.doctor.signer))
    trusted = str(pki.directory / "trust-no-crl.pem")
    res = xmlsec1("--verify", "--trusted-pem", trusted, *ID_ATTRS, *url_maps(files), str(sig))
    assert res.returncode == 0 and "SignedInfo References (ok/all): 3/3" in res.stderr, res.stderr
    # The chain matters to xmlsec1 too: anchored elsewhere, the same signature fails.
    other = tmp_path / "other-root.pem"
    other.write_bytes(pki.other_root.cert.public_bytes(serialization.Encoding.PEM))
    res = xmlsec1("--verify", "--trusted-pem", str(other), *ID_ATTRS, *url_maps(files), str(sig))
    assert res.returncode != 0


# --- xmlsec1 signs templates, Carnet verifies ------------------------------------------------

C14N11, SHA256 = sv.C14N_11, sv.SHA256


def _qualifying_properties(pki: PKI, sig_id: str) -> str:
    der = pki.doctor.cert.public_bytes(serialization.Encoding.DER)
    cert_digest = base64.b64encode(hashlib.sha256(der).digest()).decode()
    return (
        f'<ds:Object><xades:QualifyingProperties xmlns:xades="{sv.XADES_132}" Target="#{sig_id}">'
        f'<xades:SignedProperties Id="{sig_id}-SP"><xades:SignedSignatureProperties>'
        f"<xades:SigningTime>2026-11-22T10:00:00Z</xades:SigningTime><xades:SigningCertificate><xades:Cert>"
        f'<xades:CertDigest><ds:DigestMethod Algorithm="{SHA256}"/>'
        f"<ds:DigestValue>{cert_digest}</ds:DigestValue>"
        f"</xades:CertDigest></xades:Cert></xades:SigningCertificate></xades:SignedSignatureProperties>"
        f"<xades:SignedDataObjectProperties><xades:CommitmentTypeIndication><xades:CommitmentTypeId>"
        f"<xades:Identifier>urn:oid:{sv.PURPOSE_AUTHOR}</xades:Identifier></xades:CommitmentTypeId>"
        f"<xades:AllSignedDataObjects/></xades:CommitmentTypeIndication></xades:SignedDataObjectProperties>"
        f"</xades:SignedProperties></xades:QualifyingProperties></ds:Object>"
    )


def _reference(uri: str, *, type_: str = "", transforms: tuple[str, ...] = (), digest: str = "") -> str:
    t = f' Type="{type_}"' if type_ else ""
    ts = (
        "<ds:Transforms>"
        + "".join(f'<ds:Transform Algorithm="{a}"/>' for a in transforms)
        + "</ds:Transforms>"
        if transforms
        else ""
    )
    return (
        f'<ds:Reference URI="{uri}"{t}>{ts}<ds:DigestMethod Algorithm="{SHA256}"/>'
        f"<ds:DigestValue>{digest}</ds:DigestValue></ds:Reference>"
    )


def _template(pki: PKI, sig_id: str, references: str, objects: str) -> str:
    return (
        f'<ds:Signature xmlns:ds="{sv.DS}" Id="{sig_id}"><ds:SignedInfo>'
        f'<ds:CanonicalizationMethod Algorithm="{sv.C14N_11_COMMENTS}"/>'
        f'<ds:SignatureMethod Algorithm="{sv.RSA_SHA256}"/>{references}'
        f"{_reference(f'#{sig_id}-SP', type_=sv.SIGNED_PROPERTIES_TYPE, transforms=(C14N11,))}"
        f"</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo>{objects}"
        f"{_qualifying_properties(pki, sig_id)}</ds:Signature>"
    )


def _xmlsec1_sign(pki: PKI, template: str, files: dict[str, Path], tmp_path: Path) -> bytes:
    _, key = pki.files(pki.doctor, "xmlsec-doctor")
    # xmlsec1 reads one certificate per file: the signer's, then the intermediate's.
    certs = []
    for i, cert in enumerate((pki.doctor.cert, *pki.doctor.chain)):
        certs.append(tmp_path / f"cert{i}.pem")
        certs[-1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "template.xml").write_text(template)
    out = tmp_path / "signed.xml"
    res = xmlsec1(
        "--sign",
        "--privkey-pem",
        ",".join(map(str, (key, *certs))),
        *ID_ATTRS,
        *url_maps(files),
        "--output",
        str(out),
        str(tmp_path / "template.xml"),
    )
    assert res.returncode == 0, res.stderr
    return out.read_bytes()


def test_carnet_verifies_an_xmlsec1_submission_set_signature(pki: PKI, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    manifest = (
        '<ds:Object><ds:Manifest Id="IHEManifest">'
        + _reference(f"urn:oid:{SS}", digest="AA==")
        + "".join(_reference(f"urn:oid:{uid}") for uid in DOCS)
        + "</ds:Manifest></ds:Object>"
    )
    refs = _reference("#IHEManifest", type_=sv.MANIFEST_TYPE, transforms=(C14N11,))
    signed = _xmlsec1_sign(pki, _template(pki, "X1", refs, manifest), files, tmp_path)
    result = verify(signed, contents(), pki.trust(), submission_set=SS)
    assert (result.form, result.covered, result.purposes) == (
        sv.FORM_SUBMISSION_SET,
        list(DOCS),
        [sv.PURPOSE_AUTHOR],
    )
    assert result.signer == pki.doctor.cert

    altered = {
        **contents(),
        "1.2.250.1.999.8.2": content_of("1.2.250.1.999.8.2", DOCS["1.2.250.1.999.8.2"] + b" "),
    }
    with pytest.raises(SignatureError, match=r"manifest reference 'urn:oid:1\.2\.250\.1\.999\.8\.2'"):
        verify(signed, altered, pki.trust(), submission_set=SS)


def test_carnet_verifies_an_xmlsec1_detached_signature(pki: PKI, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    refs = "".join(_reference(f"urn:oid:{uid}") for uid in DOCS)
    signed = _xmlsec1_sign(pki, _template(pki, "X2", refs, ""), files, tmp_path)
    assert verify(signed, contents(), pki.trust()).covered == list(DOCS)
    # Reordering the signed bytes' whitespace is harmless to a verifier only if it is outside
    # what was signed; inside SignedInfo it breaks the signature, which is why blobs stay byte-exact.
    reformatted = re.sub(rb"(<ds:Reference )", rb"\n\1", signed, count=1)
    with pytest.raises(SignatureError, match="SignatureValue does not verify"):
        verify(reformatted, contents(), pki.trust())


def test_carnet_verifies_an_xmlsec1_enveloping_base64_signature(pki: PKI, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """DSG §5.5.4: the document base64 in ds:Object, Encoding xmldsig#base64."""
    document = DOCS["1.2.250.1.999.8.2"]
    obj = (
        f'<ds:Object Id="doc" MimeType="text/xml" Encoding="{sv.BASE64_TRANSFORM}">'
        f"{base64.b64encode(document).decode()}</ds:Object>"
    )
    refs = _reference("#doc", transforms=(sv.BASE64_TRANSFORM,))
    signed = _xmlsec1_sign(pki, _template(pki, "X3", refs, obj), files, tmp_path)
    result = verify(signed, {}, pki.trust())
    assert result.form == sv.FORM_ENVELOPING and result.covered == []
    altered = document.replace(b"<title>CR</title>", b"<title>XX</title>")
    forged = signed.replace(base64.b64encode(document), base64.b64encode(altered), 1)
    assert forged != signed
    with pytest.raises(SignatureError, match="the digest of reference '#doc' does not match"):
        verify(forged, {}, pki.trust())


def test_carnet_verifies_a_drimbox_shaped_signature_made_by_xmlsec1(pki: PKI, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The DMP legacy form as the ANS DRIMbox writes it (XadesSign.java): default namespaces, the
    signature document's OID as Id, xsi:schemaLocation on Manifest and SignedProperties, RSA-SHA1,
    C14N 1.0 with comments, XAdES 1.1.1 with its own DigestMethod/DigestValue, the CDA referenced
    through a canonicalisation transform and the other document by its raw bytes."""
    cda_uid, raw_uid = list(DOCS)
    files[cda_uid].write_bytes(b'<?xml version="1.0"?>\n' + DOCS[cda_uid] + b"\n<!-- trailing -->\n")
    der = pki.doctor.cert.public_bytes(serialization.Encoding.DER)
    sig_id = "2.25.329800735698586629295641978511506172918"
    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    sha1 = sv.SHA1

    def ref(uri: str, *, type_: str = "", transform: str = "", digest: str = "") -> str:
        t = f' Type="{type_}"' if type_ else ""
        ts = f'<Transforms><Transform Algorithm="{transform}"/></Transforms>' if transform else ""
        return (
            f'<Reference{t} URI="{uri}">{ts}<DigestMethod Algorithm="{sha1}"/>'
            f"<DigestValue>{digest}</DigestValue></Reference>"
        )

    template = (
        f'<Signature xmlns="{sv.DS}" Id="{sig_id}"><SignedInfo>'
        f'<CanonicalizationMethod Algorithm="{sv.C14N_10_COMMENTS}"/>'
        f'<SignatureMethod Algorithm="{sv.RSA_SHA1}"/>'
        + ref("#IHEManifest", type_=sv.MANIFEST_TYPE)
        + ref("#S0-SignedProperties", type_=sv.SIGNED_PROPERTIES_TYPE_111)
        + "</SignedInfo><SignatureValue/><KeyInfo><X509Data/></KeyInfo>"
        f'<Object><SignatureProperties><SignatureProperty Id="purposeOfSignature" Target="#{sig_id}">'
        f"{sv.PURPOSE_SOURCE}</SignatureProperty></SignatureProperties></Object>"
        f'<Object><Manifest xmlns:xsi="{xsi}" Id="IHEManifest" xsi:schemaLocation="{sv.DS} x.xsd">'
        + ref(f"urn:oid:{SS}", digest="AA==")
        + ref(f"urn:oid:{cda_uid}", transform=sv.C14N_10_COMMENTS)
        + ref(f"urn:oid:{raw_uid}")
        + f'</Manifest></Object><Object><QualifyingProperties xmlns="{sv.XADES_111}" Target="#{sig_id}">'
        f'<SignedProperties xmlns:xsi="{xsi}" Id="S0-SignedProperties" '
        f'xsi:schemaLocation="{sv.XADES_111} x.xsd">'
        "<SignedSignatureProperties><SigningTime>2026-11-22T11:00:00.000+01:00</SigningTime>"
        f'<SigningCertificate><Cert><CertDigest><DigestMethod Algorithm="{sha1}"/>'
        f"<DigestValue>{base64.b64encode(hashlib.sha1(der).digest()).decode()}</DigestValue></CertDigest>"
        f'<IssuerSerial><X509IssuerName xmlns="{sv.DS}">{pki.doctor.cert.issuer.rfc4514_string()}'
        "</X509IssuerName>"
        f'<X509SerialNumber xmlns="{sv.DS}">{pki.doctor.cert.serial_number}</X509SerialNumber></IssuerSerial>'
        "</Cert></SigningCertificate><SignaturePolicyIdentifier><SignaturePolicyImplied/>"
        "</SignaturePolicyIdentifier></SignedSignatureProperties><SignedDataObjectProperties/>"
        "</SignedProperties></QualifyingProperties></Object></Signature>"
    )
    signed = _xmlsec1_sign(pki, template, files, tmp_path)
    received = {cda_uid: files[cda_uid].read_bytes(), raw_uid: DOCS[raw_uid]}
    result = verify(
        signed, {u: content_of(u, d) for u, d in received.items()}, pki.trust(), submission_set=SS
    )
    assert (result.form, result.legacy, result.covered) == (sv.FORM_SUBMISSION_SET, True, [cda_uid, raw_uid])
    assert result.signing_time == "2026-11-22T11:00:00.000+01:00"
    # The canonicalised CDA is what was signed: a change in its markup that C14N erases is harmless,
    # a change in its content is not.
    reformatted = received[cda_uid].replace(b"<title>", b"<title >")
    verify(
        signed,
        {cda_uid: content_of(cda_uid, reformatted), raw_uid: content_of(raw_uid, DOCS[raw_uid])},
        pki.trust(),
        submission_set=SS,
    )
    altered = received[cda_uid].replace(b"<title>CR", b"<title>CX")
    with pytest.raises(SignatureError, match=f"manifest reference 'urn:oid:{re.escape(cda_uid)}'"):
        verify(
            signed,
            {cda_uid: content_of(cda_uid, altered), raw_uid: content_of(raw_uid, DOCS[raw_uid])},
            pki.trust(),
            submission_set=SS,
        )
