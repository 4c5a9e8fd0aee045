"""The DMP itself: create (with the patient's consent), close, reactivate; médecin traitant;
oppositions to break-glass and centre-15 access.

Functions here change rows inside the caller's transaction and raise ``DossierError`` for a
request the dossier's state does not allow; ``carnet.dmp.api`` wraps each in a policy decision and
an audit record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from carnet.dmp import notifications
from carnet.dmp.models import Dossier
from carnet.dmp.transaction import DossierError
from carnet.registry import patients
from carnet.registry.schema import now
from carnet.security.principal import Principal

# Enough to refuse typing mistakes; deliverability is the SMTP server's to judge.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class ConsentRecord:
    """How the patient's consent to the creation was collected."""

    collected_by: str  # who collected it: the professional's id, "patient" (self-service), ...
    note: str | None = None
    at: datetime | None = None


def check_email(address: str) -> str:
    address = address.strip()
    if not _EMAIL.fullmatch(address):
        raise DossierError(f"'{address}' is not an e-mail address; notifications need one", status=400)
    return address


def get(session: Session, patient_id: str) -> Dossier | None:
    return session.get(Dossier, patient_id)


def require_dossier(session: Session, patient_id: str) -> Dossier:
    dossier = get(session, patient_id)
    if dossier is None:
        raise DossierError(f"patient {patient_id} has no DMP", status=404)
    return dossier


def create(
    session: Session,
    patient_id: str,
    by: Principal,
    consent: ConsentRecord,
    contact_email: str,
    opposes_bris_de_glace: bool = False,
    opposes_centre_15: bool = False,
    medecin_traitant: str | None = None,
) -> Dossier:
    """Open the patient's DMP; the patient becomes known to the registry if they were not."""
    email = check_email(contact_email)
    if not consent.collected_by.strip():
        raise DossierError("the patient's consent must say who collected it", status=400)
    existing = get(session, patient_id)
    if existing is not None:
        if existing.status == "active":
            raise DossierError(f"patient {patient_id} already has an active DMP")
        raise DossierError(f"the DMP of patient {patient_id} is closed: reactivate it instead of creating it")
    patients.upsert(session, patient_id)
    dossier = Dossier(
        patient_id=patient_id,
        status="active",
        created_at=now(),
        created_by=by.describe(),
        consent_at=consent.at or now(),
        consent_collected_by=consent.collected_by.strip(),
        consent_note=consent.note,
        contact_email=email,
        opposes_bris_de_glace=opposes_bris_de_glace,
        opposes_centre_15=opposes_centre_15,
        medecin_traitant=medecin_traitant,
    )
    session.add(dossier)
    session.flush()
    notifications.on_creation(session, dossier)
    return dossier


def close(session: Session, patient_id: str, reason: str) -> Dossier:
    if not reason.strip():
        raise DossierError("closing a DMP requires a reason", status=400)
    dossier = require_dossier(session, patient_id)
    if dossier.status == "closed":
        raise DossierError(f"the DMP of patient {patient_id} is already closed")
    dossier.status, dossier.closed_at, dossier.close_reason = "closed", now(), reason.strip()
    session.flush()
    return dossier


def reactivate(session: Session, patient_id: str, consent: ConsentRecord) -> Dossier:
    dossier = require_dossier(session, patient_id)
    if dossier.status == "active":
        raise DossierError(f"the DMP of patient {patient_id} is already active")
    dossier.status, dossier.closed_at, dossier.close_reason = "active", None, None
    dossier.consent_at, dossier.consent_collected_by = consent.at or now(), consent.collected_by
    dossier.consent_note = consent.note
    session.flush()
    return dossier


def set_medecin_traitant(session: Session, patient_id: str, actor_id: str | None) -> Dossier:
    dossier = require_dossier(session, patient_id)
    dossier.medecin_traitant = actor_id.strip() if actor_id else None
    session.flush()
    return dossier


def set_oppositions(
    session: Session, patient_id: str, bris_de_glace: bool | None = None, centre_15: bool | None = None
) -> Dossier:
    if bris_de_glace is None and centre_15 is None:
        raise DossierError("say which opposition changes (bris de glace, centre 15)", status=400)
    dossier = require_dossier(session, patient_id)
    if bris_de_glace is not None:
        dossier.opposes_bris_de_glace = bris_de_glace
    if centre_15 is not None:
        dossier.opposes_centre_15 = centre_15
    session.flush()
    return dossier


def set_contact(session: Session, patient_id: str, email: str) -> Dossier:
    dossier = require_dossier(session, patient_id)
    dossier.contact_email = check_email(email)
    session.flush()
    return dossier
