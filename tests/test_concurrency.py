"""Races decided by the database: the same uniqueId submitted from many threads at once.

The registry never checks-then-inserts; the UNIQUE key on uniqueId decides. Exactly one submission
wins, every other one is refused with the precise code, and nothing of the losers is kept.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import requests
from lxml import etree
from sqlalchemy import func, select

from carnet.db import read_session, write_transaction
from carnet.registry import patients
from carnet.registry.schema import DocumentEntryRow, StoredDocumentRow, SubmissionSetRow
from carnet.xds import vocabulary as v
from tests.builders import Doc, new_oid, patient, provide_and_register
from tests.xds import envelope, response_status

THREADS = 12


def _race(url: str, bodies: list[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    barrier = Barrier(len(bodies))

    def send(body: str) -> tuple[str, list[tuple[str, str]]]:
        data = envelope(v.ACTION_ITI41, body)
        with requests.Session() as http:
            barrier.wait()
            resp = http.post(
                url + "/xds/repository",
                data=data,
                headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
                timeout=120,
            )
        return response_status(etree.fromstring(resp.content).find(f"{{{v.SOAP12}}}Body")[0])

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def _counts(engine):  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t))
            for t in (SubmissionSetRow, DocumentEntryRow, StoredDocumentRow)
        )


def test_same_document_unique_id_different_content(live_server, engine, settings) -> None:  # type: ignore[no-untyped-def]
    pid = patient(900)
    with write_transaction(engine) as s:
        patients.upsert(s, pid)
    uid = new_oid()
    bodies = [
        provide_and_register(pid, [Doc("Doc1", f"version {i}".encode(), unique_id=uid)])
        for i in range(THREADS)
    ]
    results = _race(live_server, bodies)
    winners = [r for r in results if r[0] == "Success"]
    losers = [r for r in results if r[0] != "Success"]
    assert len(winners) == 1, results
    assert {tuple(e[0] for e in r[1]) for r in losers} == {("XDSNonIdenticalHash",)}
    assert _counts(engine) == (1, 1, 1)
    blobs = [p for p in settings.blob_dir.rglob("*") if p.is_file()]
    assert len(blobs) == 1


def test_same_submission_set_unique_id(live_server, engine) -> None:  # type: ignore[no-untyped-def]
    pid = patient(901)
    with write_transaction(engine) as s:
        patients.upsert(s, pid)
    ss_uid = new_oid()
    bodies = [
        provide_and_register(pid, [Doc("Doc1", f"doc {i}".encode())], ss_unique_id=ss_uid)
        for i in range(THREADS)
    ]
    results = _race(live_server, bodies)
    assert [r[0] for r in results].count("Success") == 1, results
    assert {tuple(e[0] for e in r[1]) for r in results if r[0] != "Success"} == {
        ("XDSDuplicateUniqueIdInRegistry",)
    }
    assert _counts(engine) == (1, 1, 1)
