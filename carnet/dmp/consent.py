"""Authorisations: the patient's permission for a professional or a structure to consult the DMP.

TD0.3 (setAuthorization AJOUT / SUPPRESSION) and FHIR Consent both land here. One row per
(patient, grantee); granting again after a revocation reactivates it (the audit trail keeps the
history). Authorisations govern consultation only: feeding the DMP does not need one (TD0.2 NB2).
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.dmp.dossier import require_dossier
from carnet.dmp.models import Authorization
from carnet.dmp.transaction import DossierError
from carnet.registry.schema import now
from carnet.security.principal import Principal

GranteeKind = Literal["professional", "structure"]
GRANTEE_KINDS = ("professional", "structure")


def _check(grantee_kind: str, grantee_id: str) -> None:
    if grantee_kind not in GRANTEE_KINDS:
        raise DossierError(f"grantee kind '{grantee_kind}' is neither professional nor structure", status=400)
    if not grantee_id.strip() or len(grantee_id) > 128:
        raise DossierError(
            "the grantee needs an identifier (PS_IdNat or Struct_IdNat), at most 128 characters", status=400
        )


def find(session: Session, patient_id: str, grantee_kind: str, grantee_id: str) -> Authorization | None:
    return session.scalar(
        select(Authorization).where(
            Authorization.patient_id == patient_id,
            Authorization.grantee_kind == grantee_kind,
            Authorization.grantee_id == grantee_id,
        )
    )


def grant(
    session: Session, patient_id: str, grantee_kind: str, grantee_id: str, by: Principal
) -> Authorization:
    _check(grantee_kind, grantee_id)
    dossier = require_dossier(session, patient_id)
    if dossier.status != "active":
        raise DossierError(f"the DMP of patient {patient_id} is closed")
    row = find(session, patient_id, grantee_kind, grantee_id)
    if row is None:
        row = Authorization(
            patient_id=patient_id,
            grantee_kind=grantee_kind,
            grantee_id=grantee_id.strip(),
            status="granted",
            granted_at=now(),
            granted_by=by.describe(),
        )
        session.add(row)
    elif row.status == "granted":
        return row  # idempotent: TD0.3 AJOUT repeated by an LPS is not an error
    else:
        row.status, row.granted_at, row.granted_by = "granted", now(), by.describe()
        row.revoked_at = row.revoked_by = None
    session.flush()
    return row


def revoke(
    session: Session, patient_id: str, grantee_kind: str, grantee_id: str, by: Principal
) -> Authorization:
    _check(grantee_kind, grantee_id)
    require_dossier(session, patient_id)
    row = find(session, patient_id, grantee_kind, grantee_id)
    if row is None or row.status != "granted":
        raise DossierError(
            f"{grantee_kind} {grantee_id} holds no authorisation on the DMP of patient {patient_id}",
            status=404,
        )
    row.status, row.revoked_at, row.revoked_by = "revoked", now(), by.describe()
    session.flush()
    return row


def list_for(session: Session, patient_id: str, include_revoked: bool = False) -> list[Authorization]:
    stmt = select(Authorization).where(Authorization.patient_id == patient_id).order_by(Authorization.id)
    if not include_revoked:
        stmt = stmt.where(Authorization.status == "granted")
    return list(session.scalars(stmt))


def status_for(session: Session, patient_id: str, principal: Principal) -> str:
    """EF_DMP04_01 for TD0.2: VALIDE when the caller (or their structure) holds an authorisation."""
    rows = [
        row
        for kind, ident in (("professional", principal.id), ("structure", principal.structure))
        if ident and (row := find(session, patient_id, kind, ident)) is not None
    ]
    if any(r.status == "granted" for r in rows):
        return "VALIDE"
    return "REVOQUEE" if rows else "ABSENTE"
