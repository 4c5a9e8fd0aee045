"""The FHIR facade under the DMP's policy and verified bearer tokens (carnet.security.dmp_policy):
the same decisions as the SOAP endpoints, taken before data is read or written, and the masked
documents left out of a search's results and of its total."""

from __future__ import annotations

import json
from typing import Any

from carnet.db import write_transaction
from carnet.registry import patients
from tests.dmp import OPERATOR, bearer, claims, servers
from tests.fhir_helpers import (
    TRE_A07,
    Doc,
    audit_rows,
    issues,
    patient_cx,
    patient_token,
    post_bundle,
    provide_bundle,
    submitted_ids,
)

DOC, OTHER = "810000000001", "810000000002"


def test_fhir_under_the_dmp_policy(engine: Any, tmp_path: Any, authority: Any) -> None:
    env = servers(engine, tmp_path / "data", authority)
    with write_transaction(engine) as session:
        patients.upsert(session, patient_cx(1))
    me = {"Authorization": f"Bearer {bearer(authority, claims(DOC))}"}
    other = {"Authorization": f"Bearer {bearer(authority, claims(OTHER, structure='10B0000000002'))}"}
    search = f"/fhir/DocumentReference?patient.identifier={patient_token(1)}&status=current"

    # No identity: 401. No DMP for the patient yet: the submission is refused, nothing stored.
    assert post_bundle(env.client, provide_bundle(1, [Doc()])).status_code == 401
    resp = post_bundle(env.client, provide_bundle(1, [Doc()]), headers=me)
    assert resp.status_code == 403 and issues(resp) == [("LocalPolicyRestrictionError", "")]
    env.dmp.create(OPERATOR, patient_cx(1), "patient@example.org")

    # A professional feeds an existing DMP; reading it takes an authorisation.
    resp = post_bundle(env.client, provide_bundle(1, [Doc(content=b"visible")]), headers=me)
    assert resp.status_code == 200, resp.data
    binary = submitted_ids(resp)["Binary"][0]
    assert env.client.get(search, headers=me).status_code == 403
    # Retrieve and Find Document Lists take the same authorisation: 403 before a byte is read.
    lists = f"/fhir/List?patient.identifier={patient_token(1)}"
    for refused in (f"/fhir/Binary/{binary}", lists):
        resp = env.client.get(refused, headers=me)
        assert resp.status_code == 403 and issues(resp) == [("LocalPolicyRestrictionError", "")], refused
    env.dmp.authorize(OPERATOR, patient_cx(1), "professional", DOC)
    env.dmp.authorize(OPERATOR, patient_cx(1), "professional", OTHER)
    assert json.loads(env.client.get(search, headers=me).data)["total"] == 1
    assert json.loads(env.client.get(lists, headers=me).data)["total"] == 1
    assert env.client.get(f"/fhir/Binary/{binary}", headers=me).data == b"visible"

    # A document masked to professionals (MASQUE_PS) is seen by its author, not by another.
    masked = Doc(
        content=b"masked",
        security=[("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N"), (TRE_A07, "MASQUE_PS")],
        author=(OTHER, "AUTRE", "Paul"),  # the DMP knows the author by XCN.1, the national PS id
    )
    resp = post_bundle(
        env.client, provide_bundle(1, [masked], source_id="urn:oid:1.2.250.1.999.9"), headers=other
    )
    assert resp.status_code == 200, resp.data
    masked_id = submitted_ids(resp)["DocumentReference"][0]
    mine = json.loads(env.client.get(search, headers=me).data)
    assert mine["total"] == 1 and masked_id not in {e["resource"]["id"] for e in mine["entry"]}
    assert env.client.get(f"/fhir/DocumentReference/{masked_id}", headers=me).status_code == 404
    masked_binary = submitted_ids(resp)["Binary"][0]
    assert env.client.get(f"/fhir/Binary/{masked_binary}", headers=me).status_code == 404  # not leaked
    assert env.client.get(f"/fhir/Binary/{masked_binary}", headers=other).data == b"masked"
    theirs = json.loads(env.client.get(search, headers=other).data)
    assert theirs["total"] == 2 and masked_id in {e["resource"]["id"] for e in theirs["entry"]}

    rows = audit_rows(engine, "ITI-67")
    # The refused search is audited, with who asked; then one record per search.
    assert (json.loads(rows[0].principal)["id"], rows[0].outcome) == (DOC, 8)
    assert [json.loads(r.principal)["id"] for r in rows[-2:]] == [DOC, OTHER]
