"""Signed submissions through the server: ITI-41 under each CARNET_SIGNATURE_POLICY, sealing,
the record and the GetSignedDocuments query, and ITI-43 serving signed bytes that still verify."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import func, select

from carnet.app import Carnet, build
from carnet.config import Settings
from carnet.db import read_session
from carnet.registry.schema import AssociationRow, DocumentEntryRow, SubmissionSetRow
from carnet.signature import vocabulary as sv
from carnet.signature.dsg import content_of, sign_detached, sign_submission_set
from carnet.signature.query import QUERY_ID
from carnet.signature.records import SignatureCoverageRow, SignatureRow
from carnet.signature.service import SignatureConfigError, SignaturePolicy, Signatures
from carnet.signature.verify import verify
from carnet.soap import mtom
from carnet.xds import vocabulary as v
from tests.builders import Doc, new_oid, patient, provide_and_register
from tests.signing import PKI, Issued, build_pki, signed_request
from tests.test_repository import REPO, blob_files, counts, known, post_iti41, retrieve
from tests.xds import envelope, query, response_status

CDA = (
    b'<?xml version="1.0"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3"><title>CR</title></ClinicalDocument>\n'
)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64


@pytest.fixture(scope="module")
def pki() -> PKI:
    return build_pki()


def configure(carnet: Carnet, pki: PKI, policy: str, *, seal: bool = False) -> None:
    carnet.signatures = Signatures(SignaturePolicy(policy), pki.trust(), pki.seal.signer if seal else None)


def documents() -> list[Doc]:
    return [Doc("Doc1", CDA, mime_type="text/xml"), Doc("Doc2", PDF, mime_type="application/pdf")]


def dmp_request(
    pid: str, docs: list[Doc], signer: Issued, *, signed: list[Doc] | None = None, legacy: bool = True
) -> tuple[str, bytes, str]:
    """A submission with a DMP submission-set signature over ``signed`` (default: all ``docs``)."""
    ss_uid, sig_uid = new_oid(), new_oid()
    covered = {
        d.unique_id: content_of(d.unique_id, d.content) for d in (signed if signed is not None else docs)
    }
    sig = sign_submission_set(ss_uid, covered, signer.signer, legacy=legacy)
    return signed_request(pid, docs, sig, ss_unique_id=ss_uid, signature_unique_id=sig_uid), sig, sig_uid


def signature_rows(engine) -> list[SignatureRow]:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        return list(s.scalars(select(SignatureRow)))


def coverage(engine) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        out: dict[str, set[str]] = {}
        for row in s.scalars(select(SignatureCoverageRow)):
            out.setdefault(row.signature_uuid, set()).add(row.document_unique_id)
        return out


def slots(el) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {
        s.get("name"): [val.text for val in s.iter(f"{{{v.RIM}}}Value")]
        for s in el.findall(f"{{{v.RIM}}}Slot")
    }


def unique_id_of(el) -> str:  # type: ignore[no-untyped-def]
    ext = [
        e
        for e in el.findall(f"{{{v.RIM}}}ExternalIdentifier")
        if e.get("identificationScheme") == v.DE_UNIQUE_ID
    ]
    return ext[0].get("value")


# --- verify ----------------------------------------------------------------------------------


def test_dmp_signed_submission_is_verified_recorded_queried_and_retrieved_byte_exact(
    client, carnet, engine, pki: PKI
) -> None:  # type: ignore[no-untyped-def]
    configure(carnet, pki, "verify")
    pid = patient(201)
    known(engine, pid)
    docs = documents()
    body, sig, sig_uid = dmp_request(pid, docs, pki.doctor)
    assert post_iti41(client, body) == ("Success", [])

    (row,) = signature_rows(engine)
    assert (row.unique_id, row.form, row.status, row.legacy, row.sealed) == (
        sig_uid,
        sv.FORM_SUBMISSION_SET,
        "valid",
        True,
        False,
    )
    assert row.signer_subject.startswith("CN=Dr Alice MEDECIN") and row.patient_id == pid
    assert coverage(engine) == {row.signature_uuid: {d.unique_id for d in docs}}

    # The registry tells which documents a valid signature covers, and by whom.
    answer = query(client, QUERY_ID, [("$XDSDocumentEntryPatientId", [f"'{pid}'"])])
    assert answer.status == "Success", answer.errors
    assert sorted(unique_id_of(d) for d in answer.documents) == sorted(d.unique_id for d in docs)
    for el in answer.documents:
        s = slots(el)
        assert s["urn:carnet:signature:entryUUID"] == [row.signature_uuid]
        assert s["urn:carnet:signature:status"] == ["valid"]
        assert s["urn:carnet:signature:form"] == [sv.FORM_SUBMISSION_SET]
        assert s["urn:carnet:signature:signer"][0].startswith("CN=Dr Alice MEDECIN")
        assert "creationTime" in s  # the stored metadata is all there too
    one = query(client, QUERY_ID, [("$XDSDocumentEntryUniqueId", [f"('{docs[0].unique_id}')"])])
    assert [unique_id_of(d) for d in one.documents] == [docs[0].unique_id]

    # ITI-43 returns the signature byte-exact: a client re-verifies it on what it retrieved.
    _, got = retrieve(client, [(REPO, sig_uid), *((REPO, d.unique_id) for d in docs)])
    assert got[sig_uid] == sig
    retrieved = {u: content_of(u, b) for u, b in got.items() if u != sig_uid}
    again = verify(got[sig_uid], retrieved, pki.trust(), submission_set=_ss_unique_id(engine, pid))
    assert again.covered == [d.unique_id for d in docs]


def _ss_unique_id(engine, pid: str) -> str:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        return s.scalars(select(SubmissionSetRow.unique_id).where(SubmissionSetRow.patient_id == pid)).one()


@pytest.mark.parametrize("legacy", [True, False])
def test_mtom_signed_submission(client, carnet, engine, pki: PKI, legacy: bool) -> None:  # type: ignore[no-untyped-def]
    """Over MTOM the manifest digests are checked against the SHA-1/SHA-256 computed while parsing."""
    configure(carnet, pki, "verify")
    pid = patient(210)
    known(engine, pid)
    docs = [Doc("Doc1", CDA, mime_type="text/xml"), Doc("Doc2", PDF * 40, mime_type="application/pdf")]
    body, sig, _ = dmp_request(pid, docs, pki.doctor, legacy=legacy)
    payloads = {"Doc1": CDA, "Doc2": PDF * 40, "Sig01": sig}
    attachments = []
    for i, (doc_id, data) in enumerate(payloads.items()):
        cid = f"{i}.part@carnet.test"
        inline = f'<xdsb:Document id="{doc_id}">{base64.b64encode(data).decode()}</xdsb:Document>'
        assert inline in body
        body = body.replace(
            inline,
            f'<xdsb:Document id="{doc_id}"><xop:Include xmlns:xop="{v.XOP}" href="{mtom.cid_url(cid)}"/>'
            "</xdsb:Document>",
        )
        attachments.append((cid, "application/octet-stream", data))
    content_type, parts = mtom.write_multipart(
        envelope(v.ACTION_ITI41, body), attachments, action=v.ACTION_ITI41
    )
    resp = client.post("/xds/repository", data=b"".join(parts), content_type=content_type)
    assert response_status(etree.fromstring(resp.data).find(f"{{{v.SOAP12}}}Body")[0]) == ("Success", [])
    (row,) = signature_rows(engine)
    assert row.legacy is legacy and coverage(engine) == {row.signature_uuid: {d.unique_id for d in docs}}


def test_tampered_document_is_refused_and_leaves_nothing(client, carnet, settings, engine, pki: PKI) -> None:  # type: ignore[no-untyped-def]
    configure(carnet, pki, "verify")
    pid = patient(202)
    known(engine, pid)
    docs = documents()
    body, _, _ = dmp_request(pid, docs, pki.doctor)
    # The PDF is altered after it was signed: one byte, same size.
    tampered = body.replace(base64.b64encode(PDF).decode(), base64.b64encode(PDF[:-1] + b"X").decode())
    assert tampered != body
    status, errors = post_iti41(client, tampered)
    assert status == "Failure" and [code for code, _ in errors] == ["XDSRepositoryMetadataError"]
    assert "signature DocumentEntry Sig01" in errors[0][1]
    assert f"manifest reference 'urn:oid:{docs[1].unique_id}'" in errors[0][1]
    assert counts(engine) == (0, 0, 0) and blob_files(settings) == [] and signature_rows(engine) == []


def test_missing_reference_is_refused(client, carnet, engine, pki: PKI) -> None:  # type: ignore[no-untyped-def]
    configure(carnet, pki, "verify")
    pid = patient(203)
    known(engine, pid)
    docs = documents()
    body, _, _ = dmp_request(pid, docs, pki.doctor, signed=docs[:1])
    status, errors = post_iti41(client, body)
    assert status == "Failure" and [code for code, _ in errors] == ["XDSRepositoryMetadataError"]
    assert (
        f"DocumentEntry Doc2 (uniqueId {docs[1].unique_id}) of the SubmissionSet is missing" in errors[0][1]
    )
    assert counts(engine) == (0, 0, 0)


@pytest.mark.parametrize(
    "who,reason",
    [
        ("expired", "expired on"),
        ("revoked", "is revoked since"),
        ("stranger", "does not chain to a trust anchor"),
    ],
)
def test_untrusted_signers_are_named(client, carnet, engine, pki: PKI, who: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    configure(carnet, pki, "verify")
    pid = patient(204)
    known(engine, pid)
    body, _, _ = dmp_request(pid, documents(), getattr(pki, who))
    status, errors = post_iti41(client, body)
    assert status == "Failure"
    cn = getattr(pki, who).cert.subject.rfc4514_string()
    assert f"certificate '{cn}'" in errors[0][1] and reason in errors[0][1]
    assert counts(engine) == (0, 0, 0)


def test_format_code_must_announce_what_the_signature_is(client, carnet, engine, pki: PKI) -> None:  # type: ignore[no-untyped-def]
    configure(carnet, pki, "verify")
    pid = patient(205)
    known(engine, pid)
    docs = documents()
    ss_uid = new_oid()
    sig = sign_submission_set(
        ss_uid, {d.unique_id: content_of(d.unique_id, d.content) for d in docs}, pki.doctor.signer
    )
    for code, scheme, message in [
        (sv.FORMAT_DSG_ENVELOPING, sv.FORMAT_SCHEME_IHE, "announces an enveloping signature"),
        ("urn:ihe:iti:xds:2017:mimeTypeSufficient", sv.FORMAT_SCHEME_IHE, "is not a signature format"),
    ]:
        body = signed_request(
            pid,
            docs,
            sig,
            ss_unique_id=ss_uid,
            signature_unique_id=new_oid(),
            format_code=code,
            format_scheme=scheme,
        )
        status, errors = post_iti41(client, body)
        assert status == "Failure" and message in errors[0][1], errors
    body = signed_request(
        pid,
        docs,
        sig,
        ss_unique_id=ss_uid,
        signature_unique_id=new_oid(),
        format_code=sv.FORMAT_DSG_DETACHED,
        format_scheme=sv.FORMAT_SCHEME_IHE,
    )
    assert post_iti41(client, body) == ("Success", [])


# --- require and off -------------------------------------------------------------------------


def test_require_refuses_unsigned_and_partly_covered_submissions(client, carnet, engine, pki: PKI) -> None:  # type: ignore[no-untyped-def]
    configure(carnet, pki, "require")
    pid = patient(206)
    known(engine, pid)
    status, errors = post_iti41(client, provide_and_register(pid, documents()))
    assert status == "Failure" and "carries no signature document" in errors[0][1]

    docs = documents()
    only_first = sign_detached(
        {docs[0].unique_id: content_of(docs[0].unique_id, docs[0].content)}, pki.doctor.signer
    )
    body = signed_request(
        pid,
        docs,
        only_first,
        ss_unique_id=new_oid(),
        signature_unique_id=new_oid(),
        format_code=sv.FORMAT_DSG_DETACHED,
        format_scheme=sv.FORMAT_SCHEME_IHE,
        signs=["Doc1"],
    )
    status, errors = post_iti41(client, body)
    assert status == "Failure"
    assert [e[1] for e in errors] == [
        f"DocumentEntry Doc2 (uniqueId {docs[1].unique_id}) is covered by no verified signature "
        "(CARNET_SIGNATURE_POLICY=require)"
    ]
    assert counts(engine) == (0, 0, 0)

    both = sign_detached(
        {d.unique_id: content_of(d.unique_id, d.content) for d in docs}, pki.doctor_ec.signer
    )
    body = signed_request(
        pid,
        docs,
        both,
        ss_unique_id=new_oid(),
        signature_unique_id=new_oid(),
        format_code=sv.FORMAT_DSG_DETACHED,
        format_scheme=sv.FORMAT_SCHEME_IHE,
        signs=["Doc1", "Doc2"],
    )
    assert post_iti41(client, body) == ("Success", [])
    (row,) = signature_rows(engine)
    assert row.form == sv.FORM_DETACHED and not row.legacy and row.purposes == sv.PURPOSE_AUTHOR
    # IHE's own way to find a detached signature works alongside GetSignedDocuments.
    related = query(
        client,
        "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6",
        [
            ("$XDSDocumentEntryUniqueId", [f"'{docs[0].unique_id}'"]),
            ("$AssociationTypes", [f"('{v.SIGNS}')"]),
        ],
    )
    assert row.signature_uuid in related.ids("documents")


def test_require_lets_a_submission_without_documents_through(client, carnet, engine, pki: PKI) -> None:  # type: ignore[no-untyped-def]
    """Nothing to sign: a metadata-only ITI-41 (here a bare SubmissionSet) is not "unsigned"."""
    configure(carnet, pki, "require")
    pid = patient(211)
    known(engine, pid)
    assert post_iti41(client, provide_and_register(pid, [])) == ("Success", [])


def test_off_skips_verification(client, carnet, engine, pki: PKI) -> None:  # type: ignore[no-untyped-def]
    configure(carnet, pki, "off")
    pid = patient(207)
    known(engine, pid)
    docs = documents()
    body, _, _ = dmp_request(pid, docs, pki.stranger)  # would fail verification
    assert post_iti41(client, body) == ("Success", [])
    assert signature_rows(engine) == [] and counts(engine) == (1, 3, 3)


# --- sealing ---------------------------------------------------------------------------------


def test_unsigned_submission_is_sealed(client, carnet, engine, pki: PKI) -> None:  # type: ignore[no-untyped-def]
    configure(carnet, pki, "verify", seal=True)
    pid = patient(208)
    known(engine, pid)
    docs = documents()
    assert post_iti41(client, provide_and_register(pid, docs)) == ("Success", [])

    (row,) = signature_rows(engine)
    assert (
        row.sealed
        and row.form == sv.FORM_SUBMISSION_SET
        and row.signer_subject.startswith("CN=Hopital Test cachet")
    )
    assert coverage(engine) == {row.signature_uuid: {d.unique_id for d in docs}}
    with read_session(engine) as s:
        seal = s.get(DocumentEntryRow, row.signature_uuid)
        assert seal is not None
        assert (seal.class_code, seal.type_code, seal.format_code, seal.mime_type) == (
            sv.CLASS_SIGNATURE,
            sv.TYPE_FULL_DOCUMENT,
            sv.FORMAT_XMLDSIG,
            "text/xml",
        )
        signs = s.scalars(select(AssociationRow).where(AssociationRow.source == row.signature_uuid)).all()
        assert [(a.association_type, a.target) for a in signs] == [(v.SIGNS, row.submission_set_uuid)]
        assert s.scalar(select(func.count()).select_from(DocumentEntryRow)) == 3

    # The seal is a document like any other: retrieved byte-exact, it verifies.
    _, got = retrieve(client, [(REPO, seal.unique_id), *((REPO, d.unique_id) for d in docs)])
    result = verify(
        got[seal.unique_id],
        {d.unique_id: content_of(d.unique_id, got[d.unique_id]) for d in docs},
        pki.trust(),
        submission_set=_ss_unique_id(engine, pid),
    )
    assert result.signer == pki.seal.cert


def test_signed_submissions_are_not_sealed_and_require_is_not_laundered(
    client, carnet, engine, pki: PKI
) -> None:  # type: ignore[no-untyped-def]
    configure(carnet, pki, "verify", seal=True)
    pid = patient(209)
    known(engine, pid)
    body, _, _ = dmp_request(pid, documents(), pki.doctor)
    assert post_iti41(client, body) == ("Success", [])
    assert [r.sealed for r in signature_rows(engine)] == [False]

    configure(carnet, pki, "require", seal=True)
    status, errors = post_iti41(client, provide_and_register(pid, documents()))
    assert status == "Failure" and "carries no signature document" in errors[0][1]


def test_the_seal_is_what_the_dmp_profile_accepts_from_a_sender(pki: PKI) -> None:
    """The seal's DocumentEntry passes the `dmp` validation profile (carnet.profiles) unchanged."""
    from carnet.profiles.cda.submission import submission_for
    from carnet.profiles.dmp import DmpProfile
    from carnet.profiles.terminology import load
    from carnet.signature.seal import seal_submission
    from carnet.xds.errors import ErrorCollector

    sample = Path(__file__).resolve().parents[1] / "cda_samples" / "LDL-SES-cr-hospitalisation.xml"
    if not sample.exists():
        pytest.skip(f"CDA sample not available: {sample}")
    data = sample.read_bytes()
    sub = submission_for(etree.fromstring(data), load()).submission
    entry, _ = seal_submission(
        sub, {sub.documents[0].unique_id: content_of(sub.documents[0].unique_id, data)}, pki.seal.signer
    )
    errors = ErrorCollector()
    DmpProfile(load())(sub, errors)
    assert [e.context for e in errors.errors if entry.entry_uuid in e.context] == []


# --- configuration ----------------------------------------------------------------------------


def test_settings_that_cannot_work_stop_start_up(tmp_path, engine, pki: PKI) -> None:  # type: ignore[no-untyped-def]
    def settings(**kw: object) -> Settings:
        return Settings(data_dir=tmp_path / "d", **kw)  # type: ignore[arg-type]

    with pytest.raises(SignatureConfigError, match="CARNET_SIGNATURE_POLICY='sometimes'"):
        build(settings(signature_policy="sometimes"), engine)
    with pytest.raises(SignatureConfigError, match="needs CARNET_TRUST_STORE.*never falls back"):
        build(settings(signature_policy="verify"), engine)
    stranger_cert, stranger_key = pki.files(pki.stranger, "stranger")
    with pytest.raises(SignatureConfigError, match="CARNET_SEAL_CERT: the seal certificate 'CN=Dr Stranger"):
        Signatures.from_settings(
            settings(trust_store=pki.trust_file, seal_cert=stranger_cert, seal_key=stranger_key)
        )
    seal_cert, seal_key = pki.files(pki.seal, "seal")
    with pytest.raises(SignatureConfigError, match="needs CARNET_TRUST_STORE"):
        Signatures.from_settings(settings(seal_cert=seal_cert, seal_key=seal_key))
    ok = Signatures.from_settings(
        settings(
            signature_policy="require", trust_store=pki.trust_file, seal_cert=seal_cert, seal_key=seal_key
        )
    )
    assert ok.policy == SignaturePolicy.REQUIRE and ok.sealer is not None and ok.trust is not None
