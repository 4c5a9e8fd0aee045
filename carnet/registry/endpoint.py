"""The Document Registry SOAP endpoint, /xds/registry: ITI-42 Register and ITI-18 Stored Query.

Each operation: policy decision, the transaction in one database transaction with its audit
record, and on failure a RegistryResponse naming every error (plus an audit record of the failure).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Literal

from flask import Blueprint
from lxml import etree
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from carnet.db import read_session, write_transaction
from carnet.profiles.validation import profile_for
from carnet.registry import iti18, iti57, iti62
from carnet.registry.iti42 import RegisterOptions, RegisterResult, register
from carnet.security import audit
from carnet.security.dmp_policy import check_metadata_update
from carnet.security.policy import AccessDenied, Action, document_refusals, enforce, errors_of
from carnet.soap import wsdl
from carnet.soap.service import Call, Operation, Reply, soap_endpoint
from carnet.xds import ebrim, response
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, ErrorCollector, XDSError
from carnet.xds.model import Submission
from carnet.xml import qname

log = logging.getLogger(__name__)
blueprint = Blueprint("registry", __name__)


def parse_submit_objects_request(el: etree._Element) -> Submission:
    if el.tag != qname(v.LCM, "SubmitObjectsRequest"):
        raise XDSError.of(ErrorCode.REGISTRY_ERROR, f"expected lcm:SubmitObjectsRequest, got {el.tag}")
    rol = el.find(qname(v.RIM, "RegistryObjectList"))
    if rol is None:
        raise XDSError.of(ErrorCode.REGISTRY_METADATA_ERROR, "SubmitObjectsRequest has no RegistryObjectList")
    errors = ErrorCollector()
    sub = ebrim.parse_submission(rol, errors)
    errors.raise_if_any()
    return sub


def submission_audit_objects(sub: Submission) -> list[dict[str, str]]:
    objs = [{"type": "SubmissionSet", "id": sub.submission_set.unique_id}] if sub.submission_set else []
    return objs + [{"type": "DocumentEntry", "id": de.unique_id} for de in sub.documents]


def db_errors(exc: Exception, code: ErrorCode) -> XDSError:
    """Map a database failure that escaped the rules to an XDS error the sender can act on."""
    if isinstance(exc, IntegrityError):
        # Pre-assigned entryUUIDs raced with a concurrent submission: the PK decided.
        return XDSError.of(
            ErrorCode.REGISTRY_METADATA_ERROR,
            "an object id of this submission was registered concurrently by another submission",
        )
    if isinstance(exc, OperationalError):
        return XDSError.of(
            ErrorCode.REGISTRY_BUSY if code == ErrorCode.REGISTRY_ERROR else ErrorCode.REPOSITORY_BUSY,
            "the database is busy; retry the submission",
        )
    return XDSError.of(code, f"internal error: {type(exc).__name__}")


def _submission(
    call: Call,
    transaction: str,
    event_id: str,
    action: Literal["C", "U"],
    policy_action: Action,
    apply: Callable[[Session, Submission, RegisterOptions], RegisterResult | iti57.UpdateResult],
    check: Callable[[Submission], None] | None = None,
) -> Reply:
    """ITI-42 and ITI-57: parse, decide, apply in one transaction with its audit record, answer."""
    ctx = call.carnet
    event = audit.AuditEvent(transaction, event_id, action, call.principal, source_address=call.remote_addr)
    try:
        sub = parse_submit_objects_request(call.soap.body)
        event.patient_id = sub.submission_set.patient_id if sub.submission_set else None
        event.objects = submission_audit_objects(sub)
        enforce(ctx.pdp, call.principal, policy_action, event.patient_id)
        if check is not None:
            check(sub)
        options = RegisterOptions(
            accept_any_patient=ctx.settings.accept_any_patient, profile=profile_for(ctx.settings)
        )
        try:
            with write_transaction(ctx.engine) as session:
                result = apply(session, sub, options)
                audit.record_in(session, event)
        except (IntegrityError, OperationalError) as exc:
            raise db_errors(exc, ErrorCode.REGISTRY_ERROR) from exc
        return Reply(response.registry_response(result.warnings))
    except (XDSError, AccessDenied) as exc:
        errors = errors_of(exc)
        audit.record_failure(ctx.engine, event, errors)
        return Reply(response.registry_response(errors))


def handle_iti42(call: Call) -> Reply:
    return _submission(call, "ITI-42", audit.EVENT_IMPORT, "C", "submit", register)


def handle_iti57(call: Call) -> Reply:
    """ITI-57 Update Document Set: the same seams as ITI-42, with the policy action "update" and
    the DMP's rules on each new version."""
    return _submission(
        call,
        "ITI-57",
        audit.EVENT_PATIENT_RECORD,
        "U",
        "update",
        iti57.update,
        lambda sub: check_metadata_update(call.carnet.pdp, call.principal, sub.documents),
    )


def handle_iti62(call: Call) -> Reply:
    """ITI-62 Remove Metadata: decided per patient of the objects named and per DocumentEntry, then
    removed in one transaction with its audit record."""
    ctx = call.carnet
    event = audit.AuditEvent(
        "ITI-62", audit.EVENT_PATIENT_RECORD, "D", call.principal, source_address=call.remote_addr
    )
    try:
        request = iti62.parse_request(call.soap.body)
        event.objects = [{"type": "RegistryObject", "id": i} for i in request.ids]
        try:
            with write_transaction(ctx.engine) as session:
                found = iti62.named(session, request)
                patients = sorted(iti62.patients_of(found))
                event.patient_id = patients[0] if patients else None
                # A request naming no known object still meets the decision (with no patient).
                decided: list[str | None] = [*patients] or [None]
                for patient in decided:
                    enforce(ctx.pdp, call.principal, "remove", patient)
                # Then per document (the DMP: only a document's author deletes it); ITI-62 has no
                # partial success, so one refused document refuses the request.
                refused = document_refusals(ctx.pdp, call.principal, "remove", iti62.documents_of(found))
                if refused:
                    raise XDSError(refused)
                iti62.remove(session, request, found)
                audit.record_in(session, event)
        except (IntegrityError, OperationalError) as exc:
            raise db_errors(exc, ErrorCode.REGISTRY_ERROR) from exc
        return Reply(response.registry_response())
    except (XDSError, AccessDenied) as exc:
        errors = errors_of(exc)
        audit.record_failure(ctx.engine, event, errors)
        return Reply(response.registry_response(errors))


def handle_iti18(call: Call) -> Reply:
    ctx = call.carnet
    event = audit.AuditEvent(
        "ITI-18", audit.EVENT_QUERY, "E", call.principal, source_address=call.remote_addr
    )
    try:
        request = iti18.parse_request(call.soap.body)
        event.objects = [
            {
                "type": "Query",
                "id": request.query_id,
                "query": base64.b64encode(etree.tostring(call.soap.body)).decode(),
            }
        ]
        # Decide before reading on the patient the query names; Get queries name none, so the
        # decision is taken again on the patient the result belongs to before anything is returned.
        event.patient_id = request.patient_param()
        enforce(ctx.pdp, call.principal, "query", event.patient_id)
        with read_session(ctx.engine) as session:
            outcome = iti18.run(session, request)
        if event.patient_id is None and outcome.patient_id is not None:
            event.patient_id = outcome.patient_id
            enforce(ctx.pdp, call.principal, "query", outcome.patient_id)
        outcome.result.filter(lambda hits: ctx.pdp.visible(call.principal, "query", hits))
        iti18.check_size(outcome, ctx.settings.max_query_results)
        # Which documents the caller was shown: part of the trail the patient reads.
        event.objects += [{"type": "DocumentEntry", "id": h.id} for h in outcome.result.documents]
        body = iti18.render(outcome, request.return_type)
        audit.record(ctx.engine, event)
        return Reply(body)
    except (XDSError, AccessDenied) as exc:
        errors = errors_of(exc)
        audit.record_failure(ctx.engine, event, errors)
        return Reply(response.adhoc_query_response(errors=errors))


soap_endpoint(
    blueprint,
    "/xds/registry",
    "DocumentRegistry",
    wsdl.REGISTRY,
    [
        Operation(v.ACTION_ITI42, handle_iti42, v.ACTION_ITI42 + "Response"),
        Operation(v.ACTION_ITI18, handle_iti18, v.ACTION_ITI18 + "Response"),
        Operation(v.ACTION_ITI57, handle_iti57, v.ACTION_ITI57 + "Response"),
        Operation(v.ACTION_ITI62, handle_iti62, v.ACTION_ITI62 + "Response"),
    ],
)
