"""Identity tokens: XUA/VIHF SAML assertions on SOAP, bearer JWTs on HTTP, the test authority.

A bad token is refused with a SOAP Fault carrying a WS-Security subcode (or HTTP 401), the
refusal is audited, and nothing is trusted that the configured trust store does not vouch for.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from lxml import etree
from sqlalchemy import select

from carnet.db import read_session, write_transaction
from carnet.registry.schema import AuditEventRow
from carnet.security import identity, pki, vihf, xua
from carnet.security import jwt as bearer
from carnet.soap.envelope import read_envelope
from carnet.xds import vocabulary as v
from tests.builders import patient
from tests.dmp import Authority, claims, envelope, fault_of, make_authority, post, saml, servers
from tests.xds import adhoc_query

FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
PID = patient(701)


def find_body() -> str:
    return adhoc_query(
        FIND,
        [("$XDSDocumentEntryPatientId", [f"'{PID}'"]), ("$XDSDocumentEntryStatus", [f"('{v.APPROVED}')"])],
    )


@pytest.fixture
def env(engine, tmp_path, authority):  # type: ignore[no-untyped-def]
    return servers(engine, tmp_path / "data", authority)


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    """An authority nobody trusts, with the same names as the real one."""
    return make_authority(tmp_path_factory.mktemp("rogue"))


def refusals(env) -> list[AuditEventRow]:  # type: ignore[no-untyped-def]
    with read_session(env.ctx.engine) as session:
        return list(session.scalars(select(AuditEventRow).where(AuditEventRow.event_id == "110114")))


def test_valid_assertion_is_the_principal(env, authority) -> None:  # type: ignore[no-untyped-def]
    status, body = post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), saml(authority, claims()))
    # Identity accepted: the answer is the policy's (no DMP for this patient), not a Fault.
    assert status == 200 and body.tag == f"{{{v.QUERY}}}AdhocQueryResponse"
    assert "has no DMP" in etree.tostring(body).decode()
    with read_session(env.ctx.engine) as session:
        row = session.scalars(select(AuditEventRow).where(AuditEventRow.transaction == "ITI-18")).one()
    who = json.loads(row.principal)
    assert (who["kind"], who["id"], who["role"], row.access_mode) == (
        "professional",
        "810000000001",
        "10",
        "normal",
    )
    assert who["token"].startswith("_") and "Carnet test cachet" in who["issuer"]


def _sign_then_edit(authority: Authority, old: bytes, new: bytes) -> bytes:
    return saml(authority, claims()).replace(old, new)


@pytest.mark.parametrize(
    ("name", "make", "subcode", "reason"),
    [
        (
            "tampered NameID",
            lambda a, r: _sign_then_edit(a, b">810000000001<", b">810000000999<"),
            vihf.FAILED_AUTHENTICATION,
            "does not verify against the trust store",
        ),
        (
            "signed by an authority not in the trust store",
            lambda a, r: saml(r, claims()),
            vihf.FAILED_AUTHENTICATION,
            "does not verify against the trust store",
        ),
        (
            "expired",
            lambda a, r: saml(
                a, claims(), now=datetime.now(UTC) - timedelta(hours=3), validity=timedelta(hours=1)
            ),
            vihf.FAILED_AUTHENTICATION,
            "expired at",
        ),
        (
            "issued too long ago (no NotOnOrAfter bound is trusted beyond the maximum age)",
            lambda a, r: saml(
                a, claims(), now=datetime.now(UTC) - timedelta(hours=5), validity=timedelta(days=2)
            ),
            vihf.FAILED_AUTHENTICATION,
            "s ago",
        ),
        (
            "issued in the future",
            lambda a, r: saml(a, claims(), now=datetime.now(UTC) + timedelta(hours=1)),
            vihf.FAILED_AUTHENTICATION,
            "in the future",
        ),
        (
            "no structure",
            lambda a, r: saml(a, replace(claims(), structure=None)),
            vihf.INVALID_SECURITY_TOKEN,
            "Identifiant_Structure",
        ),
        (
            "no access mode",
            lambda a, r: saml(a, replace(claims(), purpose=None)),
            vihf.INVALID_SECURITY_TOKEN,
            "no access mode",
        ),
        (
            "access mode from another code system",
            lambda a, r: saml(a, replace(claims(), purpose=vihf.Code("normal", "2.16.840.1.113883.5.8"))),
            vihf.FAILED_AUTHENTICATION,
            "not TRE_R248",
        ),
        (
            "unknown access mode",
            lambda a, r: saml(a, replace(claims(), purpose=vihf.Code("urgence", vihf.ACCESS_MODE_SYSTEM))),
            vihf.FAILED_AUTHENTICATION,
            "access mode 'urgence'",
        ),
        (
            "unknown authentication mode",
            lambda a, r: saml(a, replace(claims(), authentication_mode="CARTE")),
            vihf.FAILED_AUTHENTICATION,
            "Authentification_Mode 'CARTE'",
        ),
        (
            "patient resource-id that is not a CX",
            lambda a, r: saml(a, claims(patient="not-an-ins")),
            vihf.FAILED_AUTHENTICATION,
            "not a patient identifier",
        ),
    ],
)
def test_bad_assertions_are_soap_faults(env, authority, rogue, name, make, subcode, reason) -> None:  # type: ignore[no-untyped-def]
    status, body = post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), make(authority, rogue))
    assert status == 401 and body.tag == f"{{{v.SOAP12}}}Fault", name
    got_subcode, got_reason = fault_of(body)
    assert got_subcode == subcode and reason in got_reason, (name, got_subcode, got_reason)
    # The wsse prefix of the subcode QName is declared where it is used.
    value = body.find(f".//{{{v.SOAP12}}}Subcode/{{{v.SOAP12}}}Value")
    assert value.nsmap.get("wsse") == xua_wsse()
    assert [r.outcome for r in refusals(env)] == [8] and reason in (refusals(env)[0].detail or "")


def xua_wsse() -> str:
    return "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


def test_two_assertions_and_unsigned_ones_are_refused(env, authority) -> None:  # type: ignore[no-untyped-def]
    good = saml(authority, claims())
    forged = good.replace(b"810000000001", b"810000000999")
    unsigned = etree.fromstring(forged)
    for sig in unsigned.findall("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        unsigned.remove(sig)
    header = f'<wsse:Security xmlns:wsse="{xua_wsse()}">{good.decode()}{forged.decode()}</wsse:Security>'
    data = envelope(v.ACTION_ITI18, find_body()).replace(
        b"</soap:Header>", header.encode() + b"</soap:Header>"
    )
    resp = env.client.post("/xds/registry", data=data, content_type="application/soap+xml")
    assert resp.status_code == 401 and b"exactly one is accepted" in resp.data
    status, body = post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), etree.tostring(unsigned))
    assert status == 401 and "exactly one enveloped ds:Signature" in fault_of(body)[1]


def test_issuer_must_be_the_signing_certificate(env, authority) -> None:  # type: ignore[no-untyped-def]
    class Impostor(pki.Signer):
        @property
        def subject(self) -> str:
            return "CN=ANS IGC-Sante Organisation,O=Someone else,C=FR"

    forged = xua.issue(Impostor(authority.signer.key, authority.signer.chain), claims(), timedelta(hours=1))
    status, body = post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), forged)
    assert status == 401 and "is not the subject of the signing certificate" in fault_of(body)[1]


def test_revoked_signer_is_refused(engine, tmp_path, authority) -> None:  # type: ignore[no-untyped-def]
    """The trust store's CRLs (shared with carnet.signature) apply to assertion signers."""
    ca_key = serialization.load_pem_private_key(authority.files.authority_key.read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate(authority.files.authority_cert.read_bytes())
    now = datetime.now(UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now - timedelta(minutes=1))
        .next_update(now + timedelta(days=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(authority.signer.certificate.serial_number)
            .revocation_date(now - timedelta(minutes=1))
            .build()
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    store = tmp_path / "trust-with-crl.pem"
    store.write_bytes(
        authority.files.authority_cert.read_bytes() + crl.public_bytes(serialization.Encoding.PEM)
    )
    env = servers(engine, tmp_path / "data", authority, trust_store=store)
    status, body = post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), saml(authority, claims()))
    assert status == 401 and "is revoked" in fault_of(body)[1]


def test_no_trust_store_means_no_token_is_trusted(engine, tmp_path, authority) -> None:  # type: ignore[no-untyped-def]
    env = servers(engine, tmp_path / "data", authority, trust_store=None)
    status, body = post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), saml(authority, claims()))
    assert status == 401
    assert (
        fault_of(body) == (vihf.INVALID_SECURITY, fault_of(body)[1])
        and "CARNET_TRUST_STORE" in fault_of(body)[1]
    )


def test_no_token_is_refused_unless_anonymous_is_allowed(env, authority) -> None:  # type: ignore[no-untyped-def]
    status, body = post(env.client, "/xds/registry", v.ACTION_ITI18, find_body())
    assert status == 401 and "authentication required" in fault_of(body)[1]
    # The development server on the same database answers the same request as anonymous.
    status, body = post(env.admin, "/xds/registry", v.ACTION_ITI18, find_body())
    assert status == 200 and body.get("status", "").endswith("Success")


def test_one_time_use_assertions_are_accepted_once(env, authority) -> None:  # type: ignore[no-untyped-def]
    """saml:OneTimeUse is honoured (the replay cache, carnet.security.replay); other assertions are
    bearer tokens reusable within their validity, unless CARNET_XUA_SINGLE_USE makes all single-use."""
    once = saml(authority, replace(claims(), one_time_use=True))
    assert b"OneTimeUse" in once
    assert post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), once)[0] == 200
    status, body = post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), once)
    assert status == 401 and fault_of(body)[0] == vihf.INVALID_SECURITY
    assert "already presented" in fault_of(body)[1]
    assert "already presented" in (refusals(env)[-1].detail or "")  # the replay attempt is audited
    reusable = saml(authority, claims())
    for _ in range(2):
        assert post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), reusable)[0] == 200


def test_every_assertion_is_single_use_when_configured(engine, tmp_path, authority) -> None:  # type: ignore[no-untyped-def]
    from carnet.security.replay import AssertionUseRow

    env = servers(engine, tmp_path / "data", authority, xua_single_use=True)
    # A remembered assertion that can no longer be accepted anyway is forgotten at the next use.
    with write_transaction(env.ctx.engine) as session:
        session.add(
            AssertionUseRow(issuer="x", assertion_id="_old", expires_at=datetime.now(UTC) - timedelta(1))
        )
    token = saml(authority, claims())
    assert post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), token)[0] == 200
    assert post(env.client, "/xds/registry", v.ACTION_ITI18, find_body(), token)[0] == 401
    with read_session(env.ctx.engine) as session:
        kept = session.scalars(select(AssertionUseRow)).all()
    assert [r.assertion_id for r in kept] == [xua.read_claims(etree.fromstring(token), xua.Window()).token_id]
    # Its memory lasts as long as the assertion could be accepted: its NotOnOrAfter here (1 h).
    expires = kept[0].expires_at if kept[0].expires_at.tzinfo else kept[0].expires_at.replace(tzinfo=UTC)
    assert timedelta(minutes=55) < expires - datetime.now(UTC) < timedelta(hours=1, minutes=6)


def test_verification_ignores_the_envelope_around_the_assertion(authority) -> None:
    """Exclusive c14n: the assertion verifies wherever it sits and whatever namespaces surround it."""
    assertion = saml(authority, claims())
    data = envelope(v.ACTION_ITI18, find_body(), assertion).replace(
        b"<soap:Envelope ", b'<soap:Envelope xmlns:hl7="urn:hl7-org:v3" xmlns:extra="urn:example" '
    )
    soap = read_envelope(data)
    security = soap.header.find(f"{{{xua_wsse()}}}Security")  # type: ignore[union-attr]
    p = xua.verify(security, authority.files.authority_cert, xua.Window())
    assert (p.id, p.role, p.structure, p.attributes["authentication_mode"]) == (
        "810000000001",
        "10",
        "10B0000000001",
        "INDIRECTE",
    )


# ---------------------------------------------------------------------------------------------
# Bearer JWT
# ---------------------------------------------------------------------------------------------


def test_jwt_carries_the_same_claims(env, authority) -> None:  # type: ignore[no-untyped-def]
    token = bearer.issue(
        authority.signer,
        claims(mode="bris_de_glace", reason="détresse respiratoire", patient=PID),
        timedelta(hours=1),
    )
    p = identity.resolve_http(env.ctx, {"Authorization": f"Bearer {token}"})
    assert (p.kind, p.id, p.role, p.access_mode, p.reason, p.patient_id, p.structure) == (
        "professional",
        "810000000001",
        "10",
        "bris_de_glace",
        "détresse respiratoire",
        PID,
        "10B0000000001",
    )
    payload = pyjwt.decode(token, options={"verify_signature": False})
    assert (
        payload["extensions"]["ihe_iua"]["purpose_of_use"][0]["system"]
        == f"urn:oid:{vihf.ACCESS_MODE_SYSTEM}"
    )
    patient_token = bearer.issue(
        authority.signer, claims(kind="patient", patient=PID, profession=None), timedelta(minutes=5)
    )
    assert identity.resolve_http(env.ctx, {"Authorization": f"Bearer {patient_token}"}).kind == "patient"


def _unsigned(payload: dict[str, object]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(json.dumps(payload).encode())}."


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        (
            "other authority",
            lambda a, r: bearer.issue(r.signer, claims(), timedelta(hours=1)),
            "not among the configured keys",
        ),
        (
            "expired",
            lambda a, r: bearer.issue(
                a.signer, claims(), timedelta(hours=1), now=datetime.now(UTC) - timedelta(hours=3)
            ),
            "expired",
        ),
        (
            "alg none",
            lambda a, r: _unsigned({"sub": "810000000001", "iat": 1, "exp": 4102444800}),
            "algorithm 'none'",
        ),
        ("not a JWT", lambda a, r: "abc.def", "not a JWT"),
        (
            "missing structure",
            lambda a, r: bearer.issue(a.signer, replace(claims(), structure=None), timedelta(hours=1)),
            "Identifiant_Structure",
        ),
    ],
)
def test_bad_jwts_are_401(env, authority, rogue, name, make, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(identity.AuthenticationError) as err:
        identity.resolve_http(env.ctx, {"Authorization": f"Bearer {make(authority, rogue)}"})
    assert err.value.status == 401 and reason in err.value.reason, (name, err.value.reason)
    assert len(refusals(env)) == 1


def test_jwt_key_id_unknown_but_key_matching_is_still_refused(env, authority, rogue) -> None:  # type: ignore[no-untyped-def]
    """A token signed by a foreign key and claiming a trusted key's id fails on the signature."""
    foreign = replace(rogue.signer)
    token = pyjwt.encode(
        {
            "sub": "x",
            "iat": int(datetime.now(UTC).timestamp()),
            "exp": int(datetime.now(UTC).timestamp()) + 60,
        },
        foreign.key,
        algorithm="RS256",
        headers={"kid": authority.signer.kid},
    )
    with pytest.raises(identity.AuthenticationError) as err:
        identity.resolve_http(env.ctx, {"Authorization": f"Bearer {token}"})
    assert "Signature verification failed" in err.value.reason


def test_http_without_keys_or_token(engine, tmp_path, authority) -> None:  # type: ignore[no-untyped-def]
    env = servers(engine, tmp_path / "data", authority, jwt_keys=None)
    token = bearer.issue(authority.signer, claims(), timedelta(hours=1))
    with pytest.raises(identity.AuthenticationError, match="CARNET_JWT_KEYS"):
        identity.resolve_http(env.ctx, {"Authorization": f"Bearer {token}"})
    with pytest.raises(identity.AuthenticationError, match="authentication required"):
        identity.resolve_http(env.ctx, {})
    with pytest.raises(identity.AuthenticationError, match="Bearer <JWT>"):
        identity.resolve_http(env.ctx, {"Authorization": "Basic dXNlcjpwYXNz"})


# ---------------------------------------------------------------------------------------------
# The test authority
# ---------------------------------------------------------------------------------------------


def test_pki_init_refuses_to_overwrite(tmp_path: Path) -> None:
    pki.init(tmp_path / "pki")
    with pytest.raises(pki.TrustError, match="already exists"):
        pki.init(tmp_path / "pki")
    assert oct((tmp_path / "pki" / "signer.key").stat().st_mode & 0o777) == "0o600"
    pki.init(tmp_path / "pki", force=True)


def test_cli_pki_and_token(tmp_path: Path, monkeypatch, authority) -> None:  # type: ignore[no-untyped-def]
    """``carnet pki init`` then ``carnet token issue`` mints what the server accepts."""
    import contextlib
    import io

    from carnet.cli import main

    monkeypatch.setenv("CARNET_DATA_DIR", str(tmp_path / "data"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["pki", "init"]) == 0
    assert "CARNET_TRUST_STORE=" in out.getvalue()
    for fmt in ("saml", "jwt"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert (
                main(
                    [
                        "token",
                        "issue",
                        "--profession",
                        "60",
                        "--mode",
                        "centre_15",
                        "--reason",
                        "régulation",
                        "--patient",
                        PID,
                        "--format",
                        fmt,
                    ]
                )
                == 0
            )
        token = out.getvalue().strip()
        store = tmp_path / "data" / "pki"
        if fmt == "saml":
            sec = etree.fromstring(xua.security_header(token.encode()).encode())
            p = xua.verify(sec, store / "authority.pem", xua.Window())
        else:
            p = bearer.verify(token, pki.load_public_keys(store / "signer.pem"), None, timedelta(hours=1))
        assert (p.role, p.access_mode, p.reason, p.patient_id) == ("60", "centre_15", "régulation", PID)
    # A professional token needs a profession, a patient token a patient.
    assert main(["token", "issue", "--mode", "normal"]) == 2
    assert main(["token", "issue", "--kind", "patient"]) == 2


def test_a_repository_alone_presents_the_caller_to_its_registry(engine, tmp_path, authority) -> None:  # type: ignore[no-untyped-def]
    """XUA propagation in a split deployment: a stand-alone repository (its own database, no
    dossiers) sends the ITI-41 caller's assertion with its ITI-42, and the registry, which holds the
    dossiers and refuses anonymous requests, decides and audits the submission as the caller's."""
    from carnet.app import build, create_app
    from carnet.db import make_engine
    from carnet.dmp.api import DMP
    from carnet.registry.schema import StoredDocumentRow
    from tests.builders import Doc, provide_and_register, retrieve_request
    from tests.conftest import serving
    from tests.dmp import OPERATOR
    from tests.xds import response_status

    registry = servers(engine, tmp_path / "registry", authority)
    pid, no_dmp = patient(31), patient(32)
    DMP(registry.ctx.engine, registry.ctx.pdp).create(OPERATOR, pid, "patient@example.org")
    repository_engine = make_engine(f"sqlite:///{tmp_path / 'repository.sqlite3'}")
    token = saml(authority, claims("810000000031"))
    with serving(create_app(registry.settings, registry.ctx)) as url:
        settings = replace(
            registry.settings,
            data_dir=tmp_path / "repository",
            remote_registry_url=f"{url}/xds/registry",
            repository_unique_id="1.2.250.1.999.1.1.8",
        )
        repository = create_app(settings, build(settings, repository_engine)).test_client()
        doc1 = Doc("Doc1", b"stored here, registered there")
        body = provide_and_register(pid, [doc1])
        status, answer = post(repository, "/xds/repository", v.ACTION_ITI41, body, token)
        assert status == 200 and response_status(answer) == ("Success", []), etree.tostring(answer)
        # The registry's refusal (no DMP for this patient) is the caller's answer; nothing kept here.
        body = provide_and_register(no_dmp, [Doc("Doc2", b"refused there")])
        status, answer = post(repository, "/xds/repository", v.ACTION_ITI41, body, token)
        assert [e[0] for e in response_status(answer)[1]] == ["LocalPolicyRestrictionError"]
        assert "has no DMP" in response_status(answer)[1][0][1]
        # Retrieve: the registry, asked as the caller, says which documents they may see.
        stored_doc = [(settings.repository_unique_id, doc1.unique_id)]
        status, answer = post(
            repository, "/xds/repository", v.ACTION_ITI43, retrieve_request(stored_doc), token
        )
        assert [e[0] for e in response_status(answer)[1]] == [
            "LocalPolicyRestrictionError"
        ]  # no authorisation
        DMP(registry.ctx.engine, registry.ctx.pdp).authorize(OPERATOR, pid, "professional", "810000000031")
        status, answer = post(
            repository, "/xds/repository", v.ACTION_ITI43, retrieve_request(stored_doc), token
        )
        assert response_status(answer) == ("Success", [])
        stranger = saml(authority, claims("810000000099"))
        status, answer = post(
            repository, "/xds/repository", v.ACTION_ITI43, retrieve_request(stored_doc), stranger
        )
        assert response_status(answer)[0] == "Failure"
        assert [e[0] for e in response_status(answer)[1]] == ["LocalPolicyRestrictionError"]
    with read_session(repository_engine) as session:
        assert session.scalars(select(StoredDocumentRow.unique_id)).all() != []
        assert len(session.scalars(select(StoredDocumentRow)).all()) == 1
    with read_session(engine) as session:
        rows = session.scalars(select(AuditEventRow).where(AuditEventRow.transaction == "ITI-42")).all()
    assert [(json.loads(r.principal)["id"], r.outcome) for r in rows] == [
        ("810000000031", 0),
        ("810000000031", 8),
    ]
    assert all("Assertion" not in r.principal for r in rows)  # the token itself is not in the trail
