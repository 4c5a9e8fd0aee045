"""``carnet conformance run``: the command-line face of the NIST testkit replay.

carnet conformance run --target-registry URL --target-repository URL --testkit DIR [--testkit DIR]
    [--collections reg,rep,...] [--tests ID,...] [--target-mllp HOST:PORT] --report DIR

Writes ``junit.xml`` and ``index.html`` into the report directory, prints one line per test and,
last, ``N passed, N failed`` (``, N skipped`` when steps were not run or excluded). The exit
status is 1 when a step failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _mllp(text: str) -> str:
    from carnet.conformance.pif import FeedAddress

    try:
        FeedAddress.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def register(subparsers: Any) -> None:
    """Add ``conformance run`` to the ``carnet`` command's subparsers."""
    from carnet.conformance.runner import DEFAULT_AUTHORITY, DEFAULT_COLLECTIONS

    conf = subparsers.add_parser("conformance", help="replay NIST XDS testkit plans against an endpoint")
    actions = conf.add_subparsers(dest="action", required=True)
    r = actions.add_parser("run", help="run test collections and write JUnit and HTML reports")
    r.add_argument("--target-registry", required=True, help="Document Registry SOAP endpoint URL")
    r.add_argument("--target-repository", required=True, help="Document Repository SOAP endpoint URL")
    r.add_argument(
        "--testkit",
        required=True,
        action="append",
        type=Path,
        help="testkit directory (holding tests/) or its tests/ directory; repeatable, searched in order",
    )
    r.add_argument(
        "--collections", type=_csv, default=list(DEFAULT_COLLECTIONS), help="comma-separated collection tags"
    )
    r.add_argument(
        "--tests", type=_csv, default=[], help="comma-separated test ids (instead of whole collections)"
    )
    r.add_argument(
        "--target-mllp",
        type=_mllp,
        help="HOST:PORT of the target's ITI-8 listener, to feed the run's patient ids",
    )
    r.add_argument(
        "--patient-authority", default=DEFAULT_AUTHORITY, help="assigning authority OID of fed ids"
    )
    r.add_argument("--report", required=True, type=Path, help="directory for junit.xml and index.html")
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from carnet.conformance import report
    from carnet.conformance.results import Verdict
    from carnet.conformance.runner import RunOptions, print_progress, run

    options = RunOptions(
        registry_url=args.target_registry,
        repository_url=args.target_repository,
        testkits=list(args.testkit),
        collections=args.collections,
        tests=args.tests,
        mllp=args.target_mllp,
        patient_authority=args.patient_authority,
    )
    result = run(options, progress=print_progress)
    junit, page = report.write(result, args.report)
    for collection, counts in result.per_collection().items():
        print(
            f"collection {collection}: "
            + ", ".join(f"{counts[verdict]} {verdict.value}" for verdict in Verdict)
        )
    print(f"reports: {junit} {page}  ({result.seconds:.1f} s)")
    print(result.summary_line(), flush=True)
    return 1 if result.count(Verdict.FAILED) else 0
