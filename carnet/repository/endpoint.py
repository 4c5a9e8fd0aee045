"""The Document Repository SOAP endpoint, /xds/repository: ITI-41 Provide and Register, ITI-43 Retrieve.

ITI-41 is one database transaction for the registry's metadata, the repository's rows and the
audit record; the bytes are staged before it and published after it commits. ITI-43 answers by
MTOM, streaming each payload from the blob store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint
from sqlalchemy.exc import IntegrityError, OperationalError

from carnet.db import read_session, write_transaction
from carnet.registry.endpoint import db_errors, submission_audit_objects
from carnet.repository import iti41, iti43, iti86, registry_client
from carnet.security import audit
from carnet.security.policy import AccessDenied, document_refusals, enforce, errors_of
from carnet.soap import wsdl
from carnet.soap.mtom import Part
from carnet.soap.service import Call, Operation, Reply, soap_endpoint
from carnet.xds import response
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCode, XDSError

if TYPE_CHECKING:
    from carnet.app import Carnet

blueprint = Blueprint("repository", __name__)


def handle_iti41(call: Call) -> Reply:
    ctx = call.carnet
    event = audit.AuditEvent(
        "ITI-41", audit.EVENT_IMPORT, "C", call.principal, source_address=call.remote_addr
    )
    try:
        req = iti41.parse_request(call.soap.body, call.soap.extra.get("xop"))  # type: ignore[arg-type]
        sub = req.submission
        event.patient_id = sub.submission_set.patient_id if sub.submission_set else None
        event.objects = submission_audit_objects(sub)
        if not (ctx.settings.remote_registry_url and call.principal.credential):
            enforce(ctx.pdp, call.principal, "submit", event.patient_id)
        # else the registry holds the dossiers and decides, on the caller's own assertion sent with
        # the ITI-42; its refusal stops the submission before a byte is kept here.
        pairs = iti41.check_documents(req, ctx.settings.repository_unique_id)
        warnings = iti41.store_and_register(ctx, sub, pairs, event)
        return Reply(response.registry_response(warnings))
    except (XDSError, AccessDenied) as exc:
        errors = errors_of(exc)
        audit.record_failure(ctx.engine, event, errors)
        return Reply(response.registry_response(errors))


def handle_iti43(call: Call) -> Reply:
    ctx = call.carnet
    event = audit.AuditEvent(
        "ITI-43", audit.EVENT_EXPORT, "R", call.principal, source_address=call.remote_addr
    )
    try:
        requests = iti43.parse_request(call.soap.body)
        with read_session(ctx.engine) as session:
            found, errors = iti43.lookup(session, requests, ctx.settings.repository_unique_id)
        event.patient_id = found[0].patient_id if found else None
        # Decided per document: a refused one gets its own RegistryError, the others are served.
        if ctx.settings.remote_registry_url and call.principal.credential:
            # Alone, the repository has neither dossiers nor the documents' metadata: the registry
            # says, answering the caller's own query, which documents the caller may see.
            refused = registry_client.retrieve_refusals(
                ctx.settings.remote_registry_url,
                [f.stored.unique_id for f in found],
                call.principal.credential,
            )
        else:
            refused = document_refusals(
                ctx.pdp, call.principal, "retrieve", [(f.patient_id, f.stored.unique_id) for f in found]
            )
        errors += refused
        found = [f for f in found if f.stored.unique_id not in {e.location for e in refused}]
        event.objects = [
            {
                "type": "Document",
                "id": f.stored.unique_id,
                "repositoryUniqueId": f.stored.repository_unique_id,
            }
            for f in found
        ]
        if errors:
            event.outcome = audit.MINOR_FAILURE if found else audit.SERIOUS_FAILURE
            event.detail = "; ".join(f"{e.code}: {e.context}" for e in errors)
        audit.record(ctx.engine, event)
        attachments: list[tuple[str, str, Part | bytes]] = [
            (iti43.content_id(i), f.stored.mime_type, _blob_part(ctx, f.stored.sha256, f.stored.size))
            for i, f in enumerate(found)
        ]
        return Reply(iti43.render(found, errors), attachments)
    except (XDSError, AccessDenied) as exc:
        errs = errors_of(exc)
        audit.record_failure(ctx.engine, event, errs)
        return Reply(iti43.render([], errs), [])


def handle_iti86(call: Call) -> Reply:
    """ITI-86 Remove Documents: the policy decides per patient and per document, then rows and bytes
    go in one transaction with its audit record (bytes unlinked only after the commit)."""
    ctx = call.carnet
    event = audit.AuditEvent(
        "ITI-86", audit.EVENT_PATIENT_RECORD, "D", call.principal, source_address=call.remote_addr
    )
    removal: iti86.Removal | None = None
    try:
        requests = iti86.parse_request(call.soap.body)
        event.objects = [
            {"type": "Document", "id": r.document_unique_id, "repositoryUniqueId": r.repository_unique_id}
            for r in requests
        ]
        try:
            with write_transaction(ctx.engine) as session:
                documents = iti86.documents_of(session, requests)
                patients = sorted({p for p, _ in documents if p})
                event.patient_id = patients[0] if patients else None
                # A request naming no known object still meets the decision (with no patient).
                decided: list[str | None] = [*patients] or [None]
                for patient in decided:
                    enforce(ctx.pdp, call.principal, "remove", patient)
                # Then per document (the DMP: only a document's author deletes it): a refused one
                # gets its own error and stays, the others go (PartialSuccess, as for unknown ones).
                refused = document_refusals(ctx.pdp, call.principal, "remove", documents)
                kept = {e.location for e in refused}
                removal = iti86.remove_documents(
                    session,
                    ctx.blobs,
                    [r for r in requests if r.document_unique_id not in kept],
                    ctx.settings.repository_unique_id,
                )
                removal.errors = refused + removal.errors
                if not removal.removed:
                    raise XDSError(removal.errors)
                if removal.errors:
                    event.outcome = audit.MINOR_FAILURE
                    event.detail = "; ".join(f"{e.code}: {e.context}" for e in removal.errors)
                audit.record_in(session, event)
        except BaseException:
            if removal is not None:
                removal.undo()
            raise
        removal.finish()
        return Reply(response.registry_response(removal.errors, partial=True))
    except (IntegrityError, OperationalError) as exc:
        errors = errors_of(db_errors(exc, ErrorCode.REPOSITORY_ERROR))
        audit.record_failure(ctx.engine, event, errors)
        return Reply(response.registry_response(errors))
    except (XDSError, AccessDenied) as exc:
        errors = errors_of(exc)
        audit.record_failure(ctx.engine, event, errors)
        return Reply(response.registry_response(errors))


def _blob_part(ctx: Carnet, sha256: str, size: int) -> Part:
    # A stored blob streamed as an MTOM part straight from disk.
    return Part(
        content_id=None,
        content_type=None,
        headers={},
        size=size,
        sha1="",
        sha256=sha256,
        data=None,
        path=str(ctx.blobs.path(sha256)),
    )


soap_endpoint(
    blueprint,
    "/xds/repository",
    "DocumentRepository",
    wsdl.REPOSITORY,
    [
        Operation(v.ACTION_ITI41, handle_iti41, v.ACTION_ITI41 + "Response"),
        Operation(v.ACTION_ITI43, handle_iti43, v.ACTION_ITI43 + "Response"),
        Operation(v.ACTION_ITI86, handle_iti86, v.ACTION_ITI86 + "Response"),
    ],
)
