"""The DMP's own SOAP services, beside the XDS endpoints: ``/dmp/patients`` (TD0.2 existence test)
and ``/dmp/habilitations`` (TD0.3 setAuthorization).

Both run on the same SOAP stack as ITI-18/41/42/43 (``carnet.soap.service``): WS-Addressing
dispatch, the XUA/VIHF identity check, SOAP Faults for SOAP-level errors. Application refusals are
answered in the service's own response format, and every call is audited by ``carnet.dmp.api``.
"""

from __future__ import annotations

from flask import Blueprint

from carnet.dmp import td02, td03
from carnet.dmp.api import DMP
from carnet.dmp.transaction import DossierError
from carnet.security.policy import AccessDenied
from carnet.soap.envelope import SOAPFault
from carnet.soap.service import Call, Operation, Reply, soap_endpoint

# One blueprint per service: the SOAP stack names its view after the blueprint.
patients_blueprint = Blueprint("dmp_patients", __name__)
habilitations_blueprint = Blueprint("dmp_habilitations", __name__)


def _home_oid(call: Call) -> str:
    return call.carnet.settings.home_community_id.removeprefix("urn:oid:")


def _patient(call: Call, named: str | None) -> str:
    token_patient = call.principal.patient_id
    if named and token_patient:
        api_patient = DMP.patient_of(named)
        if api_patient != token_patient:
            raise DossierError(
                f"the request names patient {api_patient} but the VIHF names {token_patient}", 400
            )
    patient = named or token_patient
    if not patient:
        raise DossierError(
            "the VIHF names no patient (urn:oasis:names:tc:xacml:2.0:resource:resource-id)", 400
        )
    return patient


def handle_td02(call: Call) -> Reply:
    try:
        query = td02.parse(call.soap.body)
    except td02.TD02Error as exc:
        raise SOAPFault(f"not a TD0.2 existence test: {exc}") from exc
    try:
        status = DMP(call.carnet.engine, call.carnet.pdp).status(
            call.principal, query.patient, call.remote_addr
        )
    except (AccessDenied, DossierError) as exc:
        code = "LocalPolicyRestriction" if isinstance(exc, AccessDenied) else "InvalidRequest"
        return Reply(td02.render_error(query, str(exc), code, _home_oid(call)))
    return Reply(td02.render(query, status, _home_oid(call)))


def handle_td03(call: Call) -> Reply:
    try:
        request = td03.parse(call.soap.body)
    except td03.TD03Error as exc:
        raise SOAPFault(f"not a TD0.3 setAuthorization request: {exc}") from exc
    dmp = DMP(call.carnet.engine, call.carnet.pdp)
    p = call.principal
    try:
        patient = _patient(call, request.patient)
        if request.role == "MEDECIN_TRAITANT":
            if request.action == "AJOUT":
                dmp.authorize(p, patient, "professional", p.id, call.remote_addr)
                dmp.set_medecin_traitant(p, patient, p.id, call.remote_addr)
                return Reply(td03.render(True, f"{p.id} authorised and declared médecin traitant"))
            dmp.set_medecin_traitant(p, patient, None, call.remote_addr)
            return Reply(td03.render(True, f"{p.id} is no longer médecin traitant"))
        if request.action == "AJOUT":
            dmp.authorize(p, patient, "professional", p.id, call.remote_addr)
            return Reply(td03.render(True, f"authorisation of {p.id} recorded"))
        dmp.revoke(p, patient, "professional", p.id, call.remote_addr)
        return Reply(td03.render(True, f"authorisation of {p.id} withdrawn"))
    except (AccessDenied, DossierError) as exc:
        return Reply(td03.render(False, str(exc)))


soap_endpoint(
    patients_blueprint,
    "/dmp/patients",
    "DMPPatients",
    td02.WSDL,
    [Operation(td02.ACTION, handle_td02, td02.RESPONSE_ACTION)],
)
soap_endpoint(
    habilitations_blueprint,
    "/dmp/habilitations",
    "DMPHabilitations",
    td03.WSDL,
    [Operation(td03.ACTION, handle_td03, td03.ACTION + "Response")],
)

blueprints = (patients_blueprint, habilitations_blueprint)
