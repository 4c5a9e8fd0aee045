"""TD0.2, the DMP existence test: HL7v3 PRPA_IN201307UV02 (reasonCode TEST_EXST) in,
PRPA_IN201308UV02 out.

The request names the patient by ``parameterList/patientIdentifier/value@root/@extension`` (the INS
OID and the NIR) and carries ``controlActProcess/reasonCode code="TEST_EXST"
codeSystem="1.2.250.1.213.1.1.4.11"``, as the DMP clients send it. The answer is a standard HL7v3
patient registry query response: ``queryAck/queryResponseCode`` OK (a DMP exists) or NF (none), the
patient with its identity traits when known, and the DMP data items of RG_0310 as
``subjectOf2/administrativeObservation`` entries coded in Carnet's local code system (the DMPi
guide that defines the DMP's own encoding is not public):

    DMP_STATUS        ACTIF | FERME | INEXISTANT               (EF_DMP12_01)
    DMP_CLOSING_DATE  TS, DMP_CLOSING_REASON  ST               (EF_DMP12)
    AUTHORIZATION     VALIDE | REVOQUEE | ABSENTE for the caller (EF_DMP04_01)
    MEDECIN_TRAITANT  true | false: the caller is the patient's médecin traitant DMP (EF_DMP01_07)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from carnet.dmp.api import ExistenceStatus
from carnet.dmp.ids import oid_and_id
from carnet.soap.wsdl import Description
from carnet.xml import qname

HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ACTION = "urn:hl7-org:v3:PRPA_IN201307UV02"
RESPONSE_ACTION = "urn:hl7-org:v3:PRPA_IN201308UV02"
REASON_SYSTEM = "1.2.250.1.213.1.1.4.11"
TEST_EXST = "TEST_EXST"
# Carnet's local code system for the RG_0310 data items (documented in docs/dmp.md).
CARNET_DMP_CODES = "1.2.250.1.999.1.5.1"
DMP_DEVICE = "1.2.250.1.213.4.1.1.1"


# The WSDL of the service (GET /dmp/patients?wsdl): the two HL7v3 interactions, their content lax
# (the server checks it and answers with an HL7v3 acknowledgement rather than a schema fault).
_LAX = (
    '<xs:complexType><xs:sequence><xs:any namespace="##any" processContents="lax" minOccurs="0" '
    'maxOccurs="unbounded"/></xs:sequence><xs:anyAttribute processContents="lax"/></xs:complexType>'
)
WSDL = Description(
    [("PRPA_IN201307UV02", ACTION, "hl7:PRPA_IN201307UV02", "hl7:PRPA_IN201308UV02")],
    target_namespace=HL7,
    types=(
        f'<xs:schema targetNamespace="{HL7}" elementFormDefault="qualified">'
        f'<xs:element name="PRPA_IN201307UV02">{_LAX}</xs:element>'
        f'<xs:element name="PRPA_IN201308UV02">{_LAX}</xs:element></xs:schema>'
    ),
    namespaces={"hl7": HL7},
    response_actions={"PRPA_IN201307UV02": RESPONSE_ACTION},
)


class TD02Error(ValueError):
    """The request is not a TD0.2 existence test; the message says what is wrong."""


@dataclass(frozen=True)
class ExistenceQuery:
    message_id: tuple[str, str]  # (root, extension) of the request's id
    query_id: tuple[str, str]
    patient: str  # ID^^^&OID&ISO
    sender: str | None


def _h(name: str) -> str:
    return qname(HL7, name)


def parse(body: etree._Element) -> ExistenceQuery:
    if body.tag != _h("PRPA_IN201307UV02"):
        raise TD02Error(f"expected hl7:PRPA_IN201307UV02, got {body.tag}")
    cap = body.find(_h("controlActProcess"))
    if cap is None:
        raise TD02Error("PRPA_IN201307UV02 has no controlActProcess")
    reason = cap.find(_h("reasonCode"))
    if reason is None or reason.get("code") != TEST_EXST or reason.get("codeSystem") != REASON_SYSTEM:
        raise TD02Error(
            f"controlActProcess/reasonCode must be code='{TEST_EXST}' codeSystem='{REASON_SYSTEM}' "
            "(Test d'existence de dossier)"
        )
    value = cap.find(
        f"{_h('queryByParameter')}/{_h('parameterList')}/{_h('patientIdentifier')}/{_h('value')}"
    )
    if value is None or not value.get("root") or not value.get("extension"):
        raise TD02Error(
            "queryByParameter/parameterList/patientIdentifier/value needs @root (INS OID) and @extension"
        )
    msg_id = body.find(_h("id"))
    query_id = cap.find(f"{_h('queryByParameter')}/{_h('queryId')}")
    sender = body.find(f"{_h('sender')}/{_h('device')}/{_h('id')}")
    return ExistenceQuery(
        (msg_id.get("root", ""), msg_id.get("extension", "")) if msg_id is not None else ("", ""),
        (query_id.get("root", ""), query_id.get("extension", "")) if query_id is not None else ("", ""),
        f"{value.get('extension')}^^^&{value.get('root')}&ISO",
        sender.get("root") if sender is not None else None,
    )


def _ii(tag: str, pair: tuple[str, str]) -> str:
    root, ext = pair
    return f"<{tag} root={quoteattr(root or '1.2.250.1.999')}" + (
        f" extension={quoteattr(ext)}/>" if ext else "/>"
    )


def _obs(code: str, value_xml: str) -> str:
    return (
        '<subjectOf2 typeCode="SBJ"><administrativeObservation classCode="VERIF">'
        f'<code code="{code}" codeSystem="{CARNET_DMP_CODES}"/>{value_xml}'
        "</administrativeObservation></subjectOf2>"
    )


def render(query: ExistenceQuery, status: ExistenceStatus, home_oid: str) -> str:
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    oid, nir = oid_and_id(status.patient_id)
    found = status.status != "INEXISTANT"
    observations = [_obs("DMP_STATUS", f'<value xsi:type="CV" code="{status.status}"/>')]
    if status.closed_at is not None:
        observations.append(
            _obs(
                "DMP_CLOSING_DATE",
                f'<value xsi:type="TS" value="{status.closed_at.strftime("%Y%m%d%H%M%S")}"/>',
            )
        )
    if status.close_reason:
        observations.append(
            _obs("DMP_CLOSING_REASON", f'<value xsi:type="ST">{_text(status.close_reason)}</value>')
        )
    observations.append(_obs("AUTHORIZATION", f'<value xsi:type="CV" code="{status.authorisation}"/>'))
    observations.append(
        _obs(
            "MEDECIN_TRAITANT",
            f'<value xsi:type="BL" value="{str(status.caller_is_medecin_traitant).lower()}"/>',
        )
    )
    names = ""
    if status.family_name or status.given_name:
        given = f"<given>{_text(status.given_name)}</given>" if status.given_name else ""
        family = f"<family>{_text(status.family_name)}</family>" if status.family_name else ""
        names = f"<name>{given}{family}</name>"
    gender = f'<administrativeGenderCode code="{_text(status.sex)}"/>' if status.sex else ""
    birth = f'<birthTime value="{_text(status.birth_date)}"/>' if status.birth_date else ""
    subject = (
        '<subject typeCode="SUBJ"><registrationEvent classCode="REG" moodCode="EVN"><id nullFlavor="NA"/>'
        '<statusCode code="active"/><subject1 typeCode="SBJ"><patient classCode="PAT">'
        f'<id root="{oid}" extension={quoteattr(nir)}/>'
        f'<statusCode code="{"active" if status.status == "ACTIF" else "nullified" if found else "new"}"/>'
        f'<patientPerson classCode="PSN" determinerCode="INSTANCE">{names}{gender}{birth}</patientPerson>'
        f"{''.join(observations)}</patient></subject1>"
        f'<custodian typeCode="CST"><assignedEntity classCode="ASSIGNED"><id root="{home_oid}"/>'
        "</assignedEntity></custodian></registrationEvent></subject>"
    )
    return (
        f'<PRPA_IN201308UV02 xmlns="{HL7}" xmlns:xsi="{XSI}" ITSVersion="XML_1.0">'
        f'<id root="{home_oid}" extension="{uuid.uuid4()}"/><creationTime value="{now}"/>'
        '<interactionId root="2.16.840.1.113883.1.6" extension="PRPA_IN201308UV02"/>'
        '<processingCode code="P"/><processingModeCode code="T"/><acceptAckCode code="NE"/>'
        '<receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE">'
        f"{_ii('id', (query.sender or '', ''))}</device></receiver>"
        '<sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE">'
        f'<id root="{DMP_DEVICE}"/><softwareName>Carnet</softwareName></device></sender>'
        f'<acknowledgement><typeCode code="AA"/><targetMessage>{_ii("id", query.message_id)}</targetMessage>'
        "</acknowledgement>"
        '<controlActProcess classCode="CACT" moodCode="EVN">'
        '<code code="PRPA_TE201308UV02" codeSystem="2.16.840.1.113883.1.6"/>'
        f"{subject}"
        f'<queryAck>{_ii("queryId", query.query_id)}<queryResponseCode code="{"OK" if found else "NF"}"/>'
        f'<resultTotalQuantity value="{1 if found else 0}"/></queryAck>'
        "</controlActProcess></PRPA_IN201308UV02>"
    )


def _text(value: str | None) -> str:
    return escape(value or "")


def render_error(query: ExistenceQuery | None, reason: str, code: str, home_oid: str) -> str:
    """An application-level refusal: acknowledgement AE with the reason (HL7v3 MCCI detail)."""
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    target = _ii("id", query.message_id) if query else '<id nullFlavor="NI"/>'
    return (
        f'<PRPA_IN201308UV02 xmlns="{HL7}" ITSVersion="XML_1.0">'
        f'<id root="{home_oid}" extension="{uuid.uuid4()}"/><creationTime value="{now}"/>'
        '<interactionId root="2.16.840.1.113883.1.6" extension="PRPA_IN201308UV02"/>'
        '<processingCode code="P"/><processingModeCode code="T"/><acceptAckCode code="NE"/>'
        '<receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE">'
        '<id nullFlavor="NI"/></device></receiver>'
        '<sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE">'
        f'<id root="{DMP_DEVICE}"/></device></sender>'
        f'<acknowledgement><typeCode code="AE"/><targetMessage>{target}</targetMessage>'
        f'<acknowledgementDetail typeCode="E"><code code="{_text(code)}"/><text>{_text(reason)}</text>'
        "</acknowledgementDetail></acknowledgement>"
        '<controlActProcess classCode="CACT" moodCode="EVN">'
        '<code code="PRPA_TE201308UV02" codeSystem="2.16.840.1.113883.1.6"/>'
        f"<queryAck>{_ii('queryId', query.query_id if query else ('', ''))}"
        '<queryResponseCode code="AE"/></queryAck>'
        "</controlActProcess></PRPA_IN201308UV02>"
    )
