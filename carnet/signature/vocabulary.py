"""Names of the signature standards in one place: namespaces, algorithm URIs, DSG and DMP codes.

Sources: W3C XMLDSig 1.1 and RFC 6931 (algorithm identifiers), ETSI TS 101 903 (XAdES 1.1.1 and
1.3.2), IHE ITI TF-3 §5.5 (DSG), ASTM E1762-95 (purposes of signature), and the DMP submission-set
signature as the ANS DRIMbox produces it (see docs/signatures.md).
"""

from __future__ import annotations

# --- Namespaces -----------------------------------------------------------------------------
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES_111 = "http://uri.etsi.org/01903/v1.1.1#"
XADES_132 = "http://uri.etsi.org/01903/v1.3.2#"
XADES_NAMESPACES = (XADES_111, XADES_132)

# --- Canonicalisation and transforms ----------------------------------------------------------
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_10_COMMENTS = C14N_10 + "#WithComments"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
C14N_11_COMMENTS = C14N_11 + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = EXC_C14N + "WithComments"
CANONICALIZATIONS = frozenset(
    {C14N_10, C14N_10_COMMENTS, C14N_11, C14N_11_COMMENTS, EXC_C14N, EXC_C14N_COMMENTS}
)
BASE64_TRANSFORM = DS + "base64"

# --- Digests ----------------------------------------------------------------------------------
SHA1 = DS + "sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

# --- Signature methods ------------------------------------------------------------------------
RSA_SHA1 = DS + "rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"

# SHA-1 is accepted only in the DMP legacy form (XAdES 1.1.1, as the DMP's senders produce it);
# everywhere else a signature must use SHA-256 or stronger (DSG §5.5.2).
LEGACY_ONLY = frozenset({SHA1, RSA_SHA1})

# --- Reference types --------------------------------------------------------------------------
MANIFEST_TYPE = DS + "Manifest"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
SIGNED_PROPERTIES_TYPE_111 = XADES_111 + "SignedProperties"

# --- DSG (ITI TF-3 §5.5) and DMP document metadata --------------------------------------------
FORMAT_SCHEME_IHE = "1.3.6.1.4.1.19376.1.2.3"
FORMAT_DSG_DETACHED = "urn:ihe:iti:dsg:detached:2014"
FORMAT_DSG_ENVELOPING = "urn:ihe:iti:dsg:enveloping:2014"
# The DMP's submission-set signature (CI-SIS, DRIMbox): "Default Signature Style", scheme "URN".
FORMAT_XMLDSIG = DS
FORMAT_SCHEME_URN = "URN"
SIGNATURE_FORMATS = frozenset({FORMAT_DSG_DETACHED, FORMAT_DSG_ENVELOPING, FORMAT_XMLDSIG})

CLASS_SIGNATURE = "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1"  # "Digital Signature", JDV_J57 / TRE_A10
CLASS_SIGNATURE_SCHEME = "URN"
TYPE_FULL_DOCUMENT = "E1762"
TYPE_SCHEME_ASTM = "ASTM"
LANGUAGE_ARTIFICIAL = "art"
SIGNATURE_MIME_TYPE = "text/xml"

# Purposes of signature, ASTM E1762-95(2013), code system 1.2.840.10065.1.12 (DSG Table 5.5.2-1).
PURPOSE_SCHEME = "1.2.840.10065.1.12"
PURPOSE_AUTHOR = "1.2.840.10065.1.12.1.1"
PURPOSE_VERIFICATION = "1.2.840.10065.1.12.1.5"
PURPOSE_SOURCE = "1.2.840.10065.1.12.1.14"
PURPOSES = {
    "1.2.840.10065.1.12.1.1": "Author's Signature",
    "1.2.840.10065.1.12.1.2": "Co-Author's Signature",
    "1.2.840.10065.1.12.1.3": "Co-participant's Signature",
    "1.2.840.10065.1.12.1.4": "Transcriptionist/Recorder Signature",
    "1.2.840.10065.1.12.1.5": "Verification Signature",
    "1.2.840.10065.1.12.1.6": "Validation Signature",
    "1.2.840.10065.1.12.1.7": "Consent Signature",
    "1.2.840.10065.1.12.1.8": "Signature Witness Signature",
    "1.2.840.10065.1.12.1.9": "Event Witness Signature",
    "1.2.840.10065.1.12.1.10": "Identity Witness Signature",
    "1.2.840.10065.1.12.1.11": "Consent Witness Signature",
    "1.2.840.10065.1.12.1.12": "Interpreter Signature",
    "1.2.840.10065.1.12.1.13": "Review Signature",
    "1.2.840.10065.1.12.1.14": "Source",
    "1.2.840.10065.1.12.1.15": "Addendum Signature",
    "1.2.840.10065.1.12.1.16": "Modification Signature",
    "1.2.840.10065.1.12.1.17": "Administrative (Error/Edit) Signature",
    "1.2.840.10065.1.12.1.18": "Timestamp Signature",
}

# The DMP marks its signature documents hidden from professionals and patients (DRIMbox).
DMP_CONFIDENTIALITY_SCHEME = "1.2.250.1.213.1.1.4.13"

# --- Forms Carnet recognises (recorded with each verified signature) --------------------------
FORM_SUBMISSION_SET = "submission-set"  # a manifest naming the SubmissionSet and all its documents
FORM_DETACHED = "detached"  # references to documents by urn:oid:uniqueId
FORM_ENVELOPING = "enveloping"  # the signed document inside ds:Object, base64
