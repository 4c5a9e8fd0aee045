"""An audit record as an ATNA message: the DICOM PS3.15 A.5 ``AuditMessage`` XML (RFC 3881 lineage).

Carnet's audit row already holds the content (event, who, from where, patient, objects, outcome,
access mode and reason); this module writes it in the schema audit record repositories read, with
the IHE conventions of ITI TF-2 3.18.5/3.41.5/3.42.5/3.43.5: EventTypeCode = the transaction, the
requestor and Carnet as active participants, the patient (type 1, role 1) and the documents
(role 3 "Report"), submission sets (role 20 "Job") and queries (role 24, with the base64 query)
as participant objects. The DMP access mode travels as PurposeOfUse (TRE_R248 codes).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from lxml import etree

from carnet.security.vihf import ACCESS_MODE_SYSTEM, ACCESS_MODES, PROFESSION_LABELS, PROFESSION_SYSTEM

EVENT_NAMES = {
    "110105": "DICOM Study Deleted",
    "110106": "Export",
    "110107": "Import",
    "110110": "Patient Record",
    "110112": "Query",
    "110114": "User Authentication",
}
TRANSACTION_NAMES = {
    "ITI-8": "Patient Identity Feed",
    "ITI-18": "Registry Stored Query",
    "ITI-40": "Provide X-User Assertion",
    "ITI-41": "Provide and Register Document Set-b",
    "ITI-42": "Register Document Set-b",
    "ITI-43": "Retrieve Document Set",
    "ITI-57": "Update Document Set",
    "ITI-62": "Delete Document Set",
    "ITI-65": "Provide Document Bundle",
    "ITI-67": "Find Document References",
    "ITI-68": "Retrieve Document",
}
SUBMISSION_SET_ID_TYPE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"


def _code(parent: etree._Element, tag: str, code: str, system: str, text: str) -> None:
    etree.SubElement(parent, tag, {"csd-code": code, "codeSystemName": system, "originalText": text})


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def audit_message(row: dict[str, Any], audit_source_id: str) -> bytes:
    """The AuditMessage of one audit row (as ``carnet.security.audit.AuditEvent.row`` makes it)."""
    principal = json.loads(str(row["principal"]))
    root = etree.Element("AuditMessage")
    ev = etree.SubElement(
        root,
        "EventIdentification",
        EventActionCode=str(row["action"]),
        EventDateTime=_time(row["recorded_at"]),
        EventOutcomeIndicator=str(row["outcome"]),
    )
    event_id = str(row["event_id"])
    _code(ev, "EventID", event_id, "DCM", EVENT_NAMES.get(event_id, event_id))
    transaction = str(row["transaction"])
    system = "IHE Transactions" if transaction.startswith("ITI-") else "Carnet DMP Transactions"
    _code(ev, "EventTypeCode", transaction, system, TRANSACTION_NAMES.get(transaction, transaction))
    if row.get("detail"):
        etree.SubElement(ev, "EventOutcomeDescription").text = str(row["detail"])
    mode = row.get("access_mode")
    if principal.get("kind") in ("professional", "structure") and mode in ACCESS_MODES:
        _code(ev, "PurposeOfUse", str(mode), ACCESS_MODE_SYSTEM, ACCESS_MODES[str(mode)])

    requestor = etree.SubElement(root, "ActiveParticipant", UserID=str(principal.get("id") or "unknown"))
    if principal.get("token"):
        requestor.set("AlternativeUserID", str(principal["token"]))
    if principal.get("name"):
        requestor.set("UserName", str(principal["name"]))
    requestor.set("UserIsRequestor", "true")
    if row.get("source_address"):
        requestor.set("NetworkAccessPointID", str(row["source_address"]))
        requestor.set("NetworkAccessPointTypeCode", "2")
    role = principal.get("role")
    if role:
        _code(
            requestor, "RoleIDCode", str(role), PROFESSION_SYSTEM, PROFESSION_LABELS.get(str(role), str(role))
        )
    else:
        _code(requestor, "RoleIDCode", "110153", "DCM", "Source Role ID")
    server = etree.SubElement(root, "ActiveParticipant", UserID=audit_source_id, UserIsRequestor="false")
    _code(server, "RoleIDCode", "110152", "DCM", "Destination Role ID")

    source = etree.SubElement(root, "AuditSourceIdentification", AuditSourceID=audit_source_id)
    _code(source, "AuditSourceTypeCode", "4", "DCM", "Application Server Process")

    if row.get("patient_id"):
        patient = etree.SubElement(
            root,
            "ParticipantObjectIdentification",
            ParticipantObjectID=str(row["patient_id"]),
            ParticipantObjectTypeCode="1",
            ParticipantObjectTypeCodeRole="1",
        )
        _code(patient, "ParticipantObjectIDTypeCode", "2", "RFC-3881", "Patient Number")
        if principal.get("reason"):
            etree.SubElement(
                patient,
                "ParticipantObjectDetail",
                type="AccessReason",
                value=base64.b64encode(str(principal["reason"]).encode()).decode(),
            )
    for obj in json.loads(str(row.get("objects") or "[]")):
        _participant_object(root, obj, transaction)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _participant_object(root: etree._Element, obj: dict[str, str], transaction: str) -> None:
    kind = obj.get("type", "")
    po = etree.SubElement(root, "ParticipantObjectIdentification", ParticipantObjectID=obj.get("id", ""))
    po.set("ParticipantObjectTypeCode", "2")
    if kind == "SubmissionSet":
        po.set("ParticipantObjectTypeCodeRole", "20")
        _code(
            po,
            "ParticipantObjectIDTypeCode",
            SUBMISSION_SET_ID_TYPE,
            "IHE XDS Metadata",
            "submission set classificationNode",
        )
    elif kind == "Query":
        po.set("ParticipantObjectTypeCodeRole", "24")
        _code(
            po,
            "ParticipantObjectIDTypeCode",
            transaction,
            "IHE Transactions",
            TRANSACTION_NAMES.get(transaction, transaction),
        )
        if obj.get("query"):
            etree.SubElement(po, "ParticipantObjectQuery").text = obj["query"]
        etree.SubElement(
            po, "ParticipantObjectDetail", type="QueryEncoding", value=base64.b64encode(b"UTF-8").decode()
        )
    else:
        po.set("ParticipantObjectTypeCodeRole", "3")
        _code(po, "ParticipantObjectIDTypeCode", "9", "RFC-3881", "Report Number")
        if obj.get("repositoryUniqueId"):
            etree.SubElement(
                po,
                "ParticipantObjectDetail",
                type="Repository Unique Id",
                value=base64.b64encode(obj["repositoryUniqueId"].encode()).decode(),
            )
