"""A SOAP 1.2 service on Flask: read the request (plain or MTOM), resolve the principal,
dispatch on wsa:Action, and answer with a response envelope, an MTOM package or a Fault.

Each XDS actor (registry, repository) declares its operations as ``Operation`` entries; this module
owns everything common: size limits, MTOM spooling, the identity seam, faults and WSDL serving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, cast

from flask import Blueprint, Response, current_app, request

from carnet.security import identity
from carnet.security.principal import Principal
from carnet.soap import mtom, wsdl
from carnet.soap.envelope import SOAPFault, SOAPRequest, envelope, fault, read_envelope

if TYPE_CHECKING:
    from carnet.app import Carnet

log = logging.getLogger(__name__)

SOAP_CT = "application/soap+xml; charset=UTF-8"


@dataclass
class Call:
    """What an operation handler gets: the parsed request and who is asking, from where."""

    soap: SOAPRequest
    principal: Principal
    remote_addr: str | None
    attachments: mtom.MultipartMessage | None
    carnet: Carnet


@dataclass
class Reply:
    """A handler's answer: the body XML, and MTOM attachments if any (ITI-43)."""

    body: str
    attachments: list[tuple[str, str, mtom.Part | bytes]] | None = None


@dataclass(frozen=True)
class Operation:
    action: str
    handler: Callable[[Call], Reply]
    response_action: str


def carnet_ctx() -> Carnet:
    ctx: Carnet = current_app.extensions["carnet"]
    return ctx


def _read_request(ctx: Carnet) -> tuple[bytes | None, mtom.MultipartMessage | None, str | None]:
    ctype = request.headers.get("Content-Type", "")
    length = request.content_length
    limit = ctx.settings.max_request_bytes
    if length is not None and length > limit:
        raise SOAPFault(f"request of {length} bytes exceeds the limit of {limit} bytes", http_status=413)
    _, params = mtom.parse_content_type(ctype) if ctype else ("", {})
    http_action = params.get("action")
    if mtom.is_multipart(ctype):
        try:
            message = mtom.read_multipart(
                cast(BinaryIO, request.stream), ctype, spool_dir=str(ctx.blobs.tmp_dir), max_total_size=limit
            )
        except mtom.MTOMError as exc:
            raise SOAPFault(f"malformed MTOM/XOP package: {exc}") from exc
        return None, message, http_action
    return _read_capped(cast(BinaryIO, request.stream), limit), None, http_action


def _read_capped(stream: BinaryIO, limit: int, chunk: int = 1 << 16) -> bytes:
    # Read in chunks: read(limit) would make some streams allocate the whole limit up front.
    buf = bytearray()
    while block := stream.read(chunk):
        buf += block
        if len(buf) > limit:
            raise SOAPFault(f"request exceeds the limit of {limit} bytes", http_status=413)
    return bytes(buf)


def soap_endpoint(
    bp: Blueprint,
    rule: str,
    service: str,
    description: wsdl.Description,
    operations: list[Operation],
) -> None:
    by_action = {op.action: op for op in operations}

    def view() -> Response:
        if request.method == "GET":
            if "wsdl" in {k.lower() for k in request.args}:
                return _wsdl(service, description)
            return Response(
                "POST SOAP 1.2 requests here; GET ?wsdl for the service description\n", mimetype="text/plain"
            )
        ctx = carnet_ctx()
        message: mtom.MultipartMessage | None = None
        relates: str | None = None
        try:
            raw, message, http_action = _read_request(ctx)
            if message is not None:
                soap = read_envelope(message.root.read(), http_action)
                soap.extra["xop"] = mtom.resolve_xop(soap.envelope, message)
            else:
                assert raw is not None
                soap = read_envelope(raw, http_action)
            relates = soap.message_id
            op = by_action.get(soap.action or "")
            if op is None:
                raise SOAPFault(f"action '{soap.action}' is not served at this endpoint", subcode=None)
            principal = identity.resolve_soap(ctx, soap)
            reply = op.handler(Call(soap, principal, request.remote_addr, message, ctx))
            return _respond(reply, op.response_action, relates)
        except SOAPFault as f:
            return Response(fault(f, relates), status=f.http_status, content_type=SOAP_CT)
        except mtom.MTOMError as exc:
            return Response(
                fault(SOAPFault(f"malformed MTOM/XOP package: {exc}"), relates),
                status=400,
                content_type=SOAP_CT,
            )
        except Exception:
            # A defect must still answer in SOAP, without leaking internals to the caller.
            log.exception("unexpected error in %s", request.path)
            return Response(
                fault(SOAPFault("internal server error", code="Receiver", http_status=500), relates),
                status=500,
                content_type=SOAP_CT,
            )
        finally:
            # Whatever was not moved into the blob store is removed: no orphan temp files.
            if message is not None:
                message.discard()

    view.__name__ = f"soap_{bp.name}"
    bp.add_url_rule(rule, view_func=view, methods=["GET", "POST"])


def _respond(reply: Reply, action: str, relates: str | None) -> Response:
    body = envelope(reply.body, action, relates)
    if reply.attachments is None:
        return Response(body, content_type=SOAP_CT)
    ctype, chunks = mtom.write_multipart(body, reply.attachments, action=action)

    def stream() -> Iterator[bytes]:
        yield from chunks

    return Response(stream(), content_type=ctype, direct_passthrough=True)


def _wsdl(service: str, description: wsdl.Description) -> Response:
    # The address in the WSDL is the endpoint the client asked for.
    return Response(wsdl.render(service, description, request.base_url), mimetype="text/xml")
