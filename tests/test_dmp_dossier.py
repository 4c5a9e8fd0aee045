"""The patient's DMP: lifecycle, TD0.2 existence test, TD0.3 authorisations, FHIR Consent and
AuditEvent, the append-only audit trail, notifications by SMTP and audit records by syslog."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import time
from datetime import timedelta
from email import message_from_bytes
from email import policy as email_policy

import pytest
from aiosmtpd.controller import Controller
from lxml import etree
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from carnet.db import read_session, write_transaction
from carnet.dmp import notifications
from carnet.dmp.models import Dossier, Notification
from carnet.dmp.transaction import DossierError
from carnet.registry.schema import AuditEventRow
from carnet.security import audit
from carnet.security.dmp_policy import (
    INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX,
    MASQUE_PS,
    visibility_change,
)
from carnet.security.policy import AccessDenied
from carnet.security.principal import Principal
from carnet.security.syslog import SyslogShipper
from tests.builders import patient
from tests.dmp import OPERATOR, bearer, claims, post, saml, servers

PID = patient(801)
NIR, INS_OID = PID.split("^")[0], "1.2.250.1.213.1.4.10"
DOC = "810000000001"
HL7 = "urn:hl7-org:v3"


@pytest.fixture
def env(engine, tmp_path, authority):  # type: ignore[no-untyped-def]
    return servers(engine, tmp_path / "data", authority)


# ---------------------------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------------------------


def test_lifecycle_and_its_errors(env) -> None:  # type: ignore[no-untyped-def]
    dmp = env.dmp
    with pytest.raises(DossierError, match="not an e-mail address"):
        dmp.create(OPERATOR, PID, "nobody")
    d = dmp.create(OPERATOR, PID + "^NH", "patient@example.org", "consentement recueilli en consultation")
    assert (d.patient_id, d.status, d.consent_note) == (
        PID,
        "active",
        "consentement recueilli en consultation",
    )
    with pytest.raises(DossierError, match="already has an active DMP"):
        dmp.create(OPERATOR, PID, "patient@example.org")
    with pytest.raises(DossierError, match="requires a reason"):
        dmp.close(OPERATOR, PID, "  ")
    dmp.close(OPERATOR, PID, "demande du patient")
    with pytest.raises(DossierError, match="already closed"):
        dmp.close(OPERATOR, PID, "encore")
    with pytest.raises(DossierError, match="closed: reactivate it"):
        dmp.create(OPERATOR, PID, "patient@example.org")
    assert dmp.reactivate(OPERATOR, PID, "nouveau consentement").status == "active"
    with pytest.raises(DossierError, match="is not a patient identifier"):
        dmp.create(OPERATOR, "1234", "patient@example.org")
    trail = [t.transaction for t in dmp.traces(OPERATOR, PID)]
    # Every attempt is traced, refusals included (newest first).
    assert trail[:2] == ["DMP-TD1.2", "DMP-TD1.1"] and trail.count("DMP-TD1.4") == 3


def test_professional_rules_for_dossier_management(env, authority) -> None:  # type: ignore[no-untyped-def]
    dmp = env.dmp
    physician = Principal("professional", DOC, role="10", structure="10B0000000001")
    nurse = Principal("professional", "810000000002", role="60", structure="10B0000000001")
    dmp.create(physician, PID, "patient@example.org", "consentement oral")  # a PS creates with consent
    with pytest.raises(AccessDenied, match="only the patient may close"):
        dmp.close(physician, PID, "fin")
    with pytest.raises(AccessDenied, match="only the patient may set oppositions"):
        dmp.set_oppositions(physician, PID, bris_de_glace=True)
    with pytest.raises(AccessDenied, match="only record an authorisation for themselves"):
        dmp.authorize(nurse, PID, "professional", DOC)
    dmp.authorize(nurse, PID, "professional", nurse.id)
    dmp.authorize(nurse, PID, "structure", "10B0000000001")
    with pytest.raises(AccessDenied, match="only a physician"):
        dmp.set_medecin_traitant(nurse, PID, nurse.id)
    with pytest.raises(AccessDenied, match="only declare themselves"):
        dmp.set_medecin_traitant(physician, PID, "810000000099")
    dmp.set_medecin_traitant(physician, PID, DOC)
    with pytest.raises(AccessDenied, match="only the patient and the médecin traitant"):
        dmp.traces(nurse, PID)
    assert dmp.traces(physician, PID)  # the médecin traitant reads the trail
    patient_self = Principal("patient", NIR, patient_id=PID)
    dmp.set_oppositions(patient_self, PID, bris_de_glace=True)
    with pytest.raises(DossierError, match="holds no authorisation"):
        dmp.revoke(patient_self, PID, "professional", "810000000077")
    dmp.revoke(patient_self, PID, "professional", nurse.id)
    with read_session(env.ctx.engine) as session:
        assert session.get(Dossier, PID).opposes_bris_de_glace  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# TD0.2 / TD0.3
# ---------------------------------------------------------------------------------------------


def td02_request(nir: str = NIR, reason: str = "TEST_EXST") -> str:
    return (
        f'<PRPA_IN201307UV02 xmlns="{HL7}" ITSVersion="XML_1.0"><id root="1.2.250.1.999.77" extension="m1"/>'
        '<creationTime value="20260101120000"/>'
        '<interactionId root="2.16.840.1.113883.1.6" extension="PRPA_IN201307UV02"/>'
        '<processingCode code="D"/><processingModeCode code="T"/><acceptAckCode code="AL"/>'
        '<receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE">'
        '<id root="1.2.250.1.213.4.1.1.1"/></device></receiver>'
        '<sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE">'
        '<id root="1.2.250.1.999.77"/></device></sender>'
        '<controlActProcess classCode="CACT" moodCode="EVN">'
        f'<reasonCode code="{reason}" codeSystem="1.2.250.1.213.1.1.4.11"/>'
        '<queryByParameter><queryId root="1.2.250.1.999.77.2" extension="q1"/><statusCode code="new"/>'
        f'<parameterList><patientIdentifier><value root="{INS_OID}" extension="{nir}"/>'
        "<semanticsText>Patient.id</semanticsText></patientIdentifier></parameterList></queryByParameter>"
        "</controlActProcess></PRPA_IN201307UV02>"
    )


def td02_items(body: etree._Element) -> dict[str, str]:
    out = {}
    for obs in body.iter(f"{{{HL7}}}administrativeObservation"):
        value = obs.find(f"{{{HL7}}}value")
        out[obs.find(f"{{{HL7}}}code").get("code")] = value.get("code") or value.get("value") or value.text
    ack = body.find(f".//{{{HL7}}}queryResponseCode").get("code")
    return {"ack": ack, **out}


def test_td02_existence_test(env, authority) -> None:  # type: ignore[no-untyped-def]
    assertion = saml(authority, claims(DOC, patient=PID))
    action = "urn:hl7-org:v3:PRPA_IN201307UV02"
    status, body = post(env.client, "/dmp/patients", action, td02_request(), assertion)
    assert status == 200 and body.tag == f"{{{HL7}}}PRPA_IN201308UV02"
    assert td02_items(body) == {
        "ack": "NF",
        "DMP_STATUS": "INEXISTANT",
        "AUTHORIZATION": "ABSENTE",
        "MEDECIN_TRAITANT": "false",
    }
    env.dmp.create(OPERATOR, PID, "patient@example.org")
    env.dmp.set_medecin_traitant(OPERATOR, PID, DOC)
    env.dmp.authorize(OPERATOR, PID, "professional", DOC)
    status, body = post(env.client, "/dmp/patients", action, td02_request(), assertion)
    assert td02_items(body) == {
        "ack": "OK",
        "DMP_STATUS": "ACTIF",
        "AUTHORIZATION": "VALIDE",
        "MEDECIN_TRAITANT": "true",
    }
    patient_id = body.find(f".//{{{HL7}}}patient/{{{HL7}}}id")
    assert (patient_id.get("root"), patient_id.get("extension")) == (INS_OID, NIR)
    env.dmp.close(OPERATOR, PID, "décès")
    _, body = post(env.client, "/dmp/patients", action, td02_request(), assertion)
    items = td02_items(body)
    assert (
        items["DMP_STATUS"] == "FERME"
        and items["DMP_CLOSING_REASON"] == "décès"
        and "DMP_CLOSING_DATE" in items
    )
    # A token for another patient is refused, in HL7v3 terms (acknowledgement AE).
    other = saml(authority, claims(DOC, patient=patient(802)))
    _, body = post(env.client, "/dmp/patients", action, td02_request(), other)
    assert body.find(f".//{{{HL7}}}acknowledgement/{{{HL7}}}typeCode").get("code") == "AE"
    assert "resource-id" in body.findtext(f".//{{{HL7}}}acknowledgementDetail/{{{HL7}}}text")
    # Not an existence test: a SOAP Fault naming the rule.
    status, body = post(env.client, "/dmp/patients", action, td02_request(reason="OTHER"), assertion)
    assert status == 400 and b"TEST_EXST" in etree.tostring(body)


def set_authorization(action: str, role: str = "") -> str:
    role_el = f"<role>{role}</role>" if role else ""
    ns = "urn:si-dmp-habilitations"
    return f'<setAuthorization xmlns="{ns}"><action>{action}</action>{role_el}</setAuthorization>'


def td03_status(body: etree._Element) -> tuple[str, str]:
    ns = "{urn:si-dmp-habilitations}"
    return body.findtext(f"{ns}status") or "", body.findtext(f"{ns}context") or ""


def test_td03_set_authorization(env, authority) -> None:  # type: ignore[no-untyped-def]
    action = "urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorization"
    assertion = saml(authority, claims(DOC, patient=PID))
    _, body = post(env.client, "/dmp/habilitations", action, set_authorization("AJOUT"), assertion)
    assert td03_status(body)[0] == "ERREUR" and "has no DMP" in td03_status(body)[1]
    env.dmp.create(OPERATOR, PID, "patient@example.org")
    _, body = post(env.client, "/dmp/habilitations", action, set_authorization("AJOUT"), assertion)
    assert td03_status(body)[0] == "OK"
    assert [a.grantee_id for a in env.dmp.authorisations(OPERATOR, PID)] == [DOC]
    _, body = post(
        env.client, "/dmp/habilitations", action, set_authorization("AJOUT", "MEDECIN_TRAITANT"), assertion
    )
    assert td03_status(body)[0] == "OK" and env.dmp.dossier(OPERATOR, PID).medecin_traitant == DOC
    _, body = post(env.client, "/dmp/habilitations", action, set_authorization("SUPPRESSION"), assertion)
    assert td03_status(body)[0] == "OK" and env.dmp.authorisations(OPERATOR, PID) == []
    # A token without a patient cannot say whose DMP: refused with the reason.
    _, body = post(
        env.client, "/dmp/habilitations", action, set_authorization("AJOUT"), saml(authority, claims(DOC))
    )
    assert td03_status(body) == ("ERREUR", td03_status(body)[1]) and "resource-id" in td03_status(body)[1]
    # Break-glass is no time to record a consent.
    urgent = saml(authority, claims(DOC, mode="bris_de_glace", reason="urgence", patient=PID))
    _, body = post(env.client, "/dmp/habilitations", action, set_authorization("AJOUT"), urgent)
    assert td03_status(body)[0] == "ERREUR" and "bris_de_glace mode" in td03_status(body)[1]
    status, body = post(env.client, "/dmp/habilitations", action, set_authorization("AJOUTER"), assertion)
    assert status == 400 and b"AJOUT, SUPPRESSION" in etree.tostring(body)


# ---------------------------------------------------------------------------------------------
# FHIR: Consent, AuditEvent, lifecycle operations
# ---------------------------------------------------------------------------------------------


def fhir(env, method: str, path: str, token: str | None, body: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = env.client.open(
        path,
        method=method,
        headers=headers,
        data=json.dumps(body) if body else None,
        content_type="application/fhir+json" if body else None,
    )
    return resp.status_code, (resp.get_json(silent=True) or {})


def parameters(**values: object) -> dict:  # type: ignore[type-arg]
    out = []
    for name, value in values.items():
        if name == "patient":
            out.append({"name": name, "valueIdentifier": {"system": f"urn:oid:{INS_OID}", "value": value}})
        elif isinstance(value, bool):
            out.append({"name": name, "valueBoolean": value})
        else:
            out.append({"name": name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": out}


def consent(provision: dict) -> dict:  # type: ignore[type-arg]
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"identifier": {"system": f"urn:oid:{INS_OID}", "value": NIR}},
        "policyRule": {"text": "DMP"},
        "provision": provision,
    }


def test_fhir_consent_and_lifecycle(env, authority) -> None:  # type: ignore[no-untyped-def]
    me = bearer(authority, claims(NIR, None, kind="patient", patient=PID))
    status, out = fhir(
        env,
        "POST",
        "/fhir/$dmp-create",
        me,
        parameters(patient=NIR, email="moi@example.org", consentNote="en ligne"),
    )
    assert status == 201, out
    # The patient authorises a professional and a structure, opposes break-glass, names a médecin traitant.
    ps = {
        "type": "permit",
        "actor": [
            {
                "role": {"coding": [{"code": "IRCP"}]},
                "reference": {"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": DOC}},
            }
        ],
    }
    status, created = fhir(env, "POST", "/fhir/Consent", me, consent(ps))
    assert status == 201 and created["id"].startswith("authorization-"), created
    structure = json.loads(
        json.dumps(ps).replace("1.2.250.1.71.4.2.1", "1.2.250.1.71.4.2.2").replace(DOC, "10B42")
    )
    assert fhir(env, "POST", "/fhir/Consent", me, consent(structure))[0] == 201
    deny = {
        "type": "deny",
        "purpose": [{"system": "urn:oid:1.2.250.1.213.1.1.4.336", "code": "bris_de_glace"}],
    }
    status, opposition = fhir(env, "POST", "/fhir/Consent", me, consent(deny))
    assert status == 201 and opposition["provision"]["type"] == "deny"
    mt = {
        "type": "permit",
        "actor": [
            {
                "role": {"coding": [{"system": "urn:oid:1.2.250.1.999.1.5.1", "code": "MEDECIN_TRAITANT"}]},
                "reference": {"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": DOC}},
            }
        ],
    }
    assert fhir(env, "POST", "/fhir/Consent", me, consent(mt))[0] == 201
    status, bundle = fhir(env, "GET", f"/fhir/Consent?patient=urn:oid:{INS_OID}|{NIR}", me)
    ids = sorted(e["resource"]["id"].split("-")[0] for e in bundle["entry"])
    assert status == 200 and ids == ["authorization", "authorization", "dmp", "medecin", "opposition"]
    # Revoking is deleting the Consent; the trail keeps the history.
    assert fhir(env, "DELETE", f"/fhir/Consent/{created['id']}", me)[0] == 204
    assert fhir(env, "DELETE", f"/fhir/Consent/{opposition['id']}", me)[0] == 204
    assert fhir(env, "DELETE", f"/fhir/Consent/{created['id']}", me)[0] == 404
    assert env.dmp.dossier(OPERATOR, PID).opposes_bris_de_glace is False
    # Invalid requests say why and change nothing.
    status, out = fhir(
        env, "POST", "/fhir/Consent", me, consent({"type": "deny", "purpose": [{"code": "x"}]})
    )
    assert status == 400 and "bris_de_glace and/or centre_15" in out["issue"][0]["diagnostics"]
    stranger = bearer(authority, claims(NIR, None, kind="patient", patient=patient(802)))
    status, out = fhir(env, "POST", "/fhir/Consent", stranger, consent(deny))
    assert status == 403 and "is for patient" in out["issue"][0]["diagnostics"]
    assert fhir(env, "GET", f"/fhir/Consent?patient=urn:oid:{INS_OID}|{NIR}", None)[0] == 401
    status, out = fhir(env, "POST", "/fhir/$dmp-close", me, parameters(patient=NIR, reason="je ferme"))
    assert status == 200 and env.dmp.dossier(OPERATOR, PID).status == "closed"
    # A closed DMP still shows its patient who accessed it, and nothing else.
    assert fhir(env, "GET", f"/fhir/AuditEvent?patient=urn:oid:{INS_OID}|{NIR}", me)[0] == 200
    assert fhir(env, "POST", "/fhir/Consent", me, consent(deny))[0] == 403


def test_fhir_audit_event_search_and_immutability(env, authority) -> None:  # type: ignore[no-untyped-def]
    env.dmp.create(OPERATOR, PID, "patient@example.org")
    env.dmp.set_medecin_traitant(OPERATOR, PID, DOC)
    urgent = saml(authority, claims("810000000009", mode="bris_de_glace", reason="coma", patient=PID))
    from tests.xds import adhoc_query

    find = adhoc_query(
        "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        [
            ("$XDSDocumentEntryPatientId", [f"'{PID}'"]),
            ("$XDSDocumentEntryStatus", ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"]),
        ],
    )
    post(env.client, "/xds/registry", "urn:ihe:iti:2007:RegistryStoredQuery", find, urgent)
    me = bearer(authority, claims(NIR, None, kind="patient", patient=PID))
    status, bundle = fhir(env, "GET", f"/fhir/AuditEvent?patient=urn:oid:{INS_OID}|{NIR}", me)
    assert status == 200
    events = [e["resource"] for e in bundle["entry"]]
    query = next(e for e in events if e["subtype"][0]["code"] == "ITI-18")
    assert query["type"]["code"] == "110112" and query["outcome"] == "0"
    assert query["purposeOfEvent"][0]["coding"][0]["code"] == "bris_de_glace"
    requestor = query["agent"][0]
    assert requestor["who"]["identifier"]["value"] == "810000000009" and requestor["requestor"] is True
    patient_entity = next(e for e in query["entity"] if e["role"]["code"] == "1")
    assert patient_entity["what"]["identifier"] == {"system": f"urn:oid:{INS_OID}", "value": NIR}
    assert patient_entity["detail"][0]["valueString"] == "coma"
    # The médecin traitant may read the trail; another professional may not.
    assert (
        fhir(
            env,
            "GET",
            f"/fhir/AuditEvent?patient=urn:oid:{INS_OID}|{NIR}",
            bearer(authority, claims(DOC, patient=PID)),
        )[0]
        == 200
    )
    status, out = fhir(
        env,
        "GET",
        f"/fhir/AuditEvent?patient=urn:oid:{INS_OID}|{NIR}",
        bearer(authority, claims("810000000009", patient=PID)),
    )
    assert status == 403 and "médecin traitant" in out["issue"][0]["diagnostics"]
    # No API writes audit records, and the database refuses to rewrite them.
    for method, path in (
        ("POST", "/fhir/AuditEvent"),
        ("PUT", f"/fhir/AuditEvent/{query['id']}"),
        ("DELETE", f"/fhir/AuditEvent/{query['id']}"),
    ):
        assert (
            fhir(env, method, path, me, {"resourceType": "AuditEvent"} if method != "DELETE" else None)[0]
            == 405
        )
    for statement in ("UPDATE audit_event SET outcome = 0", "DELETE FROM audit_event"):
        with pytest.raises(DatabaseError, match="append-only"), write_transaction(env.ctx.engine) as session:
            session.execute(text(statement))
    with read_session(env.ctx.engine) as session:
        assert session.scalar(select(AuditEventRow.outcome).where(AuditEventRow.id == int(query["id"]))) == 0


def test_cli_dossier_and_audit_list(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if env.ctx.engine.dialect.name != "sqlite":
        pytest.skip("the CLI opens the data directory's SQLite database")
    from carnet.cli import main

    monkeypatch.setenv("CARNET_DATA_DIR", str(env.settings.data_dir))
    monkeypatch.delenv("CARNET_DATABASE_URL", raising=False)

    def run(*args: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        return code, out.getvalue() + err.getvalue()

    assert run("dossier", "create", PID, "--email", "p@example.org", "--oppose-centre-15")[0] == 0
    assert run("dossier", "authorize", PID, "--professional", DOC)[0] == 0
    assert run("dossier", "medecin-traitant", PID, DOC)[0] == 0
    code, out = run("dossier", "show", PID)
    shown = json.loads(out)
    assert code == 0 and shown["opposes_centre_15"] and shown["medecin_traitant"] == DOC
    assert shown["authorisations"][0]["id"] == DOC
    code, out = run("dossier", "revoke", PID, "--professional", "810000000077")
    assert code == 1 and "holds no authorisation" in out
    code, out = run("dossier", "create", "garbage", "--email", "p@example.org")
    assert code == 2 and "not a patient identifier" in out
    code, out = run("audit", "list", PID, "--json")
    assert code == 0 and [t["transaction"] for t in json.loads(out)][-1] == "DMP-TD1.1"
    code, out = run("notifications", "list", "--patient", PID)
    assert code == 0 and "creation" in out


# ---------------------------------------------------------------------------------------------
# Visibility changes (ITI-57)
# ---------------------------------------------------------------------------------------------


def test_visibility_changes() -> None:
    ps = Principal("professional", DOC, role="10")
    me = Principal("patient", NIR, patient_id=PID)
    assert visibility_change(ps, {"N", INVISIBLE_REPRESENTANTS_LEGAUX}, {"N"}).permit
    undo = visibility_change(ps, {"N"}, {"N", INVISIBLE_REPRESENTANTS_LEGAUX})
    assert not undo.permit and "cannot be hidden from them again" in undo.reason
    assert visibility_change(me, {"N"}, {"N", MASQUE_PS}).permit  # the patient masks a document
    assert not visibility_change(me, {"N", INVISIBLE_PATIENT}, {"N"}).permit
    assert visibility_change(ps, {"N", INVISIBLE_PATIENT}, {"N"}).permit


# ---------------------------------------------------------------------------------------------
# Notifications (SMTP) and syslog
# ---------------------------------------------------------------------------------------------


class Mailbox:
    """An SMTP server's handler that refuses the first ``refuse`` messages with a 451."""

    def __init__(self, refuse: int = 0):
        self.refuse = refuse
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def] # noqa: N802
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        self.messages.append(envelope.content)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_notifications_are_delivered_with_retries(env, authority) -> None:  # type: ignore[no-untyped-def]
    mailbox = Mailbox(refuse=1)
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = env.settings
        settings.smtp_url = f"smtp://127.0.0.1:{port}"
        env.dmp.create(OPERATOR, PID, "patient@example.org")
        first = notifications.deliver_due(env.ctx.engine, settings)
        assert (first.sent, first.retried) == (0, 1)
        with read_session(env.ctx.engine) as session:
            row = session.scalars(select(Notification)).one()
        assert row.status == "pending" and row.attempts == 1 and "451" in (row.last_error or "")
        # Not due before its back-off; delivered once it is.
        assert notifications.deliver_due(env.ctx.engine, settings).sent == 0
        later = row.next_attempt_at + timedelta(seconds=1)
        assert notifications.deliver_due(env.ctx.engine, settings, now=later).sent == 1
        msg = message_from_bytes(mailbox.messages[0], policy=email_policy.default)
        assert (msg["To"], msg["Subject"]) == (
            "patient@example.org",
            "Votre Dossier Médical Partagé a été créé",
        )
        assert "avec votre consentement" in msg.get_body().get_content()  # type: ignore[union-attr]
        assert notifications.deliver_due(env.ctx.engine, settings, now=later).sent == 0  # sent once
    finally:
        controller.stop()


def test_notification_gives_up_after_max_attempts(env) -> None:  # type: ignore[no-untyped-def]
    env.dmp.create(OPERATOR, PID, "patient@example.org")

    def broken(messages):  # type: ignore[no-untyped-def]
        return [OSError("connection refused")] * len(messages)

    now = None
    for _ in range(notifications.MAX_ATTEMPTS):
        with read_session(env.ctx.engine) as session:
            due = session.scalars(select(Notification)).one().next_attempt_at
        now = due + timedelta(seconds=1) if now is None or due > now else now
        notifications.deliver_due(env.ctx.engine, env.settings, now=now, sender=broken)
    with read_session(env.ctx.engine) as session:
        row = session.scalars(select(Notification)).one()
    assert (row.status, row.attempts) == ("failed", notifications.MAX_ATTEMPTS)


def test_claims_are_exclusive(env) -> None:  # type: ignore[no-untyped-def]
    """Two workers never take the same notification."""
    env.dmp.create(OPERATOR, PID, "patient@example.org")
    from carnet.registry.schema import now

    first = notifications.claim(env.ctx.engine, now())
    second = notifications.claim(env.ctx.engine, now())
    assert len(first) == 1 and second == []
    assert notifications.claim(
        env.ctx.engine, now() + notifications.LEASE + timedelta(seconds=1)
    )  # lease expired


def test_audit_records_are_shipped_by_syslog_udp(env, authority) -> None:  # type: ignore[no-untyped-def]
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    shipper = SyslogShipper(f"udp://127.0.0.1:{listener.getsockname()[1]}", "1.2.250.1.999.1.1.1")
    audit.ship_to(env.ctx.engine, shipper)
    try:
        env.dmp.create(OPERATOR, PID, "patient@example.org")
        with pytest.raises(DossierError):  # a refused request is shipped too, after its own commit
            env.dmp.close(OPERATOR, PID, "")
        frames = [listener.recv(65535), listener.recv(65535)]
    finally:
        audit.ship_to(env.ctx.engine, None)
        shipper.close()
        listener.close()
    header, _, xml = frames[0].partition(b" - <?xml")
    assert header.startswith(b"<85>1 ") and header.endswith(
        b" carnet " + header.split(b" ")[4] + b" IHE+RFC-3881"
    )
    message = etree.fromstring(b"<?xml" + xml)
    assert message.tag == "AuditMessage"
    ev = message.find("EventIdentification")
    assert ev.find("EventTypeCode").get("csd-code") == "DMP-TD1.1" and ev.get("EventOutcomeIndicator") == "0"
    patient_object = message.find("ParticipantObjectIdentification")
    assert (
        patient_object.get("ParticipantObjectID") == PID
        and patient_object.get("ParticipantObjectTypeCode") == "1"
    )
    refused = etree.fromstring(b"<?xml" + frames[1].partition(b" - <?xml")[2])
    assert refused.find("EventIdentification").get("EventOutcomeIndicator") == "8"
    assert "requires a reason" in refused.findtext("EventIdentification/EventOutcomeDescription")


def test_syslog_shipper_survives_an_absent_repository(env) -> None:  # type: ignore[no-untyped-def]
    """No listener: requests still succeed, quickly; the record stays in the database."""
    shipper = SyslogShipper(f"udp://127.0.0.1:{free_port()}", "x", retries=1)
    audit.ship_to(env.ctx.engine, shipper)
    try:
        started = time.perf_counter()
        env.dmp.create(OPERATOR, PID, "patient@example.org")
        assert time.perf_counter() - started < 2
    finally:
        audit.ship_to(env.ctx.engine, None)
        shipper.close()
    assert env.dmp.traces(OPERATOR, PID)


def _server_certificate(authority, directory):  # type: ignore[no-untyped-def]
    """A TLS server certificate for 127.0.0.1 issued by the test authority."""
    import ipaddress
    from datetime import UTC, datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = serialization.load_pem_private_key(authority.files.authority_key.read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate(authority.files.authority_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "audit-repository.test")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _tls_repository(cert, key):  # type: ignore[no-untyped-def]
    """A one-connection RFC 5425 receiver: (listener, frames received, thread)."""
    import ssl
    import threading

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    received: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while not received:
                    chunk = tls.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                    length, _, rest = data.partition(b" ")
                    if length.isdigit() and len(rest) >= int(length):
                        received.append(rest[: int(length)])
        except (OSError, ssl.SSLError):
            return  # the client refused our certificate

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, received, thread


@pytest.mark.parametrize("trusted", [True, False])
def test_audit_records_are_shipped_by_syslog_tls(env, authority, tmp_path, trusted) -> None:  # type: ignore[no-untyped-def]
    """RFC 5425: TLS to a repository CARNET_SYSLOG_CA vouches for, octet-counted frames; a
    repository outside that CA receives nothing (no system CA store behind it)."""
    from tests.dmp import make_authority

    cert, key = _server_certificate(authority, tmp_path)
    listener, received, thread = _tls_repository(cert, key)
    settings = env.settings
    settings.syslog_url = f"tls://127.0.0.1:{listener.getsockname()[1]}"
    settings.syslog_ca = (
        authority.files.authority_cert if trusted else make_authority(tmp_path / "rogue").files.authority_cert
    )
    shipper = SyslogShipper.from_settings(settings)
    audit.ship_to(env.ctx.engine, shipper)
    try:
        env.dmp.create(OPERATOR, PID, "patient@example.org")  # the request succeeds either way
        thread.join(timeout=10)
    finally:
        audit.ship_to(env.ctx.engine, None)
        shipper.close()
        listener.close()
    if trusted:
        assert received and received[0].startswith(b"<85>1 ") and b"<AuditMessage>" in received[0]
    else:
        assert received == []
    assert env.dmp.traces(OPERATOR, PID)  # the database keeps the record in both cases


def test_iti57_making_visible_to_legal_representatives_cannot_be_undone(env, authority) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from carnet.xds import vocabulary as v
    from tests.builders import Doc
    from tests.test_lifecycle import REPO, submit, update_request, versions

    env.dmp.create(OPERATOR, PID, "patient@example.org")
    env.dmp.authorize(OPERATOR, PID, "professional", DOC)
    hidden = Doc(
        f"urn:uuid:{uuid.uuid4()}",
        b"cr",
        hash="a" * 40,
        size=2,
        repository_unique_id=REPO,
        dmp_confidentiality=(INVISIBLE_REPRESENTANTS_LEGAUX,),
    )
    first, doc = submit(env.admin, PID, hidden)
    token = saml(authority, claims(DOC, patient=PID))

    def update(previous: str, lid: str, *codes: str) -> tuple[str, list[tuple[str, str]]]:
        new = Doc(
            f"urn:uuid:{uuid.uuid4()}",
            b"cr",
            unique_id=doc.unique_id,
            hash="a" * 40,
            size=2,
            repository_unique_id=REPO,
            dmp_confidentiality=codes,
        )
        from tests.xds import response_status

        _, body = post(
            env.client, "/xds/registry", v.ACTION_ITI57, update_request(PID, new, lid, previous), token
        )
        return response_status(body)

    masked = update("1", first, INVISIBLE_REPRESENTANTS_LEGAUX, MASQUE_PS)
    assert masked == ("Success", []), masked
    # Once masked, only its author and the médecin traitant may act on it.
    status, errors = update("2", first)
    assert status == "Failure" and "MASQUE_PS" in errors[0][1]
    env.dmp.set_medecin_traitant(OPERATOR, PID, DOC)
    assert update("2", first) == ("Success", [])  # made visible to everyone
    status, errors = update("3", first, INVISIBLE_REPRESENTANTS_LEGAUX)
    assert status == "Failure" and errors[0][0] == "LocalPolicyRestrictionError"
    assert "cannot be hidden from them again" in errors[0][1]
    assert [s for _, s in versions(env.ctx.engine, first)] == [v.DEPRECATED, v.DEPRECATED, v.APPROVED]


def test_fhir_patch_applies_the_same_visibility_rules(env, authority) -> None:  # type: ignore[no-untyped-def]
    """PDSm PATCH of securityLabel is an ITI-57 change: the DMP rules are the SOAP ones."""
    import json
    import uuid

    from carnet.fhir.datatypes import resource_id
    from tests.builders import Doc
    from tests.fhir_helpers import TRE_A07
    from tests.test_lifecycle import REPO, submit

    env.dmp.create(OPERATOR, PID, "patient@example.org")
    env.dmp.authorize(OPERATOR, PID, "professional", DOC)
    env.dmp.set_medecin_traitant(OPERATOR, PID, DOC)
    hidden = Doc(
        f"urn:uuid:{uuid.uuid4()}",
        b"cr",
        hash="a" * 40,
        size=2,
        repository_unique_id=REPO,
        dmp_confidentiality=(INVISIBLE_REPRESENTANTS_LEGAUX,),
    )
    first, _ = submit(env.admin, PID, hidden)
    headers = {"Authorization": f"Bearer {bearer(authority, claims(DOC, patient=PID))}"}

    def patch(rid: str, ops: list[dict[str, object]]):  # type: ignore[no-untyped-def]
        return env.client.patch(
            f"/fhir/DocumentReference/{rid}",
            data=json.dumps(ops),
            headers=headers,
            content_type="application/json-patch+json",
        )

    current = json.loads(
        env.client.get(f"/fhir/DocumentReference/{resource_id(first)}", headers=headers).data
    )
    labels = current["securityLabel"]
    kept = [
        i for i, label in enumerate(labels) if label["coding"][0]["code"] != INVISIBLE_REPRESENTANTS_LEGAUX
    ]
    visible = patch(
        resource_id(first), [{"op": "replace", "path": "/securityLabel", "value": [labels[i] for i in kept]}]
    )
    assert visible.status_code == 200, visible.data
    new_id = json.loads(visible.data)["id"]
    again = patch(
        new_id,
        [
            {
                "op": "add",
                "path": "/securityLabel/-",
                "value": {"coding": [{"system": TRE_A07, "code": INVISIBLE_REPRESENTANTS_LEGAUX}]},
            }
        ],
    )
    assert again.status_code == 403, again.data
    assert b"LocalPolicyRestrictionError" in again.data or b"forbidden" in again.data


def test_td02_and_td03_from_their_wsdl_with_zeep(env, authority) -> None:  # type: ignore[no-untyped-def]
    """The two DMP services as a SOAP stack nobody here wrote sees them: zeep reads the served WSDL,
    sends the VIHF assertion in WS-Security and gets the answers as typed (TD0.3) or raw (TD0.2)."""
    import zeep
    from zeep.wsa import WsAddressingPlugin

    from carnet.app import create_app
    from carnet.security import xua
    from tests.conftest import serving

    security = etree.fromstring(xua.security_header(saml(authority, claims(DOC, patient=PID))))
    settings = zeep.Settings(forbid_dtd=True, forbid_external=True, xml_huge_tree=False)
    env.dmp.create(OPERATOR, PID, "patient@example.org")
    with serving(create_app(env.settings, env.ctx)) as url:
        habilitations = zeep.Client(
            f"{url}/dmp/habilitations?wsdl", plugins=[WsAddressingPlugin()], settings=settings
        )
        answer = habilitations.service.setAuthorization(action="AJOUT", _soapheaders=[security])
        assert (answer.status, answer.context) == ("OK", f"authorisation of {DOC} recorded")
        patients = zeep.Client(f"{url}/dmp/patients?wsdl", plugins=[WsAddressingPlugin()], settings=settings)
        request = etree.fromstring(td02_request())
        answer = patients.service.PRPA_IN201307UV02(
            _value_1=list(request), _attr_1={"ITSVersion": "XML_1.0"}, _soapheaders=[security]
        )
        response = etree.Element(f"{{{HL7}}}PRPA_IN201308UV02")
        response.extend(answer._value_1)
        assert td02_items(response)["AUTHORIZATION"] == "VALIDE"
    assert [a.grantee_id for a in env.dmp.authorisations(OPERATOR, PID)] == [DOC]
