"""Identity seam: turn what a request carries into a Principal, or refuse it.

SOAP callers present an IHE XUA / DMP VIHF SAML assertion in the WS-Security header
(``carnet.security.xua``), verified against CARNET_TRUST_STORE only; HTTP (FHIR) callers a bearer
JWT (``carnet.security.jwt``), verified against CARNET_JWT_KEYS only. A token that does not verify
is refused, as XUA requires, with a SOAP Fault (``wsse:`` subcode) or an HTTP 401, and the refusal
is audited. A request without a token runs as the anonymous principal only when the deployment
says so (CARNET_ALLOW_ANONYMOUS=1), and is refused otherwise.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from werkzeug.datastructures import Headers

from carnet.security import audit, replay, xua
from carnet.security import jwt as bearer
from carnet.security.pki import TrustError, load_public_keys
from carnet.security.principal import ANONYMOUS, Principal
from carnet.security.vihf import FAILED_AUTHENTICATION, INVALID_SECURITY, TokenError
from carnet.soap.envelope import WSSE, SOAPFault, SOAPRequest
from carnet.xml import qname

if TYPE_CHECKING:
    from carnet.app import Carnet

log = logging.getLogger(__name__)

# Who a refused caller is in the audit trail: nobody verified.
UNVERIFIED = Principal(kind="anonymous", id="unverified-token", name="caller whose token was refused")


class AuthenticationError(Exception):
    """An HTTP request is refused before any data is touched: 401 with a reason for the caller."""

    status = 401

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _audit_refusal(ctx: Carnet, transaction: str, reason: str, source: str | None) -> None:
    event = audit.AuditEvent(
        transaction, audit.EVENT_USER_AUTHENTICATION, "E", UNVERIFIED, source_address=source
    )
    event.outcome = audit.SERIOUS_FAILURE
    event.detail = reason[:4000]
    try:
        audit.record(ctx.engine, event)
    except Exception:  # the caller must still get its refusal; audit.record logged the cause
        log.warning("refused token not audited: %s", reason)


def _remote_addr() -> str | None:
    from flask import has_request_context, request

    return request.remote_addr if has_request_context() else None


def resolve_soap(ctx: Carnet, soap: SOAPRequest) -> Principal:
    security = soap.header.find(qname(WSSE, "Security")) if soap.header is not None else None
    if security is not None and len(security):
        trust_store = ctx.settings.trust_store
        if trust_store is None:
            reason = (
                "this server has no trust store for XUA assertions (CARNET_TRUST_STORE); "
                "the token is refused rather than trusted unverified"
            )
            _audit_refusal(ctx, "XUA", reason, _remote_addr())
            raise SOAPFault(reason, subcode=INVALID_SECURITY, http_status=401)
        try:
            # The trust store's CRLs (carnet.signature.trust) apply to assertion signers too.
            trust = ctx.signatures.trust
            return xua.verify(
                security,
                trust_store,
                xua.Window(max_age=timedelta(seconds=ctx.settings.token_max_age)),
                check_chain=trust.validate if trust is not None else None,
                replay=lambda claims: replay.check(ctx.engine, claims, ctx.settings.xua_single_use),
            )
        except TokenError as exc:
            _audit_refusal(ctx, "XUA", exc.reason, _remote_addr())
            raise SOAPFault(
                f"XUA assertion refused: {exc.reason}", subcode=exc.subcode, http_status=401
            ) from exc
    if ctx.settings.allow_anonymous:
        return ANONYMOUS
    raise SOAPFault(
        "authentication required: present an XUA assertion, or run the server with "
        "CARNET_ALLOW_ANONYMOUS=1 for development",
        subcode=FAILED_AUTHENTICATION,
        http_status=401,
    )


@functools.lru_cache(maxsize=8)
def _jwt_keys(path: str, mtime_ns: int) -> dict[str, PublicKeyTypes]:
    # Keyed by modification time: replacing the key file takes effect without a restart.
    return load_public_keys(Path(path))


def resolve_http(ctx: Carnet, headers: Mapping[str, str] | Headers) -> Principal:
    """The principal of an HTTP (FHIR) request from its ``Authorization: Bearer <JWT>`` header."""
    authorization = headers.get("Authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if authorization:
        if scheme.lower() != "bearer" or not token.strip():
            reason = "the Authorization header must be 'Bearer <JWT>'"
            _audit_refusal(ctx, "IUA", reason, _remote_addr())
            raise AuthenticationError(reason)
        keys_path = ctx.settings.jwt_keys
        try:
            if keys_path is None:
                raise TokenError(
                    "this server has no JWT verification keys (CARNET_JWT_KEYS); "
                    "the token is refused rather than trusted unverified"
                )
            try:
                keys = _jwt_keys(str(keys_path), Path(keys_path).stat().st_mtime_ns)
            except (OSError, TrustError) as exc:
                raise TokenError(f"the JWT verification keys cannot be read: {exc}") from exc
            return bearer.verify(
                token.strip(),
                keys,
                ctx.settings.jwt_audience,
                timedelta(seconds=ctx.settings.token_max_age),
            )
        except TokenError as exc:
            _audit_refusal(ctx, "IUA", exc.reason, _remote_addr())
            raise AuthenticationError(exc.reason) from exc
    if ctx.settings.allow_anonymous:
        return ANONYMOUS
    raise AuthenticationError(
        "authentication required: present 'Authorization: Bearer <JWT>', or run the server with "
        "CARNET_ALLOW_ANONYMOUS=1 for development"
    )
