"""The DMP's access rules as Carnet's one policy decision point.

Two levels, both pure functions over facts loaded from the database so the decision table test can
read them line by line:

- ``patient_decision``: may this principal act on this patient's DMP at all, in this access mode?
  (the token's patient, the dossier's existence and status, the authorisation given to the
  professional or their structure, the médecin traitant, break-glass / centre 15 with a reason and
  without the patient's opposition);
- ``document_decision``: may they see this document? (INVISIBLE_PATIENT and
  INVISIBLE_REPRESENTANTS_LEGAUX for the patient side; for professionals the author always, then
  MASQUE_PS except for the médecin traitant, then the matrice d'habilitations).

``DMPPolicy`` loads the facts and applies them: ``decide`` before a transaction touches data,
``visible`` to leave out of query results what the caller may not see. The system principal and the
anonymous development principal (CARNET_ALLOW_ANONYMOUS=1 only) are not subject to DMP rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from carnet.db import read_session
from carnet.dmp.models import Authorization, Dossier
from carnet.registry.schema import AuthorRow, CodeRow, DocumentEntryRow, Patient
from carnet.security.matrix import Matrix
from carnet.security.policy import AccessDenied, Action, Decision
from carnet.security.principal import Principal
from carnet.xds import vocabulary as v

if TYPE_CHECKING:
    from carnet.registry.storedquery.queries import Hit
    from carnet.xds.model import DocumentEntry

# Confidentiality codes of the DMP (1.2.250.1.213.1.1.4.13).
MASQUE_PS = "MASQUE_PS"
INVISIBLE_PATIENT = "INVISIBLE_PATIENT"
INVISIBLE_REPRESENTANTS_LEGAUX = "INVISIBLE_REPRESENTANTS_LEGAUX"
DMP_CONFIDENTIALITY_SYSTEM = "1.2.250.1.213.1.1.4.13"

PERMIT = Decision(True, "permitted")
_CHUNK = 900  # bound parameters per IN list (SQLite's limit is far above; keep statements small)

READS: frozenset[str] = frozenset({"query", "retrieve"})


@dataclass(frozen=True)
class PatientFacts:
    """What the decision needs to know about one patient's DMP, for one principal."""

    patient_id: str
    dossier_status: str | None = None  # None: no DMP; "active" | "closed"
    medecin_traitant: str | None = None
    opposes_bris_de_glace: bool = False
    opposes_centre_15: bool = False
    # The principal holds an authorisation, personally or through their structure.
    authorised: bool = False


@dataclass(frozen=True)
class DocumentFacts:
    entry_uuid: str
    unique_id: str
    patient_id: str
    status: str
    type_code: str | None
    confidentiality: frozenset[str]
    author_ids: frozenset[str]


def _is_professional(p: Principal) -> bool:
    return p.kind in ("professional", "structure")


def patient_decision(principal: Principal, action: Action, facts: PatientFacts) -> Decision:
    """May ``principal`` perform ``action`` on this patient's DMP at all?"""
    if principal.kind in ("patient", "legal_representative"):
        return _patient_side(principal, action, facts)
    if not _is_professional(principal):
        return Decision(False, f"a {principal.kind} principal has no access to DMPs")
    if principal.patient_id is not None and principal.patient_id != facts.patient_id:
        return Decision(
            False,
            f"the token names patient {principal.patient_id} (resource-id), not {facts.patient_id}",
        )
    if action == "status":
        return Decision(True, "the existence test is open to identified professionals")
    if action == "dossier":
        if facts.dossier_status == "active":
            return Decision(False, "the patient already has an active DMP")
        if principal.access_mode != "normal":
            return Decision(False, f"a DMP is not created or reactivated in {principal.access_mode} mode")
        return Decision(True, "a professional creates or reactivates a DMP with the patient's consent")
    if facts.dossier_status is None:
        return Decision(False, f"patient {facts.patient_id} has no DMP")
    if facts.dossier_status != "active":
        return Decision(False, f"the DMP of patient {facts.patient_id} is closed")
    if action in ("close", "consent"):
        return Decision(
            False, f"only the patient may {'close the DMP' if action == 'close' else 'set oppositions'}"
        )
    if action == "audit":
        if principal.id == facts.medecin_traitant:
            return Decision(True, "the médecin traitant may read the access trail")
        return Decision(False, "only the patient and the médecin traitant may read the access trail")
    if action == "authorize":
        if principal.access_mode != "normal":
            return Decision(False, f"authorisations are not recorded in {principal.access_mode} mode")
        return Decision(True, "a professional records the authorisation the patient gave them (TD0.3)")
    if action == "submit":
        # TD0.2 NB2: authorisations govern consultation only; any identified professional feeds.
        return Decision(True, "professionals may feed an active DMP")
    return _consultation(principal, facts)


def _consultation(principal: Principal, facts: PatientFacts) -> Decision:
    mode = principal.access_mode
    if mode == "normal":
        if principal.id == facts.medecin_traitant:
            return Decision(True, "médecin traitant")
        if facts.authorised:
            return Decision(True, "authorised by the patient")
        return Decision(
            False,
            f"professional {principal.id} has no authorisation to consult the DMP of patient "
            f"{facts.patient_id}: the patient's authorisation must be recorded first "
            "(TD0.3 setAuthorization)",
        )
    label = "bris de glace" if mode == "bris_de_glace" else "centre 15 (régulation)"
    if not principal.reason:
        return Decision(False, f"{label} access requires a reason (Mode_Acces_Raison)")
    opposed = facts.opposes_bris_de_glace if mode == "bris_de_glace" else facts.opposes_centre_15
    if opposed:
        return Decision(False, f"the patient has opposed {label} access to their DMP")
    return Decision(True, f"{label}: {principal.reason}")


def _patient_side(principal: Principal, action: Action, facts: PatientFacts) -> Decision:
    who = "patient" if principal.kind == "patient" else "legal representative"
    if principal.patient_id != facts.patient_id:
        return Decision(
            False, f"this {who} token is for patient {principal.patient_id}, not {facts.patient_id}"
        )
    if action == "dossier":
        if facts.dossier_status == "active":
            return Decision(False, "the patient already has an active DMP")
        return Decision(True, f"the {who} creates or reactivates the DMP")
    if facts.dossier_status is None:
        # The existence test answers "no DMP"; everything else needs one.
        return Decision(action == "status", f"patient {facts.patient_id} has no DMP")
    # A closed DMP still tells its patient who accessed it.
    if facts.dossier_status != "active" and action not in ("status", "audit"):
        return Decision(False, f"the DMP of patient {facts.patient_id} is closed")
    if action == "remove":
        return Decision(False, "only a document's author may delete it")
    return Decision(True, f"the {who}'s own DMP")


def document_decision(
    principal: Principal, action: Action, facts: PatientFacts, doc: DocumentFacts, matrix: Matrix
) -> Decision:
    """May ``principal`` see (or act on) this document of a DMP they may access?"""
    conf = doc.confidentiality
    if principal.kind == "patient":
        if INVISIBLE_PATIENT in conf:
            return Decision(
                False, f"document {doc.unique_id} is not visible to the patient (INVISIBLE_PATIENT)"
            )
        return PERMIT
    if principal.kind == "legal_representative":
        for code in (INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX):
            if code in conf:
                return Decision(
                    False, f"document {doc.unique_id} is not visible to legal representatives ({code})"
                )
        return PERMIT
    author = principal.id in doc.author_ids
    if action == "remove" and not author:
        return Decision(False, f"only the author of document {doc.unique_id} may delete it")
    if author:
        return Decision(True, "author")
    if MASQUE_PS in conf and principal.id != facts.medecin_traitant:
        return Decision(
            False,
            f"document {doc.unique_id} is masked from professionals (MASQUE_PS) other than its author "
            "and the médecin traitant",
        )
    if action in READS and not matrix.allows(principal.role, doc.type_code):
        return Decision(False, f"document {doc.unique_id}: {matrix.reason(principal.role, doc.type_code)}")
    return PERMIT


def visibility_change(principal: Principal, before: Iterable[str], after: Iterable[str]) -> Decision:
    """A metadata update changing a document's DMP confidentiality codes (ITI-57 / PDSm PATCH).

    Making a document visible to legal representatives is irreversible (EX_3.3-1045): a new version
    cannot put INVISIBLE_REPRESENTANTS_LEGAUX back once a version went without it.
    """
    old, new = set(before), set(after)
    if INVISIBLE_REPRESENTANTS_LEGAUX in new - old:
        return Decision(
            False,
            "a document made visible to legal representatives cannot be hidden from them again "
            "(INVISIBLE_REPRESENTANTS_LEGAUX cannot be added back)",
        )
    if principal.kind in ("patient", "legal_representative") and INVISIBLE_PATIENT in old ^ new:
        return Decision(False, "INVISIBLE_PATIENT is set and lifted by professionals, not by the patient")
    return PERMIT


class DMPPolicy:
    """The DMP rules, reading dossiers, authorisations and document metadata from ``engine``."""

    def __init__(self, engine: Engine, matrix: Matrix, allow_anonymous: bool = False):
        self.engine = engine
        self.matrix = matrix
        self.allow_anonymous = allow_anonymous

    def _unrestricted(self, principal: Principal) -> Decision | None:
        if principal.kind == "system":
            return Decision(True, "Carnet acting on its own behalf")
        if principal.kind == "anonymous":
            if self.allow_anonymous:
                return Decision(True, "anonymous development access (CARNET_ALLOW_ANONYMOUS=1)")
            return Decision(
                False, "anonymous access is disabled (set CARNET_ALLOW_ANONYMOUS=1 for development)"
            )
        return None

    def decide(
        self,
        principal: Principal,
        action: Action,
        patient_id: str | None = None,
        documents: tuple[str, ...] = (),
    ) -> Decision:
        unrestricted = self._unrestricted(principal)
        if unrestricted is not None:
            return unrestricted
        with read_session(self.engine) as session:
            docs = load_documents(session, documents) if documents else []
            if patient_id is None:
                patients = {d.patient_id for d in docs}
                if len(patients) != 1:
                    # Get queries name no patient: the caller decides again on the result's patient,
                    # and ``visible`` filters what comes back.
                    return Decision(True, "no patient named yet; decided on the result")
                patient_id = patients.pop()
            facts = load_patient(session, principal, patient_id)
        decision = patient_decision(principal, action, facts)
        if not decision.permit:
            return decision
        for doc in current_versions(docs):
            d = self.document(principal, action, facts, doc)
            if not d.permit:
                return d
        return decision

    def document(
        self, principal: Principal, action: Action, facts: PatientFacts, doc: DocumentFacts
    ) -> Decision:
        return document_decision(principal, action, facts, doc, self.matrix)

    def visible(self, principal: Principal, action: Action, hits: list[Hit]) -> list[Hit]:
        unrestricted = self._unrestricted(principal)
        if unrestricted is not None:
            return hits if unrestricted.permit else []
        if not hits:
            return hits
        with read_session(self.engine) as session:
            facts = {
                pid: load_patient(session, principal, pid)
                for pid in {h.patient_id for h in hits if h.patient_id}
            }
            doc_ids = [h.id for h in hits if h.kind == "DocumentEntry"]
            docs = {d.entry_uuid: d for d in load_documents(session, doc_ids, by_entry_uuid=True)}
        allowed_patients = {pid for pid, f in facts.items() if patient_decision(principal, action, f).permit}
        out = []
        for h in hits:
            if h.patient_id is None:
                out.append(h)  # associations: QueryResult.filter drops those whose ends were left out
                continue
            if h.patient_id not in allowed_patients:
                continue
            if h.kind == "DocumentEntry":
                doc = docs.get(h.id)
                if doc is None or not self.document(principal, action, facts[h.patient_id], doc).permit:
                    continue
            out.append(h)
        return out


def current_versions(docs: Sequence[DocumentFacts]) -> list[DocumentFacts]:
    """Per uniqueId, the Approved entries (or all, when none is): the ones a retrieve serves."""
    by_uid: dict[str, list[DocumentFacts]] = defaultdict(list)
    for d in docs:
        by_uid[d.unique_id].append(d)
    out: list[DocumentFacts] = []
    for entries in by_uid.values():
        approved = [d for d in entries if d.status == v.APPROVED]
        out += approved or entries
    return out


def load_patient(session: Session, principal: Principal, patient_id: str) -> PatientFacts:
    """The dossier and the principal's authorisation for ``patient_id`` (or the id it was merged into)."""
    merged_into = session.scalar(select(Patient.merged_into).where(Patient.patient_id == patient_id))
    key = merged_into or patient_id
    dossier = session.get(Dossier, key)
    if dossier is None:
        return PatientFacts(patient_id)
    grantees = [and_(Authorization.grantee_kind == "professional", Authorization.grantee_id == principal.id)]
    if principal.structure:
        grantees.append(
            and_(Authorization.grantee_kind == "structure", Authorization.grantee_id == principal.structure)
        )
    authorised = _is_professional(principal) and (
        session.scalar(
            select(Authorization.id)
            .where(Authorization.patient_id == key, Authorization.status == "granted", or_(*grantees))
            .limit(1)
        )
        is not None
    )
    return PatientFacts(
        patient_id=patient_id,
        dossier_status=dossier.status,
        medecin_traitant=dossier.medecin_traitant,
        opposes_bris_de_glace=dossier.opposes_bris_de_glace,
        opposes_centre_15=dossier.opposes_centre_15,
        authorised=authorised,
    )


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


# The statements are built once with expanding IN parameters: compiling a fresh IN list of a
# thousand literals per query cost more than running it.
_DE = DocumentEntryRow
_BY_UUID = select(_DE.entry_uuid, _DE.unique_id, _DE.patient_id, _DE.status, _DE.type_code).where(
    _DE.entry_uuid.in_(bindparam("ids", expanding=True))
)
_BY_ID = select(_DE.entry_uuid, _DE.unique_id, _DE.patient_id, _DE.status, _DE.type_code).where(
    or_(
        _DE.entry_uuid.in_(bindparam("ids", expanding=True)),
        _DE.unique_id.in_(bindparam("ids", expanding=True)),
    )
)
_CONF = select(CodeRow.object_uuid, CodeRow.code).where(
    CodeRow.kind == "conf", CodeRow.object_uuid.in_(bindparam("ids", expanding=True))
)
_AUTHORS = select(AuthorRow.object_uuid, AuthorRow.person).where(
    AuthorRow.object_uuid.in_(bindparam("ids", expanding=True))
)


def load_documents(session: Session, ids: Sequence[str], by_entry_uuid: bool = False) -> list[DocumentFacts]:
    """Facts of the DocumentEntries named by entryUUID or uniqueId (every version of a uniqueId)."""
    rows: list[tuple[str, str, str, str, str | None]] = []
    for chunk in _chunks(list(ids)):
        for r in session.execute(_BY_UUID if by_entry_uuid else _BY_ID, {"ids": list(chunk)}):
            rows.append((r[0], r[1], r[2], r[3], r[4]))
    conf: dict[str, set[str]] = defaultdict(set)
    authors: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks([r[0] for r in rows]):
        for uuid_, code in session.execute(_CONF, {"ids": list(chunk)}):
            conf[uuid_].add(code)
        for uuid_, person in session.execute(_AUTHORS, {"ids": list(chunk)}):
            # XCN.1 is the professional's national identifier (PS_IdNat).
            ident = person.split("^", 1)[0].strip()
            if ident:
                authors[uuid_].add(ident)
    return [
        DocumentFacts(r[0], r[1], r[2], r[3], r[4], frozenset(conf[r[0]]), frozenset(authors[r[0]]))
        for r in rows
    ]


def may_record_authorisation(principal: Principal, grantee_kind: str, grantee_id: str) -> Decision:
    """TD0.3: a professional records the authorisation the patient gave *them* (or their own
    structure); the patient (and Carnet) may grant or revoke anyone's."""
    if principal.kind in ("system", "anonymous", "patient", "legal_representative"):
        return PERMIT
    if grantee_kind == "professional" and grantee_id == principal.id:
        return PERMIT
    if grantee_kind == "structure" and grantee_id == principal.structure:
        return PERMIT
    return Decision(
        False,
        f"professional {principal.id} may only record an authorisation for themselves or their own "
        f"structure, not for {grantee_kind} {grantee_id}",
    )


def may_designate_medecin_traitant(principal: Principal, actor_id: str | None) -> Decision:
    """The patient designates their médecin traitant; a physician may declare themselves (TD0.3
    role MEDECIN_TRAITANT) or withdraw."""
    if principal.kind in ("system", "anonymous", "patient", "legal_representative"):
        return PERMIT
    if actor_id not in (None, principal.id):
        return Decision(False, "a professional may only declare themselves médecin traitant")
    if principal.role != "10":
        return Decision(
            False,
            f"only a physician (profession 10) can be médecin traitant, not profession {principal.role}",
        )
    return PERMIT


def check_metadata_update(pdp: object, principal: Principal, documents: Sequence[DocumentEntry]) -> None:
    """ITI-57 (and PDSm PATCH): decide each new DocumentEntry version against the one it replaces.

    The caller must be allowed to act on the current version (``update``: MASQUE_PS, patient
    visibility...) and the change of DMP confidentiality codes must be allowed
    (``visibility_change``). Raises ``AccessDenied``; does nothing under another policy.
    """
    if not isinstance(pdp, DMPPolicy) or pdp._unrestricted(principal) is not None:
        return
    with read_session(pdp.engine) as session:
        for de in documents:
            if not de.logical_id:
                continue
            current = session.execute(
                select(DocumentEntryRow.entry_uuid, DocumentEntryRow.patient_id)
                .where(DocumentEntryRow.logical_id == de.logical_id)
                .order_by(DocumentEntryRow.version.desc())
                .limit(1)
            ).first()
            if current is None:
                continue  # not an update of a known object: ITI-57 reports it with its own code
            decision = pdp.decide(principal, "update", current[1], (current[0],))
            if not decision.permit:
                raise AccessDenied(decision)
            before = load_documents(session, [current[0]], by_entry_uuid=True)
            after = {c.code for c in de.confidentiality_codes}
            change = visibility_change(principal, before[0].confidentiality if before else (), after)
            if not change.permit:
                raise AccessDenied(change)
