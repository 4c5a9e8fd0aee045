"""The DMP on FHIR: Consent (authorisations, oppositions, médecin traitant, the creation consent),
AuditEvent search (who accessed the record, IHE BALP style) and the dossier lifecycle operations.

Mounted beside the MHD facade under ``/fhir`` (its own blueprint; static routes take precedence over
the facade's catch-all). Same seams as every FHIR interaction: the bearer JWT is resolved by
``identity.resolve_http``, every change and read goes through ``carnet.dmp.api`` (policy decision +
audit record), errors are OperationOutcomes. AuditEvent is read-only: any write is 405.

    GET    /fhir/Consent?patient=urn:oid:OID|NIR        the patient's consents
    POST   /fhir/Consent                                 grant an authorisation, set an opposition,
                                                         designate the médecin traitant
    DELETE /fhir/Consent/{id}                            revoke / lift / withdraw
    GET    /fhir/AuditEvent?patient=...[&date=geYYYY-MM-DD][&date=ltYYYY-MM-DD][&_count=N]
    POST   /fhir/$dmp-create | $dmp-close | $dmp-reactivate   (Parameters)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import (
    CapabilityStatementRestResource,
    CapabilityStatementRestResourceOperation,
)
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.resource import Resource
from flask import Blueprint, Response, current_app, request

from carnet.dmp import ids
from carnet.dmp.api import DMP
from carnet.dmp.models import Authorization, Dossier
from carnet.dmp.traces import Trace
from carnet.dmp.transaction import DossierError
from carnet.fhir.capability import FHIR_SP, Contribution, interactions, search_params
from carnet.fhir.formats import CONTENT_TYPE, Format, parse_resource, render, response_format
from carnet.fhir.outcome import FHIRError, from_denial, operation_outcome, to_errors
from carnet.security import audit, identity
from carnet.security.atna import EVENT_NAMES, TRANSACTION_NAMES
from carnet.security.policy import AccessDenied
from carnet.security.principal import Principal
from carnet.security.vihf import ACCESS_MODE_SYSTEM, ACCESS_MODE_SYSTEMS, ACCESS_MODES, PROFESSION_SYSTEM

if TYPE_CHECKING:
    from carnet.app import Carnet

blueprint = Blueprint("dmp_fhir", __name__, url_prefix="/fhir")

PS_ID_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"  # PS_IdNat (RPPS/ADELI-based national id)
STRUCTURE_ID_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"  # Struct_IdNat
CARNET_DMP_SYSTEM = "urn:oid:1.2.250.1.999.1.5.1"  # Carnet-local DMP codes (docs/dmp.md)
DCM = "http://dicom.nema.org/resources/ontology/DCM"
OPPOSITIONS = ("bris_de_glace", "centre_15")
# Access modes as they appear in Consent ids ("_" is not allowed in a FHIR id).
_MODE_IDS = {"bris_de_glace": "bris-de-glace", "centre_15": "centre-15"}


# ---------------------------------------------------------------------------------------------
# Seams
# ---------------------------------------------------------------------------------------------


def _ctx() -> Carnet:
    ctx: Carnet = current_app.extensions["carnet"]
    return ctx


def _format() -> Format:
    try:
        return response_format(request.args.get("_format"), request.headers.get("Accept"))
    except FHIRError:
        return "json"


def _respond(resource: Resource, status: int = 200) -> Response:
    fmt = _format()
    return Response(render(resource, fmt), status=status, content_type=CONTENT_TYPE[fmt])


def _fail(exc: FHIRError) -> Response:
    fmt = _format()
    return Response(
        render(operation_outcome(exc.issues), fmt),
        status=exc.status,
        content_type=CONTENT_TYPE[fmt],
        headers=exc.headers,
    )


def _serve(handler: Callable[[DMP, Principal], Response]) -> Response:
    """Authenticate, run, and turn refusals into OperationOutcomes (the DMP API audits them)."""
    ctx = _ctx()
    try:
        principal = identity.resolve_http(ctx, request.headers)
    except identity.AuthenticationError as exc:  # audited by identity
        refusal = FHIRError.of(401, "login", exc.reason)
        refusal.headers["WWW-Authenticate"] = 'Bearer realm="carnet"'
        return _fail(refusal)
    try:
        return handler(DMP(ctx.engine, ctx.pdp), principal)
    except AccessDenied as exc:  # audited by the DMP API
        return _fail(from_denial(exc))
    except DossierError as exc:  # audited by the DMP API
        code = {400: "invalid", 404: "not-found"}.get(exc.status, "conflict")
        return _fail(FHIRError.of(exc.status, code, exc.reason))
    except FHIRError as exc:
        # Refused before reaching the DMP API (malformed or unsupported request): traced too.
        event = audit.AuditEvent(
            f"FHIR-{request.path.removeprefix('/fhir/').split('/')[0]}"[:32],
            audit.EVENT_PATIENT_RECORD,
            "E",
            principal,
            source_address=request.remote_addr,
        )
        audit.record_failure(ctx.engine, event, to_errors(exc))
        return _fail(exc)


def _patient_param() -> str:
    value = request.args.get("patient") or request.args.get("patient.identifier")
    if not value:
        raise FHIRError.of(400, "required", "the search needs patient=urn:oid:<INS OID>|<NIR>")
    return value


def _token(patient_id: str) -> str:
    """The patient part of a Consent id: ``NIR.OID`` (FHIR ids allow letters, digits, '-', '.')."""
    oid, nir = ids.oid_and_id(patient_id)
    if not nir.isalnum() or len(nir) + len(oid) > 40:
        raise FHIRError.of(400, "not-supported", f"patient id '{patient_id}' cannot name a FHIR Consent")
    return f"{nir}.{oid}"


def _untoken(value: str) -> str:
    nir, _, oid = value.partition(".")
    if not nir or not oid:
        raise FHIRError.of(404, "not-found", f"no Consent for '{value}'")
    return f"{nir}^^^&{oid}&ISO"


def _patient_identifier(patient_id: str) -> dict[str, str]:
    oid, nir = ids.oid_and_id(patient_id)
    return {"system": f"urn:oid:{oid}", "value": nir}


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).isoformat()


# ---------------------------------------------------------------------------------------------
# Consent
# ---------------------------------------------------------------------------------------------


def _consent(
    cid: str, patient_id: str, status: str, provision: dict[str, Any], when: datetime | None, rule: str
) -> Consent:
    return Consent.model_validate(
        {
            "resourceType": "Consent",
            "id": cid,
            "status": status,
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [
                {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}
            ],
            "patient": {"identifier": _patient_identifier(patient_id)},
            "dateTime": _iso(when),
            "policyRule": {"text": rule},
            "provision": provision,
        }
    )


def _actor(
    system: str,
    value: str,
    role: str = "IRCP",
    role_system: str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
) -> dict[str, Any]:
    return {
        "role": {"coding": [{"system": role_system, "code": role}]},
        "reference": {"identifier": {"system": system, "value": value}},
    }


def creation_consent(dossier: Dossier) -> Consent:
    actor = _actor(CARNET_DMP_SYSTEM, dossier.consent_collected_by, "CONSENT_COLLECTOR", CARNET_DMP_SYSTEM)
    return _consent(
        f"dmp-{_token(dossier.patient_id)}",
        dossier.patient_id,
        "active" if dossier.status == "active" else "inactive",
        {"type": "permit", "actor": [actor]},
        dossier.consent_at,
        "Consentement du patient à la création de son DMP",
    )


def authorisation_consent(a: Authorization) -> Consent:
    system = PS_ID_SYSTEM if a.grantee_kind == "professional" else STRUCTURE_ID_SYSTEM
    access = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}
    return _consent(
        f"authorization-{a.id}",
        a.patient_id,
        "active" if a.status == "granted" else "inactive",
        {"type": "permit", "actor": [_actor(system, a.grantee_id)], "action": [access]},
        a.granted_at,
        "Autorisation d'accès au DMP (TD0.3)",
    )


def medecin_traitant_consent(dossier: Dossier) -> Consent:
    assert dossier.medecin_traitant
    actor = _actor(PS_ID_SYSTEM, dossier.medecin_traitant, "MEDECIN_TRAITANT", CARNET_DMP_SYSTEM)
    return _consent(
        f"medecin-traitant-{_token(dossier.patient_id)}",
        dossier.patient_id,
        "active",
        {"type": "permit", "actor": [actor]},
        dossier.updated_at,
        "Médecin traitant DMP",
    )


def opposition_consent(dossier: Dossier, mode: str) -> Consent:
    purpose = {"system": f"urn:oid:{ACCESS_MODE_SYSTEM}", "code": mode, "display": ACCESS_MODES[mode]}
    return _consent(
        f"opposition-{_MODE_IDS[mode]}-{_token(dossier.patient_id)}",
        dossier.patient_id,
        "active",
        {"type": "deny", "purpose": [purpose]},
        dossier.updated_at,
        f"Opposition du patient à l'accès {ACCESS_MODES[mode].lower()}",
    )


def consents_of(dossier: Dossier, authorisations: list[Authorization]) -> list[Consent]:
    """Every consent of a DMP: its creation, the authorisations, the médecin traitant, oppositions."""
    out = [creation_consent(dossier), *(authorisation_consent(a) for a in authorisations)]
    if dossier.medecin_traitant:
        out.append(medecin_traitant_consent(dossier))
    for mode, opposed in (
        ("bris_de_glace", dossier.opposes_bris_de_glace),
        ("centre_15", dossier.opposes_centre_15),
    ):
        if opposed:
            out.append(opposition_consent(dossier, mode))
    return out


def _bundle(resources: list[Resource], base: str) -> Bundle:
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(resources),
            "entry": [
                {
                    "fullUrl": f"{base}/{r.get_resource_type()}/{r.id}",
                    "resource": r.model_dump(exclude_none=True),
                    "search": {"mode": "match"},
                }
                for r in resources
            ],
        }
    )


def _base() -> str:
    return request.url_root.rstrip("/") + "/fhir"


@blueprint.get("/Consent")
def search_consent() -> Response:
    def handler(dmp: DMP, principal: Principal) -> Response:
        patient = _patient_param()
        dossier, auths = dmp.consents(
            principal, patient, include_revoked=request.args.get("status") == "inactive"
        )
        consents = consents_of(dossier, auths)
        if request.args.get("status"):
            consents = [c for c in consents if c.status == request.args["status"]]
        return _respond(_bundle(list(consents), _base()))

    return _serve(handler)


def _identifier(ref: Any, what: str) -> tuple[str, str]:
    ident = getattr(ref, "identifier", None) if ref is not None else None
    if ident is None or not ident.system or not ident.value:
        raise FHIRError.of(400, "required", f"{what} needs identifier.system and identifier.value")
    return str(ident.system), str(ident.value)


@blueprint.post("/Consent")
def create_consent() -> Response:
    def handler(dmp: DMP, principal: Principal) -> Response:
        resource = parse_resource(request.get_data(), request.content_type)
        if not isinstance(resource, Consent):
            raise FHIRError.of(400, "invalid", f"expected a Consent, got {resource.get_resource_type()}")
        if resource.status != "active":
            raise FHIRError.of(400, "invalid", "a new Consent must have status 'active'")
        system, value = _identifier(resource.patient, "Consent.patient")
        patient = dmp.patient_of(f"{system}|{value}")
        provision = resource.provision
        if provision is None or provision.type not in ("permit", "deny"):
            raise FHIRError.of(400, "required", "Consent.provision.type must be permit or deny")
        if provision.type == "deny":
            modes = {
                p.code
                for p in provision.purpose or []
                if (p.system or "").removeprefix("urn:oid:") in ACCESS_MODE_SYSTEMS and p.code in OPPOSITIONS
            }
            if not modes or len(modes) != len(provision.purpose or []):
                raise FHIRError.of(
                    400,
                    "invalid",
                    "a deny Consent opposes access modes: provision.purpose must be "
                    f"bris_de_glace and/or centre_15 in urn:oid:{ACCESS_MODE_SYSTEM}",
                )
            dossier = dmp.set_oppositions(
                principal,
                patient,
                True if "bris_de_glace" in modes else None,
                True if "centre_15" in modes else None,
                request.remote_addr,
            )
            return _created(opposition_consent(dossier, sorted(modes)[0]))
        actors = provision.actor or []
        if len(actors) != 1:
            raise FHIRError.of(400, "invalid", "a permit Consent names exactly one provision.actor")
        actor_system, actor_id = _identifier(actors[0].reference, "Consent.provision.actor.reference")
        roles = {(c.system, c.code) for c in (actors[0].role.coding or [])} if actors[0].role else set()
        if (CARNET_DMP_SYSTEM, "MEDECIN_TRAITANT") in roles:
            dossier = dmp.set_medecin_traitant(principal, patient, actor_id, request.remote_addr)
            return _created(medecin_traitant_consent(dossier))
        kinds = {PS_ID_SYSTEM: "professional", STRUCTURE_ID_SYSTEM: "structure"}
        if actor_system not in kinds:
            raise FHIRError.of(
                400,
                "invalid",
                f"actor identifier system must be {PS_ID_SYSTEM} (professional) "
                f"or {STRUCTURE_ID_SYSTEM} (structure), not {actor_system}",
            )
        auth = dmp.authorize(principal, patient, kinds[actor_system], actor_id, request.remote_addr)
        return _created(authorisation_consent(auth))

    return _serve(handler)


def _created(consent: Consent) -> Response:
    """201 with the Consent as written (no read-back: the writer may not be entitled to read)."""
    resp = _respond(consent, 201)
    resp.headers["Location"] = f"{_base()}/Consent/{consent.id}"
    return resp


@blueprint.delete("/Consent/<cid>")
def delete_consent(cid: str) -> Response:
    def handler(dmp: DMP, principal: Principal) -> Response:
        if cid.startswith("authorization-") and cid.removeprefix("authorization-").isdigit():
            auth = _authorization(dmp, int(cid.removeprefix("authorization-")))
            dmp.revoke(principal, auth.patient_id, auth.grantee_kind, auth.grantee_id, request.remote_addr)
        elif cid.startswith("opposition-"):
            rest = cid.removeprefix("opposition-")
            mode = next((m for m, mid in _MODE_IDS.items() if rest.startswith(mid + "-")), None)
            if mode is None:
                raise FHIRError.of(404, "not-found", f"no Consent '{cid}'")
            tok = rest.removeprefix(_MODE_IDS[mode] + "-")
            dmp.set_oppositions(
                principal,
                _untoken(tok),
                False if mode == "bris_de_glace" else None,
                False if mode == "centre_15" else None,
                request.remote_addr,
            )
        elif cid.startswith("medecin-traitant-"):
            dmp.set_medecin_traitant(
                principal, _untoken(cid.removeprefix("medecin-traitant-")), None, request.remote_addr
            )
        else:
            raise FHIRError.of(
                405 if cid.startswith("dmp-") else 404,
                "not-supported" if cid.startswith("dmp-") else "not-found",
                "the creation consent ends with the DMP: use $dmp-close"
                if cid.startswith("dmp-")
                else f"no Consent '{cid}'",
            )
        return Response(status=204)

    return _serve(handler)


def _authorization(dmp: DMP, auth_id: int) -> Authorization:
    from carnet.db import read_session

    with read_session(dmp.engine) as session:
        auth = session.get(Authorization, auth_id)
    if auth is None:
        raise FHIRError.of(404, "not-found", f"no Consent 'authorization-{auth_id}'")
    return auth


# ---------------------------------------------------------------------------------------------
# AuditEvent (read-only)
# ---------------------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def audit_event(trace: Trace) -> AuditEvent:
    """One audit record as a FHIR AuditEvent, in the shape IHE BALP gives the XDS/MHD events."""
    p = trace.principal
    professional = p.get("kind") in ("professional", "structure")
    mode = trace.access_mode if professional and trace.access_mode in ACCESS_MODES else None
    purpose = (
        [{"coding": [_coding(f"urn:oid:{ACCESS_MODE_SYSTEM}", mode, ACCESS_MODES[mode])]}] if mode else []
    )
    requestor: dict[str, Any] = {
        "type": {"coding": [_coding(DCM, "110153", "Source Role ID")]},
        "who": {
            "identifier": {"system": PS_ID_SYSTEM, "value": p.get("id")}
            if professional
            else {"value": p.get("id")},
            "display": p.get("name") or p.get("id"),
        },
        "requestor": True,
    }
    if p.get("role"):
        requestor["role"] = [{"coding": [_coding(f"urn:oid:{PROFESSION_SYSTEM}", str(p["role"]))]}]
    if p.get("token"):
        requestor["policy"] = [p["token"]]  # BALP: the SAML assertion ID / JWT id
    if trace.source_address:
        requestor["network"] = {"address": trace.source_address, "type": "2"}
    if purpose:
        requestor["purposeOfUse"] = purpose
    entities: list[dict[str, Any]] = []
    if trace.patient_id:
        patient: dict[str, Any] = {
            "what": {"identifier": _patient_identifier(trace.patient_id)},
            "type": _coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"),
            "role": _coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"),
        }
        if trace.reason:
            patient["detail"] = [{"type": "AccessReason", "valueString": trace.reason}]
        entities.append(patient)
    for obj in trace.objects:
        kind = obj.get("type", "")
        role = {"SubmissionSet": ("20", "Job"), "Query": ("24", "Query")}.get(kind, ("3", "Report"))
        entity: dict[str, Any] = {
            "what": {"identifier": {"value": obj.get("id", "")}, "display": kind},
            "type": _coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"),
            "role": _coding("http://terminology.hl7.org/CodeSystem/object-role", role[0], role[1]),
        }
        if kind == "Query" and obj.get("query"):
            entity["query"] = obj["query"]
        entities.append(entity)
    data: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(trace.id),
        "type": _coding(DCM, trace.event_id, EVENT_NAMES.get(trace.event_id)),
        "subtype": [
            _coding("urn:ihe:event-type-code", trace.transaction, TRANSACTION_NAMES.get(trace.transaction))
        ],
        "action": trace.action,
        "recorded": _iso(trace.recorded_at),
        "outcome": str(trace.outcome),
        "agent": [
            requestor,
            {
                "type": {"coding": [_coding(DCM, "110152", "Destination Role ID")]},
                "who": {"display": "Carnet"},
                "requestor": False,
            },
        ],
        "source": {
            "observer": {"display": "Carnet"},
            "type": [
                _coding(
                    "http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server"
                )
            ],
        },
    }
    if trace.detail:
        data["outcomeDesc"] = trace.detail
    if purpose:
        data["purposeOfEvent"] = purpose
    if entities:
        data["entity"] = entities
    return AuditEvent.model_validate(data)


def _date_bounds() -> tuple[datetime | None, datetime | None]:
    since = until = None
    for value in request.args.getlist("date"):
        prefix, rest = value[:2], value[2:]
        try:
            when = datetime.fromisoformat(rest)
        except ValueError as exc:
            raise FHIRError.of(
                400, "invalid", f"date '{value}' must be geYYYY-MM-DD[Thh:mm:ss] or lt..."
            ) from exc
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        if prefix == "ge":
            since = when
        elif prefix == "lt":
            until = when
        else:
            raise FHIRError.of(400, "not-supported", f"date prefix '{prefix}' is not supported (ge, lt)")
    return since, until


@blueprint.get("/AuditEvent")
def search_audit_events() -> Response:
    def handler(dmp: DMP, principal: Principal) -> Response:
        patient = _patient_param()
        since, until = _date_bounds()
        count = request.args.get("_count", "100")
        if not count.isdigit() or not 0 < int(count) <= 1000:
            raise FHIRError.of(400, "invalid", "_count must be a number from 1 to 1000")
        trail = dmp.traces(principal, patient, since, until, int(count), request.remote_addr)
        return _respond(_bundle([audit_event(t) for t in trail], _base()))

    return _serve(handler)


@blueprint.route("/AuditEvent", methods=["POST", "PUT", "PATCH", "DELETE"])
@blueprint.route("/AuditEvent/<rid>", methods=["POST", "PUT", "PATCH", "DELETE"])
def audit_events_are_read_only(rid: str | None = None) -> Response:
    return _fail(FHIRError.of(405, "not-supported", "audit records cannot be created, changed or deleted"))


# ---------------------------------------------------------------------------------------------
# Dossier lifecycle operations
# ---------------------------------------------------------------------------------------------


def _parameters() -> dict[str, Any]:
    resource = parse_resource(request.get_data(), request.content_type)
    if not isinstance(resource, Parameters):
        raise FHIRError.of(400, "invalid", f"expected Parameters, got {resource.get_resource_type()}")
    out: dict[str, Any] = {}
    for p in resource.parameter or []:
        for attr in ("valueIdentifier", "valueString", "valueBoolean"):
            value = getattr(p, attr, None)
            if value is not None and p.name:
                out[p.name] = value
    ident = out.get("patient")
    if ident is None or not getattr(ident, "system", None) or not getattr(ident, "value", None):
        raise FHIRError.of(
            400, "required", "parameter 'patient' (valueIdentifier with system and value) is required"
        )
    out["patient"] = f"{ident.system}|{ident.value}"
    return out


def _dossier_outcome(dossier: Dossier, message: str, status: int = 200) -> Response:
    from carnet.fhir.outcome import Issue

    return _respond(
        operation_outcome(
            [Issue("informational", f"{message}: {dossier.patient_id}", severity="information")]
        ),
        status,
    )


@blueprint.post("/$dmp-create")
def dmp_create() -> Response:
    def handler(dmp: DMP, principal: Principal) -> Response:
        params = _parameters()
        if not params.get("email"):
            raise FHIRError.of(400, "required", "parameter 'email' is required: the DMP notifies the patient")
        dossier = dmp.create(
            principal,
            params["patient"],
            str(params["email"]),
            params.get("consentNote"),
            bool(params.get("opposeBrisDeGlace", False)),
            bool(params.get("opposeCentre15", False)),
            params.get("medecinTraitant"),
            request.remote_addr,
        )
        return _dossier_outcome(dossier, "DMP created", 201)

    return _serve(handler)


@blueprint.post("/$dmp-close")
def dmp_close() -> Response:
    def handler(dmp: DMP, principal: Principal) -> Response:
        params = _parameters()
        dossier = dmp.close(
            principal, params["patient"], str(params.get("reason") or ""), request.remote_addr
        )
        return _dossier_outcome(dossier, "DMP closed")

    return _serve(handler)


@blueprint.post("/$dmp-reactivate")
def dmp_reactivate() -> Response:
    def handler(dmp: DMP, principal: Principal) -> Response:
        params = _parameters()
        dossier = dmp.reactivate(principal, params["patient"], params.get("consentNote"), request.remote_addr)
        return _dossier_outcome(dossier, "DMP reactivated")

    return _serve(handler)


# ---------------------------------------------------------------------------------------------
# What this blueprint declares in the CapabilityStatement of /fhir
# ---------------------------------------------------------------------------------------------

_PATIENT = ("token", None, "the patient's INS: urn:oid:<INS OID>|<NIR> (patient.identifier alike)")


def capabilities() -> Contribution:
    operation_doc = {
        "dmp-create": "Parameters patient (valueIdentifier), email, consentNote, opposeBrisDeGlace, "
        "opposeCentre15, medecinTraitant: creates the DMP with the patient's consent (TD1.1)",
        "dmp-close": "Parameters patient, reason: closes the DMP (TD1.2)",
        "dmp-reactivate": "Parameters patient, consentNote: reopens a closed DMP (TD1.2)",
    }
    return Contribution(
        resources=[
            CapabilityStatementRestResource(
                type="Consent",
                interaction=interactions("search-type", "create", "delete"),
                documentation="The patient's authorisations, oppositions, médecin traitant and creation "
                "consent; create grants or opposes, delete revokes (DMP TD0.3)",
                searchParam=search_params(
                    {
                        "patient": _PATIENT,
                        "patient.identifier": _PATIENT,
                        "status": ("token", f"{FHIR_SP}/Consent-status", "active | inactive (revoked)"),
                    }
                ),
            ),
            CapabilityStatementRestResource(
                type="AuditEvent",
                interaction=interactions("search-type"),
                documentation="Who accessed the record, for the patient and the médecin traitant; "
                "read-only (any write is 405)",
                searchParam=search_params(
                    {
                        "patient": _PATIENT,
                        "patient.identifier": _PATIENT,
                        "date": ("date", f"{FHIR_SP}/AuditEvent-date", "geYYYY-MM-DD and/or ltYYYY-MM-DD"),
                    }
                ),
            ),
        ],
        operations=[
            CapabilityStatementRestResourceOperation(
                name=name, definition=f"urn:carnet:OperationDefinition:{name}", documentation=doc
            )
            for name, doc in operation_doc.items()
        ],
    )
