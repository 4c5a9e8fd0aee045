"""TD0.3, setAuthorization: a professional records (AJOUT) or withdraws (SUPPRESSION) the
authorisation the patient gave them, optionally as the patient's médecin traitant.

Body (namespace ``urn:si-dmp-habilitations``), as the DMP clients send it::

    <setAuthorization xmlns="urn:si-dmp-habilitations">
      <action>AJOUT</action>              AJOUT | SUPPRESSION
      <role>MEDECIN_TRAITANT</role>       optional
    </setAuthorization>

The grantee is the caller (the VIHF subject) and the patient the VIHF resource-id. Carnet also
reads an optional ``<patientId>`` (a CX), for development callers whose principal names no patient
(CARNET_ALLOW_ANONYMOUS=1); when both are given they must agree. With ``role`` MEDECIN_TRAITANT,
AJOUT also declares the caller médecin traitant and SUPPRESSION withdraws only that declaration.
The answer is ``setAuthorizationResponse`` with ``status`` OK or ERREUR and a ``context`` text.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from lxml import etree

from carnet.soap.wsdl import Description
from carnet.xml import qname

NS = "urn:si-dmp-habilitations"
ACTION = "urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorization"
ACTIONS = ("AJOUT", "SUPPRESSION")
ROLES = ("MEDECIN_TRAITANT",)


# The WSDL of the service (GET /dmp/habilitations?wsdl).
WSDL = Description(
    [("setAuthorization", ACTION, "hab:setAuthorization", "hab:setAuthorizationResponse")],
    target_namespace=NS,
    types=(
        f'<xs:schema targetNamespace="{NS}" elementFormDefault="qualified">'
        '<xs:element name="setAuthorization"><xs:complexType><xs:sequence>'
        '<xs:element name="action" type="xs:string"/>'
        '<xs:element name="role" type="xs:string" minOccurs="0"/>'
        '<xs:element name="patientId" type="xs:string" minOccurs="0"/>'
        "</xs:sequence></xs:complexType></xs:element>"
        '<xs:element name="setAuthorizationResponse"><xs:complexType><xs:sequence>'
        '<xs:element name="status" type="xs:string"/><xs:element name="context" type="xs:string"/>'
        "</xs:sequence></xs:complexType></xs:element></xs:schema>"
    ),
    namespaces={"hab": NS},
)


class TD03Error(ValueError):
    """The body is not a setAuthorization request; the message says what is wrong."""


@dataclass(frozen=True)
class SetAuthorization:
    action: str
    role: str | None
    patient: str | None


def parse(body: etree._Element) -> SetAuthorization:
    if body.tag != qname(NS, "setAuthorization"):
        raise TD03Error(f"expected setAuthorization in {NS}, got {body.tag}")

    def text(name: str) -> str | None:
        el = body.find(qname(NS, name))
        return (el.text or "").strip() or None if el is not None else None

    action = text("action")
    if action not in ACTIONS:
        raise TD03Error(f"action '{action}' is not one of {', '.join(ACTIONS)}")
    role = text("role")
    if role is not None and role not in ROLES:
        raise TD03Error(f"role '{role}' is not one of {', '.join(ROLES)}")
    return SetAuthorization(action, role, text("patientId"))


def render(ok: bool, context: str) -> str:
    return (
        f'<setAuthorizationResponse xmlns="{NS}"><status>{"OK" if ok else "ERREUR"}</status>'
        f"<context>{escape(context)}</context></setAuthorizationResponse>"
    )
