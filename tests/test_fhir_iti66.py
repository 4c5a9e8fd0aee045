"""ITI-66 Find Document Lists as ITI-67 behaves: _lastUpdated, repeated parameters ANDed, _sort,
the same 400s for status and isArchived, and paging."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.datastructures import MultiDict

from tests.fhir_helpers import (
    Doc,
    known_patients,
    patient_id,
    post_bundle,
    provide_bundle,
    submitted_ids,
)

P1 = f"patient={patient_id(1)}"
DESIGNATION = "urn:oid:1.2.250.1.213.1.1.4.4"


@pytest.fixture
def packages(client: Any, engine: Any) -> dict[str, str]:
    """Three SubmissionSets of patient 1, registered in the order 2020, 2022, 2021 of their
    submissionTime, the first with a Folder coded 04 and 05; one SubmissionSet of patient 2."""
    known_patients(engine, 1, 2)
    ids: dict[str, str] = {}
    folder = {"title": "Suivi", "codes": [(DESIGNATION, "04"), (DESIGNATION, "05")]}
    for year in ("2020", "2022", "2021"):
        resp = post_bundle(
            client,
            provide_bundle(
                1,
                [Doc()],
                submission_time=f"{year}-05-05T10:00:00Z",
                folder=folder if year == "2020" else None,
            ),
        )
        assert resp.status_code == 200, resp.data
        lists = submitted_ids(resp)["List"]
        ids[f"ss{year}"] = lists[0]
        if year == "2020":
            ids["folder"] = lists[1]
    other = post_bundle(client, provide_bundle(2, [Doc()]))
    ids["other-patient"] = submitted_ids(other)["List"][0]
    return ids


def bundle_of(client: Any, query: str, expect: int = 200) -> dict[str, Any]:
    resp = client.get(f"/fhir/List?{query}")
    assert resp.status_code == expect, resp.data
    data: dict[str, Any] = json.loads(resp.data)
    return data


def found(client: Any, ids: dict[str, str], query: str) -> list[str]:
    """The names (keys of ``ids``) of the Lists found, in the order of the searchset."""
    by_id = {v: k for k, v in ids.items()}
    return [
        by_id[e["resource"]["id"]]
        for e in bundle_of(client, query).get("entry", [])
        if e["resource"]["resourceType"] == "List"
    ]


def read(client: Any, rid: str) -> dict[str, Any]:
    resp = client.get(f"/fhir/List/{rid}")
    assert resp.status_code == 200, resp.data
    data: dict[str, Any] = json.loads(resp.data)
    return data


# ---------------------------------------------------------------------------------------------
# _lastUpdated
# ---------------------------------------------------------------------------------------------


def test_last_updated_of_submission_sets_and_of_a_folder_documents_are_added_to(
    client: Any, engine: Any
) -> None:
    """A SubmissionSet's last change is its registration; a Folder's is its lastUpdateTime, which
    moves when a later submission adds a document to it."""
    known_patients(engine, 1)
    first = submitted_ids(post_bundle(client, provide_bundle(1, [Doc()], folder={"title": "Suivi"})))
    ids = {"ss-a": first["List"][0], "folder": first["List"][1]}
    registered = read(client, ids["folder"])["meta"]["lastUpdated"]
    time.sleep(1.1)  # instants are written to the second
    new = Doc()
    bundle = provide_bundle(1, [new])
    put = read(client, ids["folder"])
    put.pop("meta")
    put["entry"] = [*put["entry"], {"item": {"reference": new.full_url}}]
    bundle["entry"].insert(2, {"resource": put, "request": {"method": "PUT", "url": f"List/{ids['folder']}"}})
    resp = post_bundle(client, bundle)
    assert resp.status_code == 200, resp.data
    ids["ss-b"] = submitted_ids(resp)["List"][0]

    folder_updated = read(client, ids["folder"])["meta"]["lastUpdated"]
    ss_a = read(client, ids["ss-a"])["meta"]["lastUpdated"]
    ss_b = read(client, ids["ss-b"])["meta"]["lastUpdated"]
    assert folder_updated > registered and ss_b > ss_a

    # Folders: the second submission changed the folder, not its registration.
    assert found(client, ids, f"{P1}&code=folder&_lastUpdated=ge{folder_updated}") == ["folder"]
    assert found(client, ids, f"{P1}&code=folder&_lastUpdated=lt{folder_updated}") == []
    assert found(client, ids, f"{P1}&code=folder&_lastUpdated={folder_updated}") == ["folder"]
    # SubmissionSets: when each was registered.
    assert found(client, ids, f"{P1}&code=submissionset&_lastUpdated=ge{ss_b}") == ["ss-b"]
    assert found(client, ids, f"{P1}&code=submissionset&_lastUpdated=lt{ss_b}") == ["ss-a"]
    assert found(client, ids, f"{P1}&code=submissionset&_lastUpdated=le{ss_a}") == ["ss-a"]
    # Both kinds at once; a repetition narrows (ge AND lt), a comma widens (eq OR eq).
    assert set(found(client, ids, f"{P1}&_lastUpdated=ge{folder_updated}")) >= {"folder", "ss-b"}
    assert "ss-a" not in found(client, ids, f"{P1}&_lastUpdated=ge{folder_updated}")
    assert found(client, ids, f"{P1}&_lastUpdated=ge{ss_a}&_lastUpdated=lt{ss_a}") == []
    assert set(found(client, ids, f"{P1}&code=submissionset&_lastUpdated={ss_a},{ss_b}")) == {"ss-a", "ss-b"}
    # Applied, hence in the self link; a bad date is a 400.
    self_link = bundle_of(client, f"{P1}&_lastUpdated=ge{ss_a}")["link"][0]["url"]
    assert parse_qs(urlsplit(self_link).query)["_lastUpdated"] == [f"ge{ss_a}"]
    bad = bundle_of(client, f"{P1}&_lastUpdated=ge2020-13-45", expect=400)
    assert bad["issue"][0]["code"] == "invalid"


def test_last_updated_is_in_the_capability_statement(client: Any) -> None:
    statement = json.loads(client.get("/fhir/metadata").data)
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert "_lastUpdated" in {p["name"] for p in resources["List"]["searchParam"]}


# ---------------------------------------------------------------------------------------------
# Repeated parameters: AND
# ---------------------------------------------------------------------------------------------

SUBMISSION_SETS = {"ss2020", "ss2021", "ss2022"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # source.family / source.given (SubmissionSet author MEDECIN Alice): each repetition narrows.
        ("source.family=zz&source.family=MED", set()),
        ("source.family=MED&source.family=zz", set()),
        ("source.family=MED&source.family=medecin", SUBMISSION_SETS),
        ("source.family=zz,MED", SUBMISSION_SETS),  # a comma is an OR
        ("source.given=ali&source.given=zz", set()),
        ("source.family=MED&source.given=zz", set()),
        ("source.family:exact=MEDECIN", SUBMISSION_SETS),
        ("source.family:exact=MED", set()),
        # designationType: the SubmissionSets are 04, the Folder 04 and 05.
        ("designationType=04&designationType=99", set()),
        ("designationType=04,99", SUBMISSION_SETS | {"folder"}),
        ("designationType=04&designationType=05", {"folder"}),
        (f"designationType={DESIGNATION}|05&designationType=04", {"folder"}),
        # sourceId, status, code, identifier.
        ("sourceId=urn:oid:1.2.250.1.999.9&sourceId=urn:oid:1.2.3", set()),
        ("sourceId=urn:oid:1.2.250.1.999.9,urn:oid:1.2.3", SUBMISSION_SETS),
        ("status=current&status=retired", set()),
        ("status=current,retired", SUBMISSION_SETS | {"folder"}),
        ("code=submissionset&code=folder", set()),
    ],
)
def test_repeated_parameters_are_and(
    client: Any, packages: dict[str, str], query: str, expected: set[str]
) -> None:
    assert set(found(client, packages, f"{P1}&{query}")) == expected


def test_repeated_ids_and_identifiers_are_and(client: Any, packages: dict[str, str]) -> None:
    a, b = packages["ss2020"], packages["folder"]
    assert set(found(client, packages, f"_id={a},{b}")) == {"ss2020", "folder"}
    assert found(client, packages, f"_id={a}&_id={b}") == []
    assert found(client, packages, f"_id={a}&_id={a}") == ["ss2020"]
    assert found(client, packages, f"{P1}&identifier=urn:uuid:{a}&identifier=urn:uuid:{b}") == []


def test_post_search_ands_repeated_form_parameters(client: Any, packages: dict[str, str]) -> None:
    def posted(form: list[tuple[str, str]]) -> set[str]:
        resp = client.post("/fhir/List/_search", data=MultiDict([("patient", patient_id(1)), *form]))
        assert resp.status_code == 200, resp.data
        by_id = {v: k for k, v in packages.items()}
        return {by_id[e["resource"]["id"]] for e in json.loads(resp.data).get("entry", [])}

    form = [("code", "submissionset"), ("source.family", "zz"), ("source.family", "MED")]
    assert posted(form) == set()
    assert posted([("code", "submissionset"), ("source.family", "MED")]) == SUBMISSION_SETS
    assert posted([("designationType", "04"), ("designationType", "05")]) == {"folder"}


# ---------------------------------------------------------------------------------------------
# _sort
# ---------------------------------------------------------------------------------------------


def test_sort_by_date_and_last_updated(client: Any, packages: dict[str, str]) -> None:
    """date is submissionTime (the Folder's is its lastUpdateTime: now); _lastUpdated the
    registration, in the order 2020, 2022, 2021."""
    ascending = ["ss2020", "ss2021", "ss2022", "folder"]
    assert found(client, packages, f"{P1}&_sort=date") == ascending
    assert found(client, packages, f"{P1}&_sort=-date") == ascending[::-1]
    assert found(client, packages, P1) == ascending[::-1]  # the default: most recent first
    sets = f"{P1}&code=submissionset"
    assert found(client, packages, f"{sets}&_sort=_lastUpdated") == ["ss2020", "ss2022", "ss2021"]
    assert found(client, packages, f"{sets}&_sort=-_lastUpdated") == ["ss2021", "ss2022", "ss2020"]
    # Several keys: the first decides, the next breaks its ties.
    assert found(client, packages, f"{sets}&_sort=-date,_lastUpdated") == ["ss2022", "ss2021", "ss2020"]
    self_link = bundle_of(client, f"{P1}&_sort=-date")["link"][0]["url"]
    assert parse_qs(urlsplit(self_link).query)["_sort"] == ["-date"]


@pytest.mark.parametrize("key", ["bogus", "-bogus", "date,title", "creation"])
def test_unknown_sort_key_is_refused_as_in_iti67(client: Any, packages: dict[str, str], key: str) -> None:
    bad = bundle_of(client, f"{P1}&_sort={key}", expect=400)
    assert bad["issue"][0]["code"] == "not-supported"
    assert "_sort" in bad["issue"][0]["diagnostics"]


# ---------------------------------------------------------------------------------------------
# Validation as in ITI-67
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "isArchived=bogus",
        "isArchived=true,maybe",
        "status=http://hl7.org/fhir/list-status|current",
        "status=current,http://hl7.org/fhir/list-status|retired",
    ],
)
def test_bad_status_and_is_archived_are_400_on_both_searches(
    client: Any, packages: dict[str, str], query: str
) -> None:
    for resource in ("List", "DocumentReference"):
        resp = client.get(f"/fhir/{resource}?{P1}&{query}")
        assert resp.status_code == 400, (resource, resp.data)
        assert json.loads(resp.data)["issue"][0]["code"] == "invalid"


def test_valid_status_and_is_archived_still_filter(client: Any, packages: dict[str, str]) -> None:
    everything = SUBMISSION_SETS | {"folder"}
    assert set(found(client, packages, f"{P1}&status=current&isArchived=false")) == everything
    assert set(found(client, packages, f"{P1}&isArchived=true,false")) == everything
    assert found(client, packages, f"{P1}&isArchived=true") == []
    assert found(client, packages, f"{P1}&status=retired") == []


# ---------------------------------------------------------------------------------------------
# Paging
# ---------------------------------------------------------------------------------------------


def test_paging_next_links_are_followed_to_the_end(client: Any, packages: dict[str, str]) -> None:
    url: str | None = f"/fhir/List?{P1}&status=current&_count=1&_sort=date"
    seen: list[str] = []
    pages = 0
    while url:
        resp = client.get(url.replace("http://localhost", ""))
        assert resp.status_code == 200, resp.data
        bundle = json.loads(resp.data)
        assert bundle["total"] == 4
        page = [e["resource"]["id"] for e in bundle["entry"]]
        assert len(page) == 1
        seen += page
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        query = parse_qs(urlsplit(links["self"]).query)
        assert query["_sort"] == ["date"] and query["status"] == ["current"]  # every parameter carried
        assert ("previous" in links) == (pages > 0)
        url = links.get("next")
        pages += 1
    assert pages == 4
    by_id = {v: k for k, v in packages.items()}
    assert [by_id[i] for i in seen] == ["ss2020", "ss2021", "ss2022", "folder"]
    # _count=3: two pages, the last one short.
    last = bundle_of(client, f"{P1}&_count=3&_offset=3&_sort=date")
    assert len(last["entry"]) == 1 and "next" not in {link["relation"] for link in last["link"]}
