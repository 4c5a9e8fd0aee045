"""Known patients: fed by ITI-8 (ADT A01/A04/A05/A08 create or update, A40 merge) or the CLI.

The registry accepts documents only for a known, unmerged patient id. After an A40 merge the
subsumed id answers no query and takes no submission; the surviving id also finds what had been
filed under the ids merged into it (dcm4chee findDocumentsMergedPID).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from carnet.registry.schema import Patient


@dataclass
class Demographics:
    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = None
    sex: str | None = None


def get(session: Session, patient_id: str) -> Patient | None:
    return session.scalar(select(Patient).where(Patient.patient_id == patient_id))


def is_active(session: Session, patient_id: str) -> bool:
    row = get(session, patient_id)
    return row is not None and row.merged_into is None


def upsert(session: Session, patient_id: str, demographics: Demographics | None = None) -> Patient:
    """Create the patient, or update its demographics (A08); a merged id is not revived."""
    row = get(session, patient_id)
    if row is None:
        row = Patient(patient_id=patient_id)
        session.add(row)
    if demographics is not None:
        for name in ("family_name", "given_name", "birth_date", "sex"):
            value = getattr(demographics, name)
            if value is not None:
                setattr(row, name, value)
    session.flush()
    return row


def merge(session: Session, surviving: str, subsumed: str) -> None:
    """ITI-8 A40: ``subsumed`` is merged into ``surviving`` (both are created if unknown)."""
    if surviving == subsumed:
        raise ValueError("a patient cannot be merged into itself")
    survivor = get(session, surviving)
    if survivor is not None and survivor.merged_into is not None:
        # Merging into an id that is itself merged away would orphan both (or loop).
        raise ValueError(f"{surviving} was merged into {survivor.merged_into}; merge into that id instead")
    previous = get(session, subsumed)
    if previous is not None and previous.merged_into not in (None, surviving):
        raise ValueError(f"{subsumed} is already merged into {previous.merged_into}")
    upsert(session, surviving)
    old = upsert(session, subsumed)
    old.merged_into = surviving
    # Ids previously merged into the subsumed one now follow it to the survivor.
    session.execute(update(Patient).where(Patient.merged_into == subsumed).values(merged_into=surviving))
    session.flush()


def unmerge(session: Session, patient_id: str) -> None:
    row = get(session, patient_id)
    if row is not None:
        row.merged_into = None
        session.flush()


def query_ids(session: Session, patient_id: str) -> list[str]:
    """The patient ids a query on ``patient_id`` must match: none if it was merged away."""
    row = get(session, patient_id)
    if row is None:
        return [patient_id]
    if row.merged_into is not None:
        return []
    merged = session.scalars(select(Patient.patient_id).where(Patient.merged_into == patient_id)).all()
    return [patient_id, *merged]
