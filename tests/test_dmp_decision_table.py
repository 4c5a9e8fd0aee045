"""The DMP decision table, end to end: principals x documents x confidentiality x access mode x
authorisation x opposition, with the outcome a caller observes for FindDocuments (ITI-18) and
Retrieve (ITI-43) over SOAP with signed VIHF assertions.

Query outcomes: "shown" (in the result), "hidden" (silently left out), "refused" (the query is
answered with LocalPolicyRestrictionError). Retrieve outcomes: "ok" or "refused" (that document's
own RegistryError). One world is built per database backend and every row is checked; a failure
lists every row that disagrees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from lxml import etree
from sqlalchemy import select

from carnet.db import read_session
from carnet.dmp.models import Notification
from carnet.registry import patients
from carnet.registry.schema import AuditEventRow
from carnet.xds import vocabulary as v
from tests.builders import (
    Doc,
    patient,
    provide_and_register,
    remove_documents,
    remove_request,
    retrieve_request,
)
from tests.dmp import OPERATOR, REPO, Servers, claims, post, saml, servers
from tests.xds import QueryAnswer, adhoc_query, envelope, response_status

FIND = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
ATTESTATION = ("ATTEST-RESID", "1.2.250.1.213.1.1.4.12", "Attestation de résidence")
SYNTHESE_PSY = ("68599-0", "2.16.840.1.113883.6.1", "Synthèse psychiatrique")

# Professionals (PS_IdNat) and structures of the world.
DOC, NURSE, PHARMA, STRANGER, MT, AUTHOR = (
    "810000000001",
    "810000000002",
    "810000000003",
    "810000000004",
    "810000000005",
    "810000000006",
)
STRUCT_A, OTHER_STRUCT = "10B0000000A", "10B0000000Z"
AUTHOR_XCN = f"{AUTHOR}^AUTEUR^Bob^^^Dr^^^&1.2.250.1.71.4.2.1&ISO"

A, B, C, D, E = (patient(n) for n in (601, 602, 603, 604, 605))


def docs_a() -> dict[str, Doc]:
    return {
        "plain": Doc("plain", b"compte rendu"),
        "masked": Doc(
            "masked", b"masque aux PS", dmp_confidentiality=("MASQUE_PS",), author_person=AUTHOR_XCN
        ),
        "inv_patient": Doc("inv_patient", b"pas encore annonce", dmp_confidentiality=("INVISIBLE_PATIENT",)),
        "inv_legal": Doc(
            "inv_legal", b"secret du mineur", dmp_confidentiality=("INVISIBLE_REPRESENTANTS_LEGAUX",)
        ),
        "psy": Doc("psy", b"synthese psy", type_code=SYNTHESE_PSY),
        "resid": Doc("resid", b"attestation", type_code=ATTESTATION, author_person=AUTHOR_XCN),
    }


@dataclass(frozen=True)
class Who:
    ident: str
    profession: str | None = "10"
    mode: str = "normal"
    reason: str | None = None
    token_patient: str | None = None
    structure: str = OTHER_STRUCT
    kind: str = "professional"


WHO: dict[str, Who] = {
    "doc": Who(DOC),
    "nurse_via_structure": Who(NURSE, "60", structure=STRUCT_A),
    "pharmacist": Who(PHARMA, "21"),
    "stranger": Who(STRANGER),
    "stranger_bdg": Who(STRANGER, mode="bris_de_glace", reason="patient inconscient aux urgences"),
    "stranger_bdg_no_reason": Who(STRANGER, mode="bris_de_glace"),
    "stranger_c15": Who(STRANGER, mode="centre_15", reason="appel au SAMU"),
    "medecin_traitant": Who(MT),
    "author": Who(AUTHOR),
    "doc_token_for_b": Who(DOC, token_patient=B),
    "patient_a": Who("patient-a", None, token_patient=A, kind="patient"),
    "legal_rep_a": Who("parent-a", None, token_patient=A, kind="legal_representative"),
    "patient_b": Who("patient-b", None, token_patient=B, kind="patient"),
}

S, H, R = "shown", "hidden", "refused"
ALL_A = ("plain", "masked", "inv_patient", "inv_legal", "psy", "resid")


def row(who: str, pid: str, **docs: str) -> tuple[str, str, dict[str, str]]:
    return who, pid, docs


def same(outcome: str, names: tuple[str, ...] = ALL_A) -> dict[str, str]:
    return dict.fromkeys(names, outcome)


# (principal, patient, {document: query outcome}); the retrieve outcome is "ok" exactly when the
# query shows the document and "refused" otherwise, and both are checked.
TABLE = [
    # Authorised physician: MASQUE_PS hides what they did not write; the matrix hides the
    # attestation de résidence from physicians.
    row("doc", A, plain=S, masked=H, inv_patient=S, inv_legal=S, psy=S, resid=H),
    # The médecin traitant sees masked documents (and needs no separate authorisation).
    row("medecin_traitant", A, plain=S, masked=S, inv_patient=S, inv_legal=S, psy=S, resid=H),
    # The author sees their own documents, masked or outside their matrix row.
    row("author", A, plain=S, masked=S, inv_patient=S, inv_legal=S, psy=S, resid=S),
    # A nurse authorised through her structure: the matrix hides psychiatry and the attestation.
    row("nurse_via_structure", A, plain=S, masked=H, inv_patient=S, inv_legal=S, psy=H, resid=H),
    # A pharmacist reads none of these document types: an empty result, not an error.
    row("pharmacist", A, **same(H)),
    # No authorisation, normal mode: the whole DMP is refused.
    row("stranger", A, **same(R)),
    # Break-glass with a reason, no opposition: the matrix and MASQUE_PS still apply.
    row("stranger_bdg", A, plain=S, masked=H, inv_patient=S, inv_legal=S, psy=S, resid=H),
    row("stranger_bdg_no_reason", A, **same(R)),
    row("stranger_c15", A, plain=S, masked=H, inv_patient=S, inv_legal=S, psy=S, resid=H),
    # A token issued for another patient (VIHF resource-id) opens nothing here.
    row("doc_token_for_b", A, **same(R)),
    # The patient: everything but what is not yet visible to them; legal representatives lose
    # INVISIBLE_REPRESENTANTS_LEGAUX too.
    row("patient_a", A, plain=S, masked=S, inv_patient=H, inv_legal=S, psy=S, resid=S),
    row("legal_rep_a", A, plain=S, masked=S, inv_patient=H, inv_legal=H, psy=S, resid=S),
    row("patient_b", A, **same(R)),
    # B opposed break-glass: refused in that mode, centre 15 still works; no authorisation there.
    row("stranger_bdg", B, plain_b=R),
    row("stranger_c15", B, plain_b=S),
    row("doc", B, plain_b=R),
    # C opposed centre 15.
    row("stranger_bdg", C, plain_c=S),
    row("stranger_c15", C, plain_c=R),
    # D's DMP is closed (DOC was authorised before), E has none.
    row("doc", D, plain_d=R),
    row("stranger_bdg", D, plain_d=R),
    row("doc", E, plain_e=R),
    row("stranger_bdg", E, plain_e=R),
]


def build_world(env: Servers) -> dict[str, dict[str, str]]:
    """Dossiers, consent state and documents; returns patient -> document name -> uniqueId."""
    dmp = env.dmp
    for pid in (A, B, C, D):
        dmp.create(OPERATOR, pid, "patient@example.org", "consentement oral")
    dmp.set_medecin_traitant(OPERATOR, A, MT)
    for who in (DOC, PHARMA, AUTHOR):
        dmp.authorize(OPERATOR, A, "professional", who)
    dmp.authorize(OPERATOR, A, "structure", STRUCT_A)
    dmp.authorize(OPERATOR, D, "professional", DOC)
    dmp.close(OPERATOR, D, "décès")
    dmp.set_oppositions(OPERATOR, B, bris_de_glace=True)
    dmp.set_oppositions(OPERATOR, C, centre_15=True)
    from carnet.db import write_transaction

    with write_transaction(env.ctx.engine) as session:
        patients.upsert(session, E)
    world: dict[str, dict[str, str]] = {}
    for pid, docs in (
        (A, docs_a()),
        *((p, {f"plain_{k}": Doc(f"plain_{k}", b"cr")}) for p, k in ((B, "b"), (C, "c"), (D, "d"), (E, "e"))),
    ):
        resp = env.admin.post(  # type: ignore[attr-defined]
            "/xds/repository",
            data=envelope(v.ACTION_ITI41, provide_and_register(pid, list(docs.values()))),
            content_type="application/soap+xml",
        )
        status, errors = response_status(etree.fromstring(resp.data).find(f"{{{v.SOAP12}}}Body")[0])
        assert status == "Success", errors
        world[pid] = {name: d.unique_id for name, d in docs.items()}
    return world


def token(env_authority, who: Who) -> bytes:  # type: ignore[no-untyped-def]
    c = claims(
        who.ident,
        who.profession,
        who.mode,
        who.reason,
        who.token_patient,
        who.structure,
        who.kind,  # type: ignore[arg-type]
    )
    return saml(env_authority, c)


def query_outcomes(env: Servers, assertion: bytes, pid: str, names: dict[str, str]) -> dict[str, str]:
    params = [
        ("$XDSDocumentEntryPatientId", [f"'{pid}'"]),
        ("$XDSDocumentEntryStatus", [f"('{v.APPROVED}')"]),
    ]
    status, body = post(env.client, "/xds/registry", v.ACTION_ITI18, adhoc_query(FIND, params), assertion)
    assert status == 200, etree.tostring(body)
    ans = QueryAnswer.read(body)
    if ans.status == "Failure":
        assert [e[0] for e in ans.errors] == ["LocalPolicyRestrictionError"], ans.errors
        return dict.fromkeys(names, R)
    uids = set()
    for obj in ans.documents:
        for ext in obj.findall(f"{{{v.RIM}}}ExternalIdentifier"):
            if ext.get("identificationScheme") == v.DE_UNIQUE_ID:
                uids.add(ext.get("value"))
    return {name: S if uid in uids else H for name, uid in names.items()}


def retrieve_outcome(env: Servers, assertion: bytes, uid: str) -> tuple[str, list[tuple[str, str]]]:
    status, body = post(
        env.client, "/xds/repository", v.ACTION_ITI43, retrieve_request([(REPO, uid)]), assertion
    )
    assert status == 200
    rr_status, errors = response_status(body)
    if rr_status == "Success":
        return "ok", errors
    return "refused", errors


def test_decision_table(engine, tmp_path, authority) -> None:  # type: ignore[no-untyped-def]
    env = servers(engine, tmp_path / "data", authority)
    world = build_world(env)
    mismatches = []
    for who_name, pid, expected in TABLE:
        assertion = token(authority, WHO[who_name])
        names = {name: world[pid][name] for name in expected}
        got = query_outcomes(env, assertion, pid, names)
        for name, outcome in expected.items():
            if got[name] != outcome:
                mismatches.append(
                    f"{who_name} FindDocuments {name} of {pid}: expected {outcome}, got {got[name]}"
                )
            retrieved, errors = retrieve_outcome(env, assertion, names[name])
            want = "ok" if outcome == S else "refused"
            if retrieved != want:
                mismatches.append(f"{who_name} retrieve {name}: expected {want}, got {retrieved} {errors}")
            elif want == "refused":
                # The refusal names the document and says why (a precise, per-document error).
                assert errors and errors[0][0] == "LocalPolicyRestrictionError", errors
    assert not mismatches, "\n".join(mismatches)

    # Every one of these transactions is in the trail, with the access mode and the reason.
    with read_session(env.ctx.engine) as session:
        rows = session.scalars(select(AuditEventRow).where(AuditEventRow.patient_id == A)).all()
        notes = session.scalars(select(Notification).order_by(Notification.id)).all()
    bdg = [r for r in rows if r.access_mode == "bris_de_glace" and r.transaction == "ITI-18"]
    assert {json.loads(r.principal)["reason"] for r in bdg if r.outcome == 0} == {
        "patient inconscient aux urgences"
    }
    assert all(
        "requires a reason" in (r.detail or "") for r in bdg if json.loads(r.principal)["reason"] is None
    )
    refused = [
        r
        for r in rows
        if r.outcome == 8 and json.loads(r.principal)["id"] == STRANGER and r.access_mode == "normal"
    ]
    assert refused and "no authorisation" in (refused[0].detail or "")
    # Patients were told: creation of each DMP, each professional's first access (once), every
    # emergency access (once per token, with its reason), never a refused one.
    kinds = [(n.patient_id, n.kind) for n in notes]
    assert kinds.count((A, "creation")) == 1
    first = [n for n in notes if n.patient_id == A and n.kind == "first_access"]
    assert len({n.dedupe_key for n in first}) == len(first)
    assert {n.dedupe_key for n in first} >= {DOC, MT, AUTHOR, NURSE, PHARMA, STRANGER}
    assert (B, "bris_de_glace") not in kinds  # refused by the opposition: no access, no notice
    assert (C, "bris_de_glace") in kinds and (B, "centre_15") in kinds
    emergency_a = [n for n in notes if n.patient_id == A and n.kind in ("bris_de_glace", "centre_15")]
    assert emergency_a and all("Motif déclaré" in n.body for n in emergency_a)
    # Each token row of the table made one emergency notice, however many queries it ran.
    assert len([n for n in emergency_a if n.kind == "bris_de_glace"]) == 1


@pytest.mark.parametrize("mode", ["normal", "bris_de_glace"])
def test_write_without_right_changes_nothing(engine, tmp_path, authority, mode) -> None:  # type: ignore[no-untyped-def]
    """A professional submits only to an existing, active DMP; a refused write leaves no row."""
    env = servers(engine, tmp_path / "data", authority)
    with read_session(env.ctx.engine) as session:
        before = session.scalar(select(AuditEventRow.id).order_by(AuditEventRow.id.desc()).limit(1))
    doc = Doc("D1", b"compte rendu")
    assertion = saml(authority, claims(DOC, mode=mode, reason="urgence" if mode != "normal" else None))
    status, body = post(
        env.client, "/xds/repository", v.ACTION_ITI41, provide_and_register(A, [doc]), assertion
    )
    assert response_status(body)[0] == "Failure"
    assert response_status(body)[1][0][0] == "LocalPolicyRestrictionError"
    assert "has no DMP" in response_status(body)[1][0][1]
    from carnet.registry.schema import DocumentEntryRow

    with read_session(env.ctx.engine) as session:
        assert session.scalar(select(DocumentEntryRow.entry_uuid)) is None
        refusal = session.scalars(select(AuditEventRow).where(AuditEventRow.id > (before or 0))).all()
    assert [r.transaction for r in refusal][-1] == "ITI-41" and refusal[-1].outcome == 8
    # Once the DMP exists, the same professional feeds it without any authorisation (TD0.2 NB2).
    env.dmp.create(OPERATOR, A, "patient@example.org")
    status, body = post(
        env.client, "/xds/repository", v.ACTION_ITI41, provide_and_register(A, [doc]), assertion
    )
    assert response_status(body) == ("Success", [])


def test_only_the_author_removes_a_document(engine, tmp_path, authority) -> None:  # type: ignore[no-untyped-def]
    """DMP: a document is deleted by its author alone, by ITI-62 (metadata; one refused document
    refuses the request) as by ITI-86 (documents; the refused one is named and stays)."""
    from carnet.registry.schema import AssociationRow, DocumentEntryRow, StoredDocumentRow

    env = servers(engine, tmp_path / "data", authority)
    env.dmp.create(OPERATOR, A, "patient@example.org")
    for who in (DOC, AUTHOR):
        env.dmp.authorize(OPERATOR, A, "professional", who)
    docs = {
        "mine": Doc("mine", b"ecrit par l'auteur", author_person=AUTHOR_XCN),
        "mine_too": Doc("mine_too", b"aussi", author_person=AUTHOR_XCN),
        "theirs": Doc("theirs", b"ecrit par un autre"),
    }
    for d in docs.values():  # one submission each: ITI-62 then names one whole submission
        resp = env.admin.post(  # type: ignore[attr-defined]
            "/xds/repository",
            data=envelope(v.ACTION_ITI41, provide_and_register(A, [d])),
            content_type="application/soap+xml",
        )
        assert response_status(etree.fromstring(resp.data).find(f"{{{v.SOAP12}}}Body")[0])[0] == "Success"

    def submission(name: str) -> list[str]:
        """The SubmissionSet, DocumentEntry and HasMember Association registering ``name``."""
        with read_session(env.ctx.engine) as session:
            de = session.scalar(
                select(DocumentEntryRow.entry_uuid).where(DocumentEntryRow.unique_id == docs[name].unique_id)
            )
            link = session.scalars(select(AssociationRow).where(AssociationRow.target == de)).one()
        return [link.source, de, link.entry_uuid]

    def stored(name: str) -> bool:
        with read_session(env.ctx.engine) as session:
            return session.get(StoredDocumentRow, docs[name].unique_id) is not None

    author, other = saml(authority, claims(AUTHOR)), saml(authority, claims(DOC))
    # ITI-86: the other professional removes nothing; the author removes theirs, not the other's.
    pairs = [(REPO, docs["mine"].unique_id), (REPO, docs["theirs"].unique_id)]
    _, body = post(env.client, "/xds/repository", v.ACTION_ITI86, remove_documents(pairs), other)
    status, errors = response_status(body)
    assert status == "Failure" and {e[0] for e in errors} == {"LocalPolicyRestrictionError"}
    assert stored("mine") and stored("theirs")
    _, body = post(env.client, "/xds/repository", v.ACTION_ITI86, remove_documents(pairs), author)
    status, errors = response_status(body)
    assert status == "PartialSuccess", errors
    assert [e[0] for e in errors] == ["LocalPolicyRestrictionError"] and "only the author" in errors[0][1]
    assert not stored("mine") and stored("theirs")

    # ITI-62: the metadata of another's document is refused whole; the author's own goes.
    refused = submission("theirs")
    _, body = post(env.client, "/xds/registry", v.ACTION_ITI62, remove_request(*refused), author)
    assert response_status(body)[0] == "Failure"
    assert [e[0] for e in response_status(body)[1]] == ["LocalPolicyRestrictionError"]
    assert submission("theirs") == refused
    mine = submission("mine_too")
    _, body = post(env.client, "/xds/registry", v.ACTION_ITI62, remove_request(*mine), other)
    assert [e[0] for e in response_status(body)[1]] == ["LocalPolicyRestrictionError"]
    _, body = post(env.client, "/xds/registry", v.ACTION_ITI62, remove_request(*mine), author)
    assert response_status(body) == ("Success", [])
    with read_session(env.ctx.engine) as session:
        assert session.get(DocumentEntryRow, mine[1]) is None
