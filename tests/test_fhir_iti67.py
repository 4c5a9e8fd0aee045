"""ITI-67 Find Document References: every parameter of MHD 4.2.3 and PDSm 3.1.1, paging and formats."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.fhir_helpers import (
    CCAM,
    CONFIDENTIALITY,
    LOINC,
    TRE_A03,
    TRE_A07,
    Doc,
    audit_rows,
    issues,
    known_patients,
    nir,
    patient_cx,
    patient_id,
    patient_token,
    post_bundle,
    provide_bundle,
    submitted_ids,
)
from tests.xds import query


@pytest.fixture
def loaded(client: Any, engine: Any) -> dict[str, str]:
    """Four documents of patient 1 (and one of patient 2), each distinct on some parameter."""
    known_patients(engine, 1, 2)
    docs = {
        "cr": Doc(
            category=(TRE_A03, "10"),
            type=(LOINC, "11488-4"),
            creation="2020-03-10T12:00:00Z",
            period=("2020-03-01T08:00:00Z", "2020-03-02T08:00:00Z"),
            events=[(CCAM, "ZBQK002")],
            author=("801", "MARTIN", "Claire"),
            related=[("urn:oid:1.2.3.4", "ACC-1", "urn:ihe:iti:xds:2013:accession")],
        ),
        "synth": Doc(
            category=(TRE_A03, "11"),
            type=(LOINC, "34133-9"),
            creation="2021-06-15T12:00:00Z",
            period=("2021-06-01T08:00:00Z", None),
            security=[(CONFIDENTIALITY, "N"), (TRE_A07, "MASQUE_PS")],
            author=("802", "DURAND", "Paul"),
            format=(
                "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                "urn:ihe:iti:xds-sd:pdf:2008",
            ),
            mime="application/pdf",
        ),
        "img": Doc(
            category=(TRE_A03, "31"),
            type=(LOINC, "18748-4"),
            creation="2022-01-20T12:00:00Z",
            period=("2022-01-19T08:00:00Z", "2022-01-19T09:00:00Z"),
            events=[(CCAM, "DEQP003"), (CCAM, "ZBQK002")],
            author=("803", "MARTINEZ", "Luc"),
            facility=(
                "https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite",
                "SA07",
            ),
            setting=(
                "https://mos.esante.gouv.fr/NOS/TRE_A01-CadreExercice/FHIR/TRE-A01-CadreExercice",
                "AMBULATOIRE",
            ),
        ),
        "old": Doc(category=(TRE_A03, "10"), creation="2019-12-31T23:00:00Z", period=(None, None)),
    }
    ids: dict[str, str] = {}
    for name, doc in docs.items():
        resp = post_bundle(client, provide_bundle(1, [doc]))
        assert resp.status_code == 200, resp.data
        ids[name] = submitted_ids(resp)["DocumentReference"][0]
    other = post_bundle(client, provide_bundle(2, [Doc()]))
    ids["other-patient"] = submitted_ids(other)["DocumentReference"][0]
    # "old" is replaced: superseded.
    new = Doc(relates_to=[("replaces", f"DocumentReference/{ids['old']}")], creation="2023-05-05T05:05:05Z")
    resp = post_bundle(client, provide_bundle(1, [new], patches=[f"DocumentReference/{ids['old']}"]))
    assert resp.status_code == 200, resp.data
    ids["new"] = submitted_ids(resp)["DocumentReference"][0]
    ids["uid:cr"] = docs["cr"].unique_id
    return ids


def search(client: Any, query: str, expect: int = 200) -> dict[str, Any]:
    resp = client.get(f"/fhir/DocumentReference?{query}")
    assert resp.status_code == expect, resp.data
    data: dict[str, Any] = json.loads(resp.data)
    return data


def found(client: Any, ids: dict[str, str], query: str) -> set[str]:
    bundle = search(client, query)
    by_id = {v: k for k, v in ids.items()}
    return {
        by_id[e["resource"]["id"]]
        for e in bundle.get("entry", [])
        if e["resource"]["resourceType"] == "DocumentReference"
    }


P1 = f"patient={patient_id(1)}"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (P1, {"cr", "synth", "img", "old", "new"}),
        (f"{P1}&status=current", {"cr", "synth", "img", "new"}),
        (f"{P1}&status=superseded", {"old"}),
        (f"{P1}&status=current,superseded", {"cr", "synth", "img", "old", "new"}),
        (f"patient.identifier={patient_token(1)}&status=current", {"cr", "synth", "img", "new"}),
        (
            f"patient.identifier={nir(1)}&status=current",
            {"cr", "synth", "img", "new"},
        ),  # no system: any authority
        (f"patient=Patient/{patient_id(1)}&status=current", {"cr", "synth", "img", "new"}),
        (
            f"patient=http://localhost/fhir/Patient/{patient_id(1)}&status=current",
            {"cr", "synth", "img", "new"},
        ),
        (f"patient={patient_id(9)}&status=current", set()),
        # category (classCode): system|code, code alone, system|
        (f"{P1}&status=current&category={TRE_A03}|10", {"cr", "new"}),
        (f"{P1}&status=current&category=11", {"synth"}),
        (f"{P1}&status=current&category=10,31", {"cr", "img", "new"}),
        (f"{P1}&status=current&category={LOINC}|10", set()),
        (
            f"{P1}&status=current&category=urn:oid:1.2.250.1.213.1.1.4.1|31",
            {"img"},
        ),  # the OID form of TRE_A03
        (f"{P1}&status=current&type={LOINC}|34133-9", {"synth"}),
        (f"{P1}&status=current&setting=AMBULATOIRE", {"img"}),
        (f"{P1}&status=current&facility=SA07", {"img"}),
        (f"{P1}&status=current&format=urn:ihe:iti:xds-sd:pdf:2008", {"synth"}),
        # event and security-label are lists: repeated = AND, comma = OR
        (f"{P1}&status=current&event={CCAM}|ZBQK002", {"cr", "img"}),
        (f"{P1}&status=current&event=ZBQK002&event=DEQP003", {"img"}),
        (f"{P1}&status=current&security-label=MASQUE_PS", {"synth"}),
        (
            f"{P1}&status=current&security-label={CONFIDENTIALITY}|N&security-label={TRE_A07}|MASQUE_PS",
            {"synth"},
        ),
        # creation: ge/lt are ITI-18 From/To; a bare date is its whole range
        (f"{P1}&status=current&creation=ge2021-01-01", {"synth", "img", "new"}),
        (f"{P1}&status=current&creation=lt2021-06-15T12:00:00Z", {"cr"}),
        (f"{P1}&status=current&creation=le2021-06-15T12:00:00Z", {"cr", "synth"}),
        (f"{P1}&status=current&creation=2021", {"synth"}),
        (f"{P1}&status=current&creation=2021-06-15T14:00:00%2B02:00", {"synth"}),  # zone converted to UTC
        (f"{P1}&status=current&creation=ge2020&creation=lt2022", {"cr", "synth"}),
        # period overlaps [serviceStart, serviceStop]; a missing stop is open
        (f"{P1}&status=current&period=ge2021-07-01", {"synth", "img", "new"}),  # synth: still open
        (f"{P1}&status=current&period=ge2021-07-01&period=lt2022-01-01", {"synth"}),
        (f"{P1}&status=current&period=lt2020-03-02", {"cr"}),
        (f"{P1}&status=current&period=ge2020-03-01&period=le2020-12-31", {"cr"}),
        (f"{P1}&status=current&period-start=ge2022-01-01", {"img", "new"}),
        (f"{P1}&status=current&period-end=lt2020-03-03", {"cr"}),
        # author names (XCN.2 family, XCN.3 given): starts-with, case-insensitive; :exact
        (f"{P1}&status=current&author.family=martin", {"cr", "img"}),
        (f"{P1}&status=current&author.family:exact=MARTIN", {"cr"}),
        (f"{P1}&status=current&author.given=pa", {"synth"}),
        (f"{P1}&status=current&author.family=MARTIN&author.given=Luc", {"img"}),
        (f"{P1}&status=current&author.family=Claire", set()),  # a given name is not a family name
        # related (referenceIdList)
        (f"{P1}&status=current&related=urn:oid:1.2.3.4|ACC-1", {"cr"}),
        (f"{P1}&status=current&related.identifier=ACC-1", {"cr"}),
        (f"{P1}&status=current&related=ACC-2", set()),
        # PDSm isArchived: nothing is archived yet
        (f"{P1}&status=current&isArchived=false", {"cr", "synth", "img", "new"}),
        (f"{P1}&status=current&isArchived=true", set()),
    ],
)
def test_parameters(client: Any, loaded: dict[str, str], query: str, expected: set[str]) -> None:
    assert found(client, loaded, query) == expected


def test_identifier_id_and_dates(client: Any, loaded: dict[str, str]) -> None:
    assert found(client, loaded, f"{P1}&identifier=urn:ietf:rfc:3986|urn:oid:{loaded['uid:cr']}") == {"cr"}
    assert found(client, loaded, f"identifier=urn:oid:{loaded['uid:cr']}") == {"cr"}  # no patient: by id
    assert found(client, loaded, f"{P1}&identifier=urn:uuid:{loaded['img']}") == {"img"}
    assert found(client, loaded, f"_id={loaded['img']},{loaded['synth']}") == {"img", "synth"}
    # A repetition is an AND: no document is both.
    assert found(client, loaded, f"_id={loaded['img']}&_id={loaded['synth']}") == set()
    assert found(client, loaded, f"_id={loaded['img']},{loaded['synth']}&_id={loaded['img']}") == {"img"}
    assert found(client, loaded, f"{P1}&status=current&date=ge2000-01-01") == {"cr", "synth", "img", "new"}
    assert found(client, loaded, f"{P1}&date=lt2000-01-01") == set()


def test_last_updated_follows_a_status_change(client: Any, engine: Any) -> None:
    known_patients(engine, 1)
    first = submitted_ids(post_bundle(client, provide_bundle(1, [Doc()])))["DocumentReference"][0]
    time.sleep(1.1)  # instants are written to the second
    replacement = Doc(relates_to=[("replaces", f"DocumentReference/{first}")])
    assert post_bundle(client, provide_bundle(1, [replacement])).status_code == 200
    old = search(client, f"_id={first}")["entry"][0]["resource"]
    assert old["status"] == "superseded" and old["meta"]["lastUpdated"] > old["date"]
    ids = {"old": first}
    assert found(client, ids, f"_id={first}&_lastUpdated=ge{old['meta']['lastUpdated']}") == {"old"}
    assert found(client, ids, f"_id={first}&_lastUpdated=lt{old['meta']['lastUpdated']}") == set()


def test_paging_next_links_are_replayable(client: Any, loaded: dict[str, str]) -> None:
    url: str | None = f"/fhir/DocumentReference?{P1}&_count=2&_sort=creation"
    seen: list[str] = []
    pages = 0
    while url:
        resp = client.get(url.replace("http://localhost", ""))
        assert resp.status_code == 200
        bundle = json.loads(resp.data)
        assert bundle["total"] == 5
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert parse_qs(urlsplit(links["self"]).query)["_sort"] == ["creation"]  # every parameter carried
        url = links.get("next")
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 5
    creations = [loaded[k] for k in ("old", "cr", "synth", "img", "new")]
    assert seen == creations  # sorted by creation ascending


def test_next_links_of_a_post_search_carry_its_form(client: Any, loaded: dict[str, str]) -> None:
    """A POST _search keeps its parameters out of the URL; its links must carry them to be followed."""
    resp = client.post(
        "/fhir/DocumentReference/_search",
        data={"patient.identifier": patient_token(1), "_count": "2", "_sort": "creation"},
    )
    seen: list[str] = []
    while True:
        bundle = json.loads(resp.data)
        assert resp.status_code == 200 and bundle["total"] == 5
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        nxt = {link["relation"]: link["url"] for link in bundle["link"]}.get("next")
        if nxt is None:
            break
        assert parse_qs(urlsplit(nxt).query)["patient.identifier"] == [patient_token(1)]
        resp = client.get(nxt.replace("http://localhost", ""))
    assert seen == [loaded[k] for k in ("old", "cr", "synth", "img", "new")]


def test_default_sort_is_most_recent_first_and_count(client: Any, loaded: dict[str, str]) -> None:
    bundle = search(client, f"{P1}&status=current&_count=1")
    assert len(bundle["entry"]) == 1 and bundle["entry"][0]["resource"]["id"] == loaded["new"]
    assert bundle["total"] == 4
    assert search(client, f"{P1}&_summary=count")["total"] == 5
    assert "entry" not in search(client, f"{P1}&_summary=count")


def test_post_search_and_xml(client: Any, loaded: dict[str, str]) -> None:
    resp = client.post(
        "/fhir/DocumentReference/_search",
        data={"patient.identifier": patient_token(1), "status": "current", "category": "31"},
        headers={"Accept": "application/fhir+xml"},
    )
    assert resp.status_code == 200 and resp.content_type.startswith("application/fhir+xml")
    bundle = Bundle.model_validate_xml(resp.data)
    assert [e.resource.id for e in bundle.entry or []] == [loaded["img"]]
    assert bundle.link and bundle.link[0].url.startswith("http://localhost/fhir/DocumentReference?")
    resp = client.get(f"/fhir/DocumentReference?{P1}&_format=xml")
    assert resp.content_type.startswith("application/fhir+xml")


def test_unknown_parameters_are_ignored_with_a_warning(client: Any, loaded: dict[str, str]) -> None:
    bundle = search(client, f"{P1}&status=current&frobnicate=1")
    outcomes = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "OperationOutcome"]
    assert outcomes and "frobnicate" in outcomes[0]["resource"]["issue"][0]["diagnostics"]
    assert "frobnicate" not in bundle["link"][0]["url"]
    # Only _summary=count is applied; the summary views are not, and the client is told so.
    bundle = search(client, f"{P1}&status=current&_summary=true")
    outcomes = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "OperationOutcome"]
    assert outcomes and "_summary" in outcomes[0]["resource"]["issue"][0]["diagnostics"]
    assert "_summary" not in bundle["link"][0]["url"]
    counted = search(client, f"{P1}&status=current&_summary=count")
    assert "_summary=count" in counted["link"][0]["url"] and counted["total"] == bundle["total"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("status=current", "required"),  # no patient
        (f"{P1}&creation=ge2020-13-45", "invalid"),
        (f"{P1}&status=http://hl7.org/fhir/document-reference-status|current", "invalid"),
        (f"{P1}&_sort=title", "not-supported"),
        (f"{P1}&_count=lots", "invalid"),
    ],
)
def test_bad_searches(client: Any, loaded: dict[str, str], query: str, code: str) -> None:
    resp = client.get(f"/fhir/DocumentReference?{query}")
    assert resp.status_code == 400
    assert json.loads(resp.data)["issue"][0]["code"] == code


@pytest.mark.parametrize(
    "query",
    [
        "DocumentReference?{P}&category:not=10",
        "DocumentReference?{P}&status:missing=true",
        "List?{P}&code:not=folder",
    ],
)
def test_unsupported_modifiers_are_refused(client: Any, loaded: dict[str, str], query: str) -> None:
    """Dropping a ':not' would answer with the very documents the client excluded."""
    resp = client.get("/fhir/" + query.format(P=P1))
    assert resp.status_code == 400
    assert json.loads(resp.data)["issue"][0]["code"] == "not-supported"
    # A modifier of an unknown parameter goes with it: ignored, with the warning.
    assert client.get(f"/fhir/DocumentReference?{P1}&frobnicate:not=1").status_code == 200


def test_missing_patient_names_the_xds_code(client: Any, loaded: dict[str, str]) -> None:
    resp = client.get("/fhir/DocumentReference?status=current")
    assert issues(resp) == [("XDSStoredQueryMissingParam", "")]


def test_too_many_results(client: Any, loaded: dict[str, str], carnet: Any) -> None:
    carnet.settings.max_query_results = 3
    resp = client.get(f"/fhir/DocumentReference?{P1}")
    assert issues(resp) == [("XDSTooManyResults", "")]


def test_searches_are_audited(client: Any, loaded: dict[str, str], engine: Any) -> None:
    search(client, f"{P1}&status=current")
    row = audit_rows(engine, "ITI-67")[-1]
    assert row.outcome == 0 and row.patient_id.startswith(nir(1)) and "Query" in row.objects


@contextmanager
def hiding_masked(carnet: Any) -> Iterator[None]:
    """Carnet's decisions, except that documents coded MASQUE_PS are left out of every result."""
    real = carnet.pdp

    class HideMasked:
        def decide(self, *a: Any, **k: Any) -> Any:
            return real.decide(*a, **k)

        def visible(self, principal: Any, action: Any, hits: list[Any]) -> list[Any]:
            return [h for h in hits if "MASQUE_PS" not in h.fragment]

    carnet.pdp = HideMasked()
    try:
        yield
    finally:
        carnet.pdp = real


def test_policy_filters_results(client: Any, loaded: dict[str, str], carnet: Any) -> None:
    """Results pass PolicyDecisionPoint.visible: what it leaves out is neither listed nor counted."""
    with hiding_masked(carnet):
        assert found(client, loaded, f"{P1}&status=current") == {"cr", "img", "new"}
        assert search(client, f"{P1}&status=current")["total"] == 3
        assert client.get(f"/fhir/DocumentReference/{loaded['synth']}").status_code == 404


def test_hidden_documents_do_not_count_against_the_limit(
    client: Any, loaded: dict[str, str], carnet: Any
) -> None:
    """The registry's result limit counts what the caller is shown, on ITI-67 and ITI-18 alike: a
    professional who sees 3 documents is not told the search is too big because of a 4th, masked."""
    carnet.settings.max_query_results = 3
    find_documents = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    xds_params = [
        ("$XDSDocumentEntryPatientId", [f"'{patient_cx(1)}'"]),
        ("$XDSDocumentEntryStatus", ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"]),
    ]
    # Four current documents, one of them masked: over the limit for whoever sees all four.
    resp = client.get(f"/fhir/DocumentReference?{P1}&status=current")
    assert resp.status_code == 400 and issues(resp) == [("XDSTooManyResults", "")]
    assert query(client, find_documents, xds_params).errors[0][0] == "XDSTooManyResults"
    with hiding_masked(carnet):
        assert search(client, f"{P1}&status=current")["total"] == 3
        answer = query(client, find_documents, xds_params)
        assert answer.status == "Success" and len(answer.documents) == 3
