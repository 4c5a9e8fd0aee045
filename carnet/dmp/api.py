"""The DMP management API every surface uses (TD0.2/TD0.3 SOAP, FHIR Consent/AuditEvent, CLI).

Each method is one ``perform``: the policy decision, the change with its audit record in one
transaction, or an audited refusal. Patient identifiers are accepted in any form the DMP writes
(``carnet.dmp.ids``) and reduced to the canonical CX first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from carnet.dmp import consent, dossier, ids, traces
from carnet.dmp.models import Authorization, Dossier
from carnet.dmp.transaction import DossierError, perform, require
from carnet.security import dmp_policy
from carnet.security.policy import PolicyDecisionPoint
from carnet.security.principal import Principal


def patient_key(value: str) -> str:
    try:
        return ids.canonical(value)
    except ValueError as exc:
        raise DossierError(f"'{value}' is not a patient identifier: {exc}", status=400) from exc


@dataclass(frozen=True)
class ExistenceStatus:
    """What TD0.2 answers: the DMP's status, the caller's authorisation, the médecin traitant."""

    patient_id: str
    status: str  # ACTIF | FERME | INEXISTANT
    closed_at: datetime | None
    close_reason: str | None
    authorisation: str  # VALIDE | REVOQUEE | ABSENTE
    medecin_traitant: str | None
    caller_is_medecin_traitant: bool
    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = None
    sex: str | None = None


def _collected_by(principal: Principal) -> str:
    if principal.kind in ("patient", "legal_representative"):
        return principal.kind
    return principal.describe()


class DMP:
    def __init__(self, engine: Engine, pdp: PolicyDecisionPoint):
        self.engine = engine
        self.pdp = pdp

    @staticmethod
    def patient_of(value: str) -> str:
        """The canonical patient id of ``value``, or DossierError (400) naming the problem."""
        return patient_key(value)

    def create(
        self,
        principal: Principal,
        patient: str,
        contact_email: str,
        consent_note: str | None = None,
        opposes_bris_de_glace: bool = False,
        opposes_centre_15: bool = False,
        medecin_traitant: str | None = None,
        source_address: str | None = None,
    ) -> Dossier:
        pid = patient_key(patient)

        def op(session: Session) -> Dossier:
            if medecin_traitant:
                require(dmp_policy.may_designate_medecin_traitant(principal, medecin_traitant))
            return dossier.create(
                session,
                pid,
                principal,
                dossier.ConsentRecord(_collected_by(principal), consent_note),
                contact_email,
                opposes_bris_de_glace,
                opposes_centre_15,
                medecin_traitant,
            )

        return perform(self.engine, self.pdp, principal, "dossier", pid, "DMP-TD1.1", op, "C", source_address)

    def close(
        self, principal: Principal, patient: str, reason: str, source_address: str | None = None
    ) -> Dossier:
        pid = patient_key(patient)
        return perform(
            self.engine,
            self.pdp,
            principal,
            "close",
            pid,
            "DMP-TD1.4",
            lambda s: dossier.close(s, pid, reason),
            "U",
            source_address,
        )

    def reactivate(
        self,
        principal: Principal,
        patient: str,
        consent_note: str | None = None,
        source_address: str | None = None,
    ) -> Dossier:
        pid = patient_key(patient)
        record = dossier.ConsentRecord(_collected_by(principal), consent_note)
        return perform(
            self.engine,
            self.pdp,
            principal,
            "dossier",
            pid,
            "DMP-TD1.2",
            lambda s: dossier.reactivate(s, pid, record),
            "U",
            source_address,
        )

    def authorize(
        self,
        principal: Principal,
        patient: str,
        grantee_kind: str,
        grantee_id: str,
        source_address: str | None = None,
    ) -> Authorization:
        return self._authorisation(principal, patient, grantee_kind, grantee_id, source_address, grant=True)

    def revoke(
        self,
        principal: Principal,
        patient: str,
        grantee_kind: str,
        grantee_id: str,
        source_address: str | None = None,
    ) -> Authorization:
        return self._authorisation(principal, patient, grantee_kind, grantee_id, source_address, grant=False)

    def _authorisation(
        self,
        principal: Principal,
        patient: str,
        grantee_kind: str,
        grantee_id: str,
        source_address: str | None,
        *,
        grant: bool,
    ) -> Authorization:
        """TD0.3: grant or revoke, traced as AJOUT or SUPPRESSION."""
        pid = patient_key(patient)
        change = consent.grant if grant else consent.revoke

        def op(session: Session) -> Authorization:
            require(dmp_policy.may_record_authorisation(principal, grantee_kind, grantee_id))
            return change(session, pid, grantee_kind, grantee_id, principal)

        return perform(
            self.engine,
            self.pdp,
            principal,
            "authorize",
            pid,
            "DMP-TD0.3",
            op,
            "C" if grant else "D",
            source_address,
            [
                {
                    "type": "Authorization",
                    "id": f"{grantee_kind}:{grantee_id}",
                    "action": "AJOUT" if grant else "SUPPRESSION",
                }
            ],
        )

    def set_medecin_traitant(
        self, principal: Principal, patient: str, actor_id: str | None, source_address: str | None = None
    ) -> Dossier:
        pid = patient_key(patient)

        def op(session: Session) -> Dossier:
            current = dossier.require_dossier(session, pid).medecin_traitant
            # A physician withdrawing ("SUPPRESSION") may only withdraw themselves.
            require(dmp_policy.may_designate_medecin_traitant(principal, actor_id if actor_id else current))
            return dossier.set_medecin_traitant(session, pid, actor_id)

        return perform(
            self.engine,
            self.pdp,
            principal,
            "authorize",
            pid,
            "DMP-MEDECIN-TRAITANT",
            op,
            "U",
            source_address,
            [{"type": "MedecinTraitant", "id": actor_id or ""}],
        )

    def set_oppositions(
        self,
        principal: Principal,
        patient: str,
        bris_de_glace: bool | None = None,
        centre_15: bool | None = None,
        source_address: str | None = None,
    ) -> Dossier:
        pid = patient_key(patient)
        return perform(
            self.engine,
            self.pdp,
            principal,
            "consent",
            pid,
            "DMP-OPPOSITION",
            lambda s: dossier.set_oppositions(s, pid, bris_de_glace, centre_15),
            "U",
            source_address,
        )

    def status(
        self, principal: Principal, patient: str, source_address: str | None = None
    ) -> ExistenceStatus:
        """TD0.2: the DMP's status and the caller's access conditions."""
        pid = patient_key(patient)

        def op(session: Session) -> ExistenceStatus:
            from carnet.registry import patients

            d = dossier.get(session, pid)
            person = patients.get(session, pid)
            state = "INEXISTANT" if d is None else ("ACTIF" if d.status == "active" else "FERME")
            return ExistenceStatus(
                patient_id=pid,
                status=state,
                closed_at=d.closed_at if d else None,
                close_reason=d.close_reason if d else None,
                authorisation=consent.status_for(session, pid, principal) if d else "ABSENTE",
                medecin_traitant=d.medecin_traitant if d else None,
                caller_is_medecin_traitant=bool(d and d.medecin_traitant == principal.id),
                family_name=person.family_name if person else None,
                given_name=person.given_name if person else None,
                birth_date=person.birth_date if person else None,
                sex=person.sex if person else None,
            )

        return perform(self.engine, self.pdp, principal, "status", pid, "DMP-TD0.2", op, "R", source_address)

    def authorisations(
        self, principal: Principal, patient: str, include_revoked: bool = False
    ) -> list[Authorization]:
        pid = patient_key(patient)
        return perform(
            self.engine,
            self.pdp,
            principal,
            "audit",
            pid,
            "DMP-AUTHORISATIONS",
            lambda s: consent.list_for(s, pid, include_revoked),
            "R",
        )

    def consents(
        self, principal: Principal, patient: str, include_revoked: bool = False
    ) -> tuple[Dossier, list[Authorization]]:
        """The DMP and its authorisations, read as one audited access (FHIR Consent search)."""
        pid = patient_key(patient)
        return perform(
            self.engine,
            self.pdp,
            principal,
            "audit",
            pid,
            "DMP-CONSENTS",
            lambda s: (dossier.require_dossier(s, pid), consent.list_for(s, pid, include_revoked)),
            "R",
        )

    def dossier(self, principal: Principal, patient: str) -> Dossier:
        pid = patient_key(patient)
        return perform(
            self.engine,
            self.pdp,
            principal,
            "audit",
            pid,
            "DMP-DOSSIER",
            lambda s: dossier.require_dossier(s, pid),
            "R",
        )

    def traces(
        self,
        principal: Principal,
        patient: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
        source_address: str | None = None,
    ) -> list[traces.Trace]:
        """The access trail (reading it is itself traced, after the list is taken)."""
        pid = patient_key(patient)
        return perform(
            self.engine,
            self.pdp,
            principal,
            "audit",
            pid,
            "DMP-TRACES",
            lambda s: traces.for_patient(s, pid, since, until, limit),
            "R",
            source_address,
        )
