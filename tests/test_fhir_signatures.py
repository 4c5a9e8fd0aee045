"""ITI-65 bundles and the signature policy: a FHIR submission goes through the same commit as ITI-41
(``iti41.store_and_register``), so CARNET_SIGNATURE_POLICY applies to it alike. Unsigned bundles
pass under ``off`` and ``verify``; under ``require`` a bundle needs a signature document (a
DocumentReference announcing a signature format, with its Binary) whose manifest covers every
other document, the DMP's submission-set signature."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from carnet.signature import vocabulary as sv
from carnet.signature.dsg import content_of, sign_submission_set
from carnet.signature.service import SignaturePolicy, Signatures
from tests.fhir_helpers import (
    Doc,
    counts,
    issue_texts,
    issues,
    known_patients,
    new_oid,
    patient_id,
    post_bundle,
    provide_bundle,
)
from tests.signing import PKI, build_pki

# The NOS systems behind the pseudo-OID codingSchemes "URN" and "ASTM" of the signature document.
URN = "https://mos.esante.gouv.fr/NOS/TRE_A10-NomenclatureURN/FHIR/TRE-A10-NomenclatureURN"
ASTM = "https://mos.esante.gouv.fr/NOS/TRE_A12-NomenclatureASTM/FHIR/TRE-A12-NomenclatureASTM"


@pytest.fixture(scope="module")
def pki() -> PKI:
    return build_pki()


def _signature_doc(signature: bytes, unique_id: str) -> Doc:
    return Doc(
        content=signature,
        mime="text/xml",
        unique_id=unique_id,
        category=(URN, sv.CLASS_SIGNATURE),
        type=(ASTM, "E1762"),
        format=(URN, sv.FORMAT_XMLDSIG),
        language="art",
        title="Source",
    )


def test_require_refuses_unsigned_and_accepts_the_dmp_signature(
    client: Any, carnet: Any, engine: Any, settings: Any, pki: PKI
) -> None:
    known_patients(engine, 1)
    carnet.signatures = Signatures(SignaturePolicy.REQUIRE, pki.trust(), None)
    docs = [
        Doc(content=b"<ClinicalDocument/>", mime="text/xml"),
        Doc(content=b"%PDF-1.4 x", mime="application/pdf"),
    ]
    before = counts(engine, settings.blob_dir)
    resp = post_bundle(client, provide_bundle(1, docs))
    assert issues(resp) == [("XDSRepositoryMetadataError", "")] and "no signature document" in issue_texts(
        resp
    )
    assert counts(engine, settings.blob_dir) == before

    ss_uid = new_oid()
    covered = {d.unique_id: content_of(d.unique_id, d.content) for d in docs}
    signature = sign_submission_set(ss_uid, covered, pki.doctor.signer, legacy=True)
    resp = post_bundle(
        client, provide_bundle(1, [*docs, _signature_doc(signature, new_oid())], ss_unique_id=ss_uid)
    )
    assert resp.status_code == 200, issue_texts(resp)
    query = urlencode({"patient": patient_id(1), "format": sv.FORMAT_XMLDSIG})
    found = json.loads(client.get(f"/fhir/DocumentReference?{query}").data)
    assert found["total"] == 1
    assert client.get(found["entry"][0]["resource"]["content"][0]["attachment"]["url"]).data == signature

    # A signature that does not cover the documents sent is refused, naming the signature.
    other = [Doc(content=b"<ClinicalDocument>other</ClinicalDocument>", mime="text/xml")]
    resp = post_bundle(
        client, provide_bundle(1, [*other, _signature_doc(signature, new_oid())], ss_unique_id=new_oid())
    )
    assert resp.status_code == 400 and "signature DocumentEntry Bundle.entry[2]" in issue_texts(resp)
