"""Simple publication, POST /publish: a CDA document alone, registered and stored.

The path a laboratory or a small producer uses to post a result without building XDS metadata:
the body is the CDA (Content-Type text/xml or application/xml), the submission is derived from
its header (carnet.profiles.cda.submission), and it then goes exactly where an ITI-41 goes: the
identity seam, the policy decision on the patient, ``iti41.check_documents`` (hash, size,
repositoryUniqueId) and ``iti41.store_and_register`` (CDA validation if configured, the
registry's rules and the deployment's validation profile, one transaction with its audit record).

The answer is JSON: 201 with the identifiers registered, or the XDS errors with 422 (refused by
the rules), 403 (policy), 400 (not a CDA document) or 415 (another Content-Type).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from carnet.profiles.cda.header import CdaError
from carnet.profiles.cda.submission import submission_for
from carnet.profiles.terminology import DEFAULT_DIR, load
from carnet.registry.endpoint import submission_audit_objects
from carnet.repository import iti41
from carnet.security import audit
from carnet.security.identity import AuthenticationError, resolve_http
from carnet.security.policy import AccessDenied, enforce, errors_of
from carnet.xds.errors import ErrorCode, RegistryError, XDSError
from carnet.xml import UnsafeXMLError, parse

blueprint = Blueprint("publish", __name__)

TRANSACTION = "CDA-PUBLISH"
CONTENT_TYPES = ("text/xml", "application/xml", "application/hl7-v3+xml")


def _errors(errors: list[RegistryError], status: int) -> tuple[Response, int]:
    return jsonify(
        status="Failure",
        errors=[{"code": str(e.code), "context": e.context, "location": e.location} for e in errors],
    ), status


@blueprint.post("/publish")
def publish() -> tuple[Response, int]:
    ctx = current_app.extensions["carnet"]
    mime = (request.mimetype or "").lower()
    if mime not in CONTENT_TYPES:
        return _errors(
            [
                RegistryError(
                    ErrorCode.REPOSITORY_ERROR,
                    f"Content-Type must be text/xml or application/xml, not '{mime}'",
                )
            ],
            415,
        )
    try:
        principal = resolve_http(ctx, dict(request.headers))
    except AuthenticationError as exc:
        return _errors([RegistryError(ErrorCode.LOCAL_POLICY_RESTRICTION, exc.reason)], exc.status)
    event = audit.AuditEvent(
        TRANSACTION, audit.EVENT_IMPORT, "C", principal, source_address=request.remote_addr
    )
    content = request.get_data(cache=False)
    try:
        try:
            root = parse(content)
            publication = submission_for(
                root, load(ctx.settings.profiles_dir or DEFAULT_DIR), request.args.get("sourceId")
            )
        except (UnsafeXMLError, CdaError) as exc:
            error = RegistryError(ErrorCode.REPOSITORY_ERROR, f"the body is not a usable CDA document: {exc}")
            audit.record_failure(ctx.engine, event, [error])
            return _errors([error], 400)
        sub, de = publication.submission, publication.entry
        event.patient_id = de.patient_id
        event.objects = submission_audit_objects(sub)
        enforce(ctx.pdp, principal, "submit", de.patient_id)
        req = iti41.ProvideRequest(sub, {de.entry_uuid: iti41.ProvidedDocument(de.entry_uuid, data=content)})
        pairs = iti41.check_documents(req, ctx.settings.repository_unique_id)
        warnings = iti41.store_and_register(ctx, sub, pairs, event)
    except (XDSError, AccessDenied) as exc:
        errors = errors_of(exc)
        audit.record_failure(ctx.engine, event, errors)
        return _errors(errors, 403 if isinstance(exc, AccessDenied) else 422)
    assert sub.submission_set is not None
    return jsonify(
        status="Success",
        uniqueId=de.unique_id,
        entryUUID=de.entry_uuid,
        patientId=de.patient_id,
        repositoryUniqueId=de.repository_unique_id,
        hash=de.hash,
        size=de.size,
        submissionSetUniqueId=sub.submission_set.unique_id,
        warnings=[{"code": str(w.code), "context": w.context, "location": w.location} for w in warnings],
    ), 201
