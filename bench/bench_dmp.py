"""DMP access-control costs: token verification, and the policy's share of a FindDocuments.

    python bench/bench_dmp.py [--docs 20,200,1000] [--database-url URL]

Prints: XUA/VIHF assertion verification (signxml, RSA-2048, exclusive c14n, chain to the test
authority) and bearer JWT verification per token; then, for a patient with N documents (a third
masked, a sixth outside the caller's matrix row), the time of the query itself and of the policy
around it (``decide`` before, ``visible`` after), as an authorised nurse sees it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from lxml import etree

from carnet.db import make_engine, read_session, write_transaction
from carnet.dmp.api import DMP
from carnet.migrate import upgrade
from carnet.registry.iti42 import RegisterOptions, register
from carnet.registry.storedquery import queries
from carnet.registry.storedquery.params import Params
from carnet.security import jwt, pki, vihf, xua
from carnet.security.dmp_policy import DMPPolicy
from carnet.security.matrix import Matrix
from carnet.security.principal import Principal, system
from carnet.xds import ebrim
from carnet.xds.errors import ErrorCollector
from carnet.xml import parse
from tests.builders import Doc, submit_objects_request


def timed(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def tokens(directory: Path) -> None:
    pki.init(directory)
    signer = pki.load_signer(directory)
    claims = vihf.Claims(
        subject="810000000001",
        roles=[vihf.Code("10", vihf.PROFESSION_SYSTEM)],
        purpose=vihf.Code("normal", vihf.ACCESS_MODE_SYSTEM),
        structure="10B0000000001",
        authentication_mode="INDIRECTE",
        version="3.0",
        patient="280000000000001^^^&1.2.250.1.213.1.4.10&ISO",
    )
    assertion = xua.issue(signer, claims, timedelta(hours=1))
    security = etree.fromstring(xua.security_header(assertion).encode())
    ms = timed(lambda: xua.verify(security, directory / "authority.pem", xua.Window()), 200)
    print(f"XUA/VIHF assertion verify: {ms:.2f} ms median ({len(assertion)} bytes)")
    token = jwt.issue(signer, claims, timedelta(hours=1))
    keys = pki.load_public_keys(directory / "signer.pem")
    ms = timed(lambda: jwt.verify(token, keys, None, timedelta(hours=2)), 500)
    print(f"bearer JWT verify:          {ms:.3f} ms median ({len(token)} bytes)")


def policy(url: str, counts: list[int]) -> None:
    engine = make_engine(url)
    upgrade(engine)
    dmp = DMP(engine, DMPPolicy(engine, Matrix.load()))
    nurse = Principal("professional", "810000000002", role="60", structure="10B0000000001")
    for n in counts:
        pid = f"{2_900_000_000_000_00 + n:015d}^^^&1.2.250.1.213.1.4.10&ISO"
        dmp.create(system("bench"), pid, "p@example.org")
        dmp.authorize(system("bench"), pid, "professional", nurse.id)
        docs = [
            Doc(
                f"d{i}",
                b"x",
                hash="0" * 40,
                repository_unique_id="1.2.250.1.999.1.1.1",
                size=1,
                dmp_confidentiality=("MASQUE_PS",) if i % 3 == 0 else (),
                type_code=("68599-0", "2.16.840.1.113883.6.1", "psy") if i % 6 == 1 else Doc.type_code,
            )
            for i in range(n)
        ]
        errors = ErrorCollector()
        rol = parse(submit_objects_request(pid, docs).encode())[0]
        sub = ebrim.parse_submission(rol, errors)
        with write_transaction(engine) as session:
            register(session, sub, RegisterOptions(accept_any_patient=True))
        query, params = queries.prepare(
            "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
            [
                ("$XDSDocumentEntryPatientId", [f"'{pid}'"]),
                ("$XDSDocumentEntryStatus", ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"]),
            ],
        )

        def run_query(query: queries.StoredQuery = query, params: Params = params) -> queries.QueryResult:
            with read_session(engine) as session:
                return queries.execute(session, query, params)

        result = run_query()
        pdp = dmp.pdp
        q_ms = timed(run_query, 50)
        d_ms = timed(lambda: pdp.decide(nurse, "query", pid), 50)  # noqa: B023
        v_ms = timed(lambda: pdp.visible(nurse, "query", list(result.documents)), 50)  # noqa: B023
        kept = len(pdp.visible(nurse, "query", list(result.documents)))
        print(
            f"FindDocuments, {n:>5} documents: query {q_ms:7.2f} ms, decide {d_ms:5.2f} ms, "
            f"visible {v_ms:7.2f} ms ({kept} shown); policy overhead {(d_ms + v_ms) / q_ms * 100:5.0f}%"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", default="20,200,1000")
    ap.add_argument("--database-url")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tokens(Path(tmp) / "pki")
        policy(args.database_url or f"sqlite:///{tmp}/bench.sqlite3", [int(n) for n in args.docs.split(",")])


if __name__ == "__main__":
    main()
