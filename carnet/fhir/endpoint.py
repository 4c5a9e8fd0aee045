"""The FHIR blueprint, mounted at /fhir: every MHD/PDSm interaction with its security seams.

Each request: the answer format (``_format``, then ``Accept``), the principal
(``identity.resolve_http``: 401 with an OperationOutcome when refused), the policy decision point
before any data is read or written (and ``visible`` on what a search found), the transaction, and
one audit record, written with the data for ITI-65 and PATCH and on its own otherwise, failures
included. Errors are OperationOutcomes carrying the XDS error code where one applies.

``GET /fhir/metadata`` is public, like ``/health``: it describes the server, not patients.
"""

from __future__ import annotations

import base64
import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar
from urllib.parse import urlencode

from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from carnet.db import read_session, write_transaction
from carnet.fhir import datatypes as fdt
from carnet.fhir import documentreference as fdr
from carnet.fhir import iti65, iti66, iti67, iti68, metadataupdate
from carnet.fhir import patient as fpatient
from carnet.fhir.capability import capability_statement, contributed
from carnet.fhir.formats import CONTENT_TYPE, Format, accepts_fhir, parse_resource, render, response_format
from carnet.fhir.outcome import FHIRError, from_denial, from_xds, operation_outcome, to_errors
from carnet.fhir.search import Page, Params, page_of, searchset, split_or, token
from carnet.profiles.validation import profile_for
from carnet.registry import iti57
from carnet.registry.endpoint import db_errors, submission_audit_objects
from carnet.registry.iti42 import RegisterOptions
from carnet.registry.schema import DocumentEntryRow
from carnet.registry.storedquery.queries import Hit
from carnet.repository import iti41
from carnet.security import audit, identity
from carnet.security.dmp_policy import check_metadata_update
from carnet.security.policy import AccessDenied, enforce
from carnet.security.principal import Principal
from carnet.xds.errors import ErrorCode, XDSError
from carnet.xds.model import Folder

if TYPE_CHECKING:
    from carnet.app import Carnet

log = logging.getLogger(__name__)
blueprint = Blueprint("fhir", __name__, url_prefix="/fhir")
STARTED = datetime.now(UTC).replace(microsecond=0)


class _HasHit(Protocol):
    hit: Hit


# iti66.Match or iti67.Match: a search result with its policy facts.
Matched = TypeVar("Matched", bound=_HasHit)


@dataclass
class FhirCall:
    """What a handler gets: the services, who asks, the answer format, and the audit record."""

    ctx: Carnet
    principal: Principal
    fmt: Format
    base: str
    event: audit.AuditEvent


def _ctx() -> Carnet:
    ctx: Carnet = current_app.extensions["carnet"]
    return ctx


def base_url() -> str:
    return request.url_root.rstrip("/") + "/fhir"


def respond(
    resource: Resource, fmt: Format, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        render(resource, fmt), status=status, content_type=CONTENT_TYPE[fmt], headers=headers or {}
    )


def _outcome(exc: FHIRError, fmt: Format) -> Response:
    return respond(operation_outcome(exc.issues), fmt, exc.status, exc.headers)


def _format() -> Format:
    try:
        return response_format(request.args.get("_format"), request.headers.get("Accept"))
    except FHIRError:
        return "json"


def run(
    transaction: str,
    event_id: str,
    action: Literal["C", "R", "U", "D", "E"],
    handler: Callable[[FhirCall], Response],
) -> Response:
    """The seams every FHIR interaction shares (see the module docstring)."""
    ctx = _ctx()
    fmt = _format()
    try:
        # An explicit _format this server cannot write is 406, before anything else happens.
        response_format(request.args.get("_format"), request.headers.get("Accept"))
        principal = identity.resolve_http(ctx, dict(request.headers.items()))
    except FHIRError as exc:
        return _outcome(exc, fmt)
    except identity.AuthenticationError as exc:
        refusal = FHIRError.of(401, "login", exc.reason)
        refusal.headers["WWW-Authenticate"] = 'Bearer realm="carnet"'
        return _outcome(refusal, fmt)
    event = audit.AuditEvent(transaction, event_id, action, principal, source_address=request.remote_addr)
    call = FhirCall(ctx, principal, fmt, base_url(), event)
    try:
        try:
            return handler(call)
        except XDSError as exc:
            raise from_xds(exc) from exc
        except AccessDenied as exc:
            raise from_denial(exc) from exc
    except FHIRError as exc:
        audit.record_failure(ctx.engine, event, to_errors(exc))
        return _outcome(exc, fmt)
    except Exception:
        # A fault of Carnet's: logged with its trace, audited, and answered as FHIR (not HTML).
        log.exception("%s failed", transaction)
        failure = FHIRError.of(500, "exception", f"{transaction}: internal error (see the server log)")
        audit.record_failure(ctx.engine, event, to_errors(failure))
        return _outcome(failure, fmt)


def _params() -> Params:
    """Search parameters: the query string, plus the form body of POST _search."""
    items = list(request.args.items(multi=True))
    if request.method == "POST":
        ctype = (request.content_type or "").split(";", 1)[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise FHIRError.of(
                415, "not-supported", "POST _search takes an application/x-www-form-urlencoded body"
            )
        items += list(request.form.items(multi=True))
    return Params(items)


def _query_objects(name: str, params: Params) -> list[dict[str, str]]:
    query = base64.b64encode(urlencode(params.items).encode()).decode()
    return [{"type": "Query", "id": name, "query": query}]


def _named_patient(params: Params) -> str | None:
    """The patient a search names, read from the parameters alone (for the decision before reading)."""
    for name, raw in params.items:
        alts = split_or(raw)
        if name == "patient" and len(alts) == 1:
            return fdt.cx_of_patient_resource_id(alts[0].rstrip("/").rsplit("/", 1)[-1])
        if name in ("patient.identifier", "patient:identifier") and len(alts) == 1:
            t = token(alts[0])
            try:
                return fdt.cx_of(t.system, t.code) if t.system else None
            except ValueError:
                return None
    return None


def _not_found(kind: str, rid: str) -> FHIRError:
    return FHIRError.of(404, "not-found", f"{kind}/{rid} is not known here")


# ---------------------------------------------------------------------------------------------
# Capability
# ---------------------------------------------------------------------------------------------


@blueprint.get("/metadata")
def metadata() -> Response:
    try:
        fmt = response_format(request.args.get("_format"), request.headers.get("Accept"))
    except FHIRError as exc:  # a _format that is neither JSON nor XML: 406, as everywhere else
        return _outcome(exc, "json")
    return respond(capability_statement(base_url(), STARTED, contributed(current_app)), fmt)


# ---------------------------------------------------------------------------------------------
# ITI-65 Provide Document Bundle
# ---------------------------------------------------------------------------------------------


@blueprint.post("")
@blueprint.post("/")
def transaction() -> Response:
    return run("ITI-65", audit.EVENT_IMPORT, "C", _iti65)


def _iti65(c: FhirCall) -> Response:
    limit = c.ctx.settings.max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise FHIRError.of(413, "too-costly", f"the bundle exceeds the limit of {limit} bytes")
    bundle = parse_resource(request.get_data(cache=False), request.content_type)
    if not isinstance(bundle, Bundle):
        raise FHIRError.of(
            400, "invalid", f"POST [base] takes a transaction Bundle, not a {bundle.get_resource_type()}"
        )

    def existing_folder(entry_uuid: str) -> tuple[Folder, set[str]] | None:
        # A Folder update reads the Folder: the decision on its patient comes before its content is used.
        with read_session(c.ctx.engine) as session:
            found = iti66.folder_with_members(session, entry_uuid)
        if found is not None:
            enforce(c.ctx.pdp, c.principal, "submit", found[0].patient_id)
        return found

    provided = iti65.translate(bundle, c.base, existing_folder)
    sub = provided.request.submission
    c.event.patient_id = sub.submission_set.patient_id if sub.submission_set else None
    c.event.objects = submission_audit_objects(sub)
    try:
        enforce(c.ctx.pdp, c.principal, "submit", c.event.patient_id)
        pairs = iti41.check_documents(provided.request, c.ctx.settings.repository_unique_id)
        warnings = iti41.store_and_register(c.ctx, sub, pairs, c.event)
    except XDSError as exc:
        raise from_xds(XDSError(iti65.explain(exc.errors, provided.names))) from exc
    return respond(iti65.response_bundle(provided, warnings), c.fmt)


# ---------------------------------------------------------------------------------------------
# ITI-67 Find Document References, DocumentReference read
# ---------------------------------------------------------------------------------------------


@blueprint.get("/DocumentReference")
@blueprint.post("/DocumentReference/_search")
def search_document_references() -> Response:
    return run("ITI-67", audit.EVENT_QUERY, "E", _iti67)


def _iti67(c: FhirCall) -> Response:
    return _search(c, "ITI-67", "DocumentReference", iti67.find, iti67.SEARCH_PARAMS, _document_references(c))


def _document_references(c: FhirCall) -> Callable[[Session, list[iti67.Match]], list[Resource]]:
    return lambda session, matches: [fdr.to_fhir(s, c.base) for s in iti67.stored(session, matches)]


def _search(
    c: FhirCall,
    transaction: str,
    resource_type: str,
    find: Callable[[Session, Params], list[Matched]],
    supported: list[str],
    resources_of: Callable[[Session, list[Matched]], Sequence[Resource]],
) -> Response:
    """ITI-66 and ITI-67: find, decide by policy on what was found, render one page, audit."""
    params = _params()
    c.event.objects = _query_objects(transaction, params)
    c.event.patient_id = _named_patient(params)
    enforce(c.ctx.pdp, c.principal, "query", c.event.patient_id)
    page = page_of(params)
    with read_session(c.ctx.engine) as session:
        found = find(session, params)
        params.refuse_unsupported_modifiers(supported)
        matches = _decide_on_results(c, found)
        limit = c.ctx.settings.max_query_results
        if len(matches) > limit:
            # Counted after the policy, as ITI-18: documents the caller cannot see do not count.
            raise FHIRError.of(
                400,
                "too-costly",
                f"the search matches {len(matches)} {resource_type} resources, more than this server "
                f"returns ({limit}); narrow it",
                str(ErrorCode.TOO_MANY_RESULTS),
            )
        shown = [] if params.one("_summary") == "count" else matches[page.offset : page.offset + page.count]
        resources = list(resources_of(session, shown))
    audit.record(c.ctx.engine, c.event)
    url = f"{c.base}/{resource_type}"
    return respond(searchset(resources, len(matches), page, params, url, c.base), c.fmt)


def _decide_on_results(c: FhirCall, matches: list[Matched]) -> list[Matched]:
    """Decide again on the patient(s) found (a search by _id names none), then filter by policy."""
    for pid in sorted({p for m in matches if (p := m.hit.patient_id)}):
        if pid != c.event.patient_id:
            enforce(c.ctx.pdp, c.principal, "query", pid)
    if c.event.patient_id is None and matches:
        c.event.patient_id = matches[0].hit.patient_id
    allowed = {h.id for h in c.ctx.pdp.visible(c.principal, "query", [m.hit for m in matches])}
    return [m for m in matches if m.hit.id in allowed]


def _read(
    c: FhirCall,
    resource_type: str,
    rid: str,
    by_id: Callable[[Session, str], Matched | None],
    resources_of: Callable[[Session, list[Matched]], Sequence[Resource]],
) -> Response:
    """DocumentReference and List reads: the search's policy decision, for one resource."""
    c.event.objects = [{"type": resource_type, "id": rid}]
    enforce(c.ctx.pdp, c.principal, "query", None)
    entry_uuid = fdt.entry_uuid_of(rid)
    with read_session(c.ctx.engine) as session:
        match = by_id(session, entry_uuid) if entry_uuid else None
        found = _decide_on_results(c, [match]) if match else []
        if not found:
            # Not found and not visible answer alike (ITI TF-2 Appendix Z.7): nothing leaks.
            raise _not_found(resource_type, rid)
        resource = resources_of(session, found)[0]
    audit.record(c.ctx.engine, c.event)
    return respond(resource, c.fmt, headers=_version_headers(resource))


@blueprint.get("/DocumentReference/<rid>")
def read_document_reference(rid: str) -> Response:
    return run("ITI-67", audit.EVENT_QUERY, "E", lambda c: _read_document_reference(c, rid))


def _read_document_reference(c: FhirCall, rid: str) -> Response:
    return _read(c, "DocumentReference", rid, iti67.by_id, _document_references(c))


def _version_headers(resource: Resource) -> dict[str, str]:
    meta = getattr(resource, "meta", None)
    headers = {}
    if meta is not None and meta.versionId:
        headers["ETag"] = f'W/"{meta.versionId}"'
    return headers


# ---------------------------------------------------------------------------------------------
# PDSm metadata update: PATCH DocumentReference (ITI-57)
# ---------------------------------------------------------------------------------------------


@blueprint.route("/DocumentReference/<rid>", methods=["PATCH"])
def patch_document_reference(rid: str) -> Response:
    return run("ITI-57", audit.EVENT_PATIENT_RECORD, "U", lambda c: _patch(c, rid))


@blueprint.route("/DocumentReference", methods=["PATCH"])
def conditional_patch_document_reference() -> Response:
    return run("ITI-57", audit.EVENT_PATIENT_RECORD, "U", lambda c: _patch(c, None))


def _patch(c: FhirCall, rid: str | None) -> Response:
    enforce(c.ctx.pdp, c.principal, "update", None)
    body = request.get_data(cache=False)
    options = RegisterOptions(
        accept_any_patient=c.ctx.settings.accept_any_patient, profile=profile_for(c.ctx.settings)
    )
    source_id = c.ctx.settings.home_community_id.removeprefix("urn:oid:")
    try:
        with write_transaction(c.ctx.engine) as session:
            row = _patch_target(session, rid)
            c.event.patient_id = row.patient_id
            c.event.objects = [{"type": "DocumentEntry", "id": row.unique_id, "entryUUID": row.entry_uuid}]
            enforce(c.ctx.pdp, c.principal, "update", row.patient_id)
            match = iti67.by_id(session, row.entry_uuid)
            assert match is not None
            if not c.ctx.pdp.visible(c.principal, "update", [match.hit]):
                raise _not_found("DocumentReference", rid or row.entry_uuid)
            latest = iti57.latest_version(session, DocumentEntryRow, row.logical_id)
            if latest is not None and latest.entry_uuid != row.entry_uuid:
                # A metadata update made a new version (new id, as in the DMP): that one is patched.
                raise FHIRError.of(
                    409,
                    "conflict",
                    f"DocumentReference/{fdt.resource_id(row.entry_uuid)} is version {row.version}; the "
                    f"document's latest version is DocumentReference/{fdt.resource_id(latest.entry_uuid)}",
                    str(ErrorCode.METADATA_VERSION_ERROR),
                )
            stored = iti67.stored(session, [match])[0]
            current = fdr.to_fhir(stored, c.base)
            _check_if_match(request.headers.get("If-Match"), current)
            change = metadataupdate.requested_change(current, stored.entry, body, request.content_type or "")
            if change.confidentiality is not None:
                # The DMP rules of an ITI-57 over SOAP apply to the same change made by PATCH:
                # masking, and visibility to legal representatives that cannot be taken back.
                candidate = copy.deepcopy(stored.entry)
                candidate.confidentiality_codes = change.confidentiality
                check_metadata_update(c.ctx.pdp, c.principal, [candidate])
            new_id = metadataupdate.apply(session, row, change, options, source_id)
            audit.record_in(session, c.event)
    except (IntegrityError, OperationalError) as exc:
        raise from_xds(db_errors(exc, ErrorCode.REGISTRY_ERROR)) from exc
    with read_session(c.ctx.engine) as session:
        updated = iti67.by_id(session, new_id)
        assert updated is not None
        resource = fdr.to_fhir(iti67.stored(session, [updated])[0], c.base)
    return respond(resource, c.fmt, headers=_version_headers(resource))


def _check_if_match(if_match: str | None, current: Resource) -> None:
    """FHIR version-aware update: ``If-Match: W/"n"`` must name the version being patched."""
    if not if_match:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    have = _version_headers(current).get("ETag", "").removeprefix("W/").strip('"')
    if wanted != have:
        raise FHIRError.of(
            412, "conflict", f"If-Match {if_match}: the DocumentReference is at version {have or 'unknown'}"
        )


def _patch_target(session: Session, rid: str | None) -> DocumentEntryRow:
    if rid is not None:
        entry_uuid = fdt.entry_uuid_of(rid)
        row = session.get(DocumentEntryRow, entry_uuid) if entry_uuid else None
        if row is None:
            raise _not_found("DocumentReference", rid)
        return row
    params = Params(list(request.args.items(multi=True)))
    values = params.values("identifier")
    if len(values) != 1 or len(split_or(values[0])) != 1 or params.ignored():
        raise FHIRError.of(
            400,
            "invalid",
            "a conditional PATCH names the document by one identifier: DocumentReference?identifier=...",
        )
    t = token(values[0])
    unique_id = entry_uuid = None
    if t.code and t.code.startswith("urn:uuid:") and t.system in (None, fdt.URI_SYSTEM):
        entry_uuid = t.code.lower()
    else:
        try:
            unique_id = fdt.unique_id_of(t.system or None, t.code)
        except ValueError as exc:
            raise FHIRError.of(400, "invalid", f"identifier: {exc}") from exc
    rows = metadataupdate.latest_by_identifier(session, unique_id, entry_uuid)
    if not rows:
        raise FHIRError.of(404, "not-found", f"no DocumentReference has identifier {values[0]}")
    if len(rows) > 1:
        raise FHIRError.of(412, "multiple-matches", f"identifier {values[0]} names {len(rows)} documents")
    return rows[0]


# ---------------------------------------------------------------------------------------------
# ITI-66 Find Document Lists, List read
# ---------------------------------------------------------------------------------------------


@blueprint.get("/List")
@blueprint.post("/List/_search")
def search_lists() -> Response:
    return run("ITI-66", audit.EVENT_QUERY, "E", _iti66)


def _iti66(c: FhirCall) -> Response:
    return _search(c, "ITI-66", "List", iti66.find, iti66.SEARCH_PARAMS, iti66.to_fhir)


@blueprint.get("/List/<rid>")
def read_list(rid: str) -> Response:
    return run("ITI-66", audit.EVENT_QUERY, "E", lambda c: _read_list(c, rid))


def _read_list(c: FhirCall, rid: str) -> Response:
    return _read(c, "List", rid, iti66.by_id, iti66.to_fhir)


# ---------------------------------------------------------------------------------------------
# ITI-68 Retrieve Document / Binary read
# ---------------------------------------------------------------------------------------------


@blueprint.get("/Binary/<rid>")
def read_binary(rid: str) -> Response:
    return run("ITI-68", audit.EVENT_EXPORT, "R", lambda c: _iti68(c, rid))


def _iti68(c: FhirCall, rid: str) -> Response:
    enforce(c.ctx.pdp, c.principal, "retrieve", None)
    with read_session(c.ctx.engine) as session:
        located = iti68.locate(session, rid, c.ctx.settings.repository_unique_id)
    if located is None:
        raise _not_found("Binary", rid)
    entry = located.entry
    c.event.patient_id = entry.patient_id
    c.event.objects = [
        {"type": "Document", "id": entry.unique_id, "repositoryUniqueId": entry.repository_unique_id or ""}
    ]
    enforce(c.ctx.pdp, c.principal, "retrieve", entry.patient_id)
    if not c.ctx.pdp.visible(c.principal, "retrieve", [located.hit]):
        raise _not_found("Binary", rid)
    if located.gone:
        raise FHIRError.of(
            410,
            "deleted",
            f"the document is {entry.status.rsplit(':', 1)[-1]}: it was replaced or withdrawn; search the "
            f"patient's current DocumentReferences",
        )
    stored = located.stored
    if stored is None or not c.ctx.blobs.exists(stored.sha256):
        raise FHIRError.of(404, "not-found", "the document is registered but not stored in this repository")
    accept, format_param = request.headers.get("Accept"), request.args.get("_format")
    # The document itself when Accept admits its type (a CDA asked as text/xml is the CDA); the
    # Binary resource when a FHIR format is asked for; 406 otherwise.
    if (format_param or not iti68.acceptable(accept, stored.mime_type)) and accepts_fhir(
        format_param, accept
    ):
        binary = Binary(contentType=stored.mime_type, data=base64.b64encode(c.ctx.blobs.read(stored.sha256)))
        binary.id = rid
        audit.record(c.ctx.engine, c.event)
        return respond(binary, c.fmt)
    if not iti68.acceptable(accept, stored.mime_type):
        raise FHIRError.of(
            406, "not-supported", f"the document is {stored.mime_type}; Carnet does not transform documents"
        )
    audit.record(c.ctx.engine, c.event)
    chunks: Iterator[bytes] = c.ctx.blobs.iter_chunks(stored.sha256)
    return Response(
        chunks,
        status=200,
        content_type=stored.mime_type,
        headers={"Content-Length": str(stored.size), "ETag": f'"{stored.sha256}"'},
        direct_passthrough=True,
    )


# ---------------------------------------------------------------------------------------------
# Patient read and search (by identifier, e.g. INS)
# ---------------------------------------------------------------------------------------------


@blueprint.get("/Patient/<rid>")
def read_patient(rid: str) -> Response:
    return run("FHIR-Patient", audit.EVENT_QUERY, "E", lambda c: _read_patient(c, rid))


def _read_patient(c: FhirCall, rid: str) -> Response:
    cx = fdt.cx_of_patient_resource_id(rid)
    c.event.patient_id = cx
    c.event.objects = [{"type": "Patient", "id": rid}]
    enforce(c.ctx.pdp, c.principal, "query", cx)
    with read_session(c.ctx.engine) as session:
        found = fpatient.read(session, cx) if cx else None
    if found is None:
        raise _not_found("Patient", rid)
    audit.record(c.ctx.engine, c.event)
    return respond(found, c.fmt)


@blueprint.get("/Patient")
@blueprint.post("/Patient/_search")
def search_patients() -> Response:
    return run("FHIR-Patient", audit.EVENT_QUERY, "E", _search_patients)


def _search_patients(c: FhirCall) -> Response:
    params = _params()
    c.event.objects = _query_objects("Patient", params)
    cxs: list[str] = []
    for value in params.values("_id"):
        cxs += [cx for rid in split_or(value) if (cx := fdt.cx_of_patient_resource_id(rid))]
    identifiers = params.values("identifier")
    params.refuse_unsupported_modifiers(fpatient.SEARCH_PARAMS)
    if not cxs and not identifiers:
        raise FHIRError.of(
            400, "required", "Patient search needs identifier (e.g. urn:oid:1.2.250.1.213.1.4.8|<INS>) or _id"
        )
    page: Page = page_of(params)
    with read_session(c.ctx.engine) as session:
        for value in identifiers:
            for alt in split_or(value):
                cxs += iti67.patient_cxs_of_token(session, token(alt))
        c.event.patient_id = cxs[0] if len(set(cxs)) == 1 else None
        for cx in sorted(set(cxs)):
            enforce(c.ctx.pdp, c.principal, "query", cx)
        found: list[Resource] = [
            p for cx in sorted(set(cxs)) if (p := fpatient.read(session, cx)) is not None
        ]
    audit.record(c.ctx.engine, c.event)
    shown = found[page.offset : page.offset + page.count]
    return respond(searchset(shown, len(found), page, params, f"{c.base}/Patient", c.base), c.fmt)


# ---------------------------------------------------------------------------------------------
# Everything else: precise refusals rather than HTML 404/405 pages
# ---------------------------------------------------------------------------------------------

# What each URL shape serves: (resource type, "type" | "instance") -> Allow. A shape missing here
# serves nothing (Binary has no search, no resource has _history).
_ALLOWED = {
    ("", "type"): "POST",
    ("metadata", "type"): "GET",
    ("DocumentReference", "type"): "GET, PATCH",
    ("DocumentReference", "instance"): "GET, PATCH",
    ("List", "type"): "GET",
    ("List", "instance"): "GET",
    ("Binary", "instance"): "GET",
    ("Patient", "type"): "GET",
    ("Patient", "instance"): "GET",
}
_SERVED = {rtype for rtype, _ in _ALLOWED}


@blueprint.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@blueprint.route("", methods=["GET", "PUT", "PATCH", "DELETE"])
def other(rest: str = "") -> Response:
    fmt = _format()
    parts = rest.split("/")
    rtype = parts[0]
    if rtype not in _SERVED:
        return _outcome(
            FHIRError.of(404, "not-supported", f"resource type '{rtype}' is not served here"), fmt
        )
    allowed = _ALLOWED.get((rtype, "type" if len(parts) == 1 else "instance")) if len(parts) <= 2 else None
    if allowed is None:
        # No such interaction at all (vread, history, Binary search): the URL names nothing.
        return _outcome(
            FHIRError.of(404, "not-supported", f"/fhir/{rest} is not an interaction of Carnet"), fmt
        )
    detail = (
        "a PDSm metadata update is a PATCH of status, securityLabel or isArchived"
        if rtype == "DocumentReference"
        else "submit documents with an ITI-65 transaction Bundle (POST [base])"
    )
    exc = FHIRError.of(405, "not-supported", f"{request.method} /fhir/{rest} is not supported: {detail}")
    exc.headers["Allow"] = allowed
    return _outcome(exc, fmt)
