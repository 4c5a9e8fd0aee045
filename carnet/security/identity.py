"""Identity seam: turn what a request carries into a Principal, or refuse it.

SOAP callers present an IHE XUA / DMP VIHF SAML assertion in the WS-Security header; FHIR
callers a bearer JWT. Token verification is not built yet, so a request that carries a token is
refused rather than trusted unverified; a request without one runs as the anonymous principal
only when the deployment says so (CARNET_ALLOW_ANONYMOUS=1), and is refused otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from carnet.security.principal import ANONYMOUS, Principal
from carnet.soap.envelope import SOAPFault, SOAPRequest
from carnet.xml import qname

if TYPE_CHECKING:
    from carnet.app import Carnet

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


def resolve_soap(ctx: Carnet, soap: SOAPRequest) -> Principal:
    security = soap.header.find(qname(WSSE, "Security")) if soap.header is not None else None
    if security is not None and len(security):
        raise SOAPFault(
            "WS-Security tokens are not verified by this server yet; the request is refused "
            "rather than trusted unverified",
            subcode=None,
        )
    if ctx.settings.allow_anonymous:
        return ANONYMOUS
    raise SOAPFault(
        "authentication required: present an XUA assertion, or run the server with "
        "CARNET_ALLOW_ANONYMOUS=1 for development",
        http_status=401,
    )
