"""Command-line tools of the CI-SIS / DMP profiles, thin clients of carnet.profiles:

carnet profiles import DIR [DIR...] [--profiles-dir PATH]   refresh profiles/ from an ANS NOS export
carnet cda metadata FILE.xml [--format json]                 the XDS metadata of a CDA header
carnet cda validate FILE.xml [--package DIR] [--format json] CDA_extended.xsd + the volet's schematron
carnet publish FILE.xml [--url URL] [--source-id OID]        POST the CDA to a Carnet's /publish

Exit status: 0 success (valid), 1 refused (invalid document, failed publication), 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from lxml import etree

from carnet.config import Settings
from carnet.profiles.terminology import DEFAULT_DIR, ProfileDataError, load


def _profiles_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "profiles_dir", None):
        return Path(args.profiles_dir)
    return Settings.from_env().profiles_dir or DEFAULT_DIR


def _read_cda(path: str) -> etree._Element | None:
    from carnet.xml import UnsafeXMLError, parse

    try:
        return parse(Path(path).read_bytes())
    except (OSError, UnsafeXMLError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return None


def cmd_profiles_import(args: argparse.Namespace) -> int:
    from carnet.profiles.nos import import_export

    target = _profiles_dir(args)
    try:
        report = import_export([Path(d) for d in args.directories], target)
    except ProfileDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in report.written:
        print(f"written    {path.relative_to(target)}")
    for path in report.unchanged:
        print(f"unchanged  {path.relative_to(target)}")
    for name in report.missing:
        print(f"not in the export, kept as it is: {name}")
    return 0


def cmd_cda_metadata(args: argparse.Namespace) -> int:
    from carnet.profiles.cda.header import CdaError, derive, entry_json

    root = _read_cda(args.file)
    if root is None:
        return 2
    try:
        derived = derive(root, load(_profiles_dir(args)))
    except CdaError as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 2
    for problem in derived.problems:
        print(f"warning: {problem}", file=sys.stderr)
    data = entry_json(derived.entry)
    if args.format == "json":
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    for key, value in data.items():
        if isinstance(value, dict):
            value = f"{value['code']} ({value['codingScheme']}) {value.get('displayName') or ''}".rstrip()
        elif isinstance(value, list):
            value = "; ".join(
                v
                if isinstance(v, str)
                else f"{v['code']} ({v['codingScheme']})"
                if "code" in v
                else json.dumps(v, ensure_ascii=False)
                for v in value
            )
        print(f"{key:28} {value if value is not None else '-'}")
    return 0


def cmd_cda_validate(args: argparse.Namespace) -> int:
    from carnet.profiles.cda.validation import PackageError, validator

    package = Path(args.package) if args.package else Settings.from_env().cda_schematron_dir
    if package is None:
        print("error: give --package DIR or set CARNET_CDA_SCHEMATRON_DIR (the ANS package)", file=sys.stderr)
        return 2
    root = _read_cda(args.file)
    if root is None:
        return 2
    try:
        report = validator(package, _profiles_dir(args)).validate(root)
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        verdict = "valid" if report.valid else f"NOT valid ({len(report.errors)} errors)"
        volet = report.volet or "no volet"
        print(f"{args.file}: {verdict} against CDA_extended.xsd and {report.schematron} ({volet})")
        for f in report.findings:
            print(f"  {f.role:7} [{f.id}] {f.location}\n          {f.message}")
        for note in report.notes:
            print(f"  note    {note}")
    return 0 if report.valid else 1


def cmd_publish(args: argparse.Namespace) -> int:
    try:
        body = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = args.url.rstrip("/") + "/publish"
    if args.source_id:
        url += f"?sourceId={urllib.parse.quote(args.source_id)}"
    headers = {"Content-Type": "text/xml; charset=UTF-8"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - the user's URL
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:  # noqa: S310
            print(resp.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(), file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"error: cannot reach {url}: {exc.reason}", file=sys.stderr)
        return 2


def register(sub: argparse._SubParsersAction) -> None:
    def profiles_dir(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--profiles-dir", help="profile files (default: CARNET_PROFILES_DIR or ./profiles)")

    prof = sub.add_parser("profiles", help="CI-SIS / DMP profile data").add_subparsers(
        dest="action", required=True
    )
    imp = prof.add_parser(
        "import", help="refresh the profile files from an ANS NOS export (SVS XML, FHIR JSON)"
    )
    imp.add_argument("directories", nargs="+", metavar="DIR")
    profiles_dir(imp)
    imp.set_defaults(func=cmd_profiles_import)

    cda = sub.add_parser("cda", help="CDA R2 documents").add_subparsers(dest="action", required=True)
    meta = cda.add_parser("metadata", help="print the XDS metadata a CDA header determines")
    meta.add_argument("file")
    meta.add_argument("--format", choices=("text", "json"), default="text")
    profiles_dir(meta)
    meta.set_defaults(func=cmd_cda_metadata)
    val = cda.add_parser("validate", help="validate against CDA_extended.xsd and the volet's schematron")
    val.add_argument("file")
    val.add_argument("--package", help="ANS schematron package directory (default CARNET_CDA_SCHEMATRON_DIR)")
    val.add_argument("--format", choices=("text", "json"), default="text")
    profiles_dir(val)
    val.set_defaults(func=cmd_cda_validate)

    pub = sub.add_parser("publish", help="publish a CDA document to a Carnet server (POST /publish)")
    pub.add_argument("file")
    pub.add_argument(
        "--url", default="http://127.0.0.1:8080", help="the server (default http://127.0.0.1:8080)"
    )
    pub.add_argument(
        "--source-id", help="XDSSubmissionSet.sourceId (default: the root of ClinicalDocument/id)"
    )
    pub.add_argument("--token", help="a bearer JWT, when the server requires one")
    pub.add_argument("--timeout", type=float, default=120)
    pub.set_defaults(func=cmd_publish)
