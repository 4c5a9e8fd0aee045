"""``carnet sign`` and ``carnet verify``: the signature tools, on files, through the same API as the server.

    carnet sign --cert CHAIN.pem --key KEY.pem --submission REQUEST.xml -o SIGNED.xml [--legacy]
        seal an ITI-41 request (documents inline in base64): add the submission-set signature,
        its DocumentEntry and associations, as a DMP sender would
    carnet sign --cert CHAIN.pem --key KEY.pem --document UID=FILE ... [--submission-set UID] -o SIG.xml
        a DSG detached signature over the files (a submission-set signature with --submission-set)
    carnet verify --trust-store ROOTS.pem --submission REQUEST.xml
        verify every signature document of an ITI-41 request, as the repository would
    carnet verify --trust-store ROOTS.pem SIG.xml --document UID=FILE ... [--submission-set UID]
        verify one signature document against the documents it names

``verify`` exits 0 when everything verifies, 1 when a signature fails (the reason on stderr), 2 on
a usage error. The trust store is ``--trust-store`` or CARNET_TRUST_STORE; there is no default.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from carnet.signature.dsg import (
    Signer,
    SignerError,
    content_of,
    is_signature_entry,
    sign_detached,
    sign_submission_set,
)
from carnet.signature.seal import seal_submission
from carnet.signature.submission import verify_submission
from carnet.signature.trust import TrustStore, TrustStoreError, describe
from carnet.signature.verify import Content, SignatureError, verify
from carnet.signature.xmldsig import XMLDSigError
from carnet.xds import ebrim
from carnet.xds import vocabulary as v
from carnet.xds.errors import ErrorCollector, XDSError
from carnet.xds.model import Submission
from carnet.xml import UnsafeXMLError, parse, qname


class UsageError(Exception):
    """Bad arguments or input files: exit status 2."""


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sign", help="sign documents, or seal an ITI-41 request (XAdES / IHE DSG)")
    s.add_argument("--cert", required=True, help="PEM certificate chain, signer's certificate first")
    s.add_argument("--key", required=True, help="PEM private key of that certificate")
    s.add_argument(
        "--key-password-env", metavar="VAR", help="environment variable holding the key's password"
    )
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--submission", help="ProvideAndRegisterDocumentSetRequest (or SOAP envelope) to seal")
    what.add_argument(
        "--document", action="append", metavar="UID=FILE", help="a document to sign, by uniqueId"
    )
    s.add_argument(
        "--submission-set", metavar="UID", help="with --document: sign as this SubmissionSet's signature"
    )
    s.add_argument(
        "--legacy", action="store_true", help="the DMP's historical form: XAdES 1.1.1, RSA-SHA1, SHA-1"
    )
    s.add_argument("-o", "--output", required=True, help="file to write")
    s.set_defaults(func=cmd_sign)

    ver = sub.add_parser("verify", help="verify signature documents (trust store only, never a default CA)")
    ver.add_argument("signature", nargs="?", help="signature document (with --document)")
    ver.add_argument("--trust-store", help="PEM trust anchors and CRLs (default: CARNET_TRUST_STORE)")
    ver.add_argument("--submission", help="ProvideAndRegisterDocumentSetRequest whose signatures to verify")
    ver.add_argument("--document", action="append", default=[], metavar="UID=FILE", help="a signed document")
    ver.add_argument("--submission-set", metavar="UID", help="the SubmissionSet uniqueId the signature names")
    ver.add_argument("--at", help="check certificates at this ISO 8601 time instead of now")
    ver.set_defaults(func=cmd_verify)


def _documents(specs: list[str]) -> dict[str, Content]:
    out: dict[str, Content] = {}
    for spec in specs:
        uid, sep, path = spec.partition("=")
        if not sep or not uid or not path:
            raise UsageError(f"--document '{spec}': expected UNIQUE_ID=FILE")
        try:
            out[uid] = content_of(uid, Path(path).read_bytes())
        except OSError as exc:
            raise UsageError(f"--document {uid}: {path}: {exc.strerror}") from None
    return out


def _request(path: str) -> tuple[etree._Element, Submission, dict[str, Content]]:
    """Read an ITI-41 request file: its ProvideAndRegisterDocumentSetRequest, submission, documents."""
    try:
        root = parse(Path(path).read_bytes())
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except UnsafeXMLError as exc:
        raise UsageError(f"{path}: {exc}") from None
    tag = qname(v.XDSB, "ProvideAndRegisterDocumentSetRequest")
    request = root if root.tag == tag else root.find(f".//{tag}")
    rol = (
        request.find(f"{qname(v.LCM, 'SubmitObjectsRequest')}/{qname(v.RIM, 'RegistryObjectList')}")
        if request is not None
        else None
    )
    if request is None or rol is None:
        raise UsageError(f"{path}: no ProvideAndRegisterDocumentSetRequest with a RegistryObjectList")
    errors = ErrorCollector()
    sub = ebrim.parse_submission(rol, errors)
    if errors:
        raise UsageError(f"{path}: " + "; ".join(e.context for e in errors.errors))
    by_id: dict[str, bytes] = {}
    for doc in request.findall(qname(v.XDSB, "Document")):
        if len(doc):
            raise UsageError(
                f"{path}: Document '{doc.get('id')}' is not inline base64 (XOP needs the MTOM message)"
            )
        by_id[doc.get("id") or ""] = base64.b64decode("".join((doc.text or "").split()))
    contents = {
        de.unique_id: content_of(de.unique_id, by_id[de.entry_uuid])
        for de in sub.documents
        if de.entry_uuid in by_id
    }
    return request, sub, contents


def cmd_sign(args: argparse.Namespace) -> int:
    try:
        password = os.environ.get(args.key_password_env) if args.key_password_env else None
        signer = Signer.load(args.cert, args.key, password)
        if args.submission:
            request, sub, contents = _request(args.submission)
            before = {a.entry_uuid for a in sub.associations}
            entry, data = seal_submission(sub, contents, signer, legacy=args.legacy)
            rol = request.find(f"{qname(v.LCM, 'SubmitObjectsRequest')}/{qname(v.RIM, 'RegistryObjectList')}")
            assert rol is not None
            # Only the additions are rendered: the submitter's own metadata stays as written.
            for obj in (entry, *(a for a in sub.associations if a.entry_uuid not in before)):
                rol.append(ebrim.render(obj))
            doc = etree.SubElement(request, qname(v.XDSB, "Document"), id=entry.entry_uuid)
            doc.text = base64.b64encode(data).decode("ascii")
            output = etree.tostring(request.getroottree(), xml_declaration=True, encoding="UTF-8")
            note = f"sealed: signature DocumentEntry {entry.entry_uuid} (uniqueId {entry.unique_id})"
        else:
            documents = _documents(args.document)
            if args.submission_set:
                output = sign_submission_set(args.submission_set, documents, signer, legacy=args.legacy)
            elif args.legacy:
                raise UsageError("--legacy is the DMP submission-set form: give --submission-set")
            else:
                output = sign_detached(documents, signer)
            note = f"signed {len(documents)} document(s)"
        Path(args.output).write_bytes(output)
    except (UsageError, SignerError, XMLDSigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{note} as {describe(signer.certificate)} -> {args.output}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        store = args.trust_store or os.environ.get("CARNET_TRUST_STORE")
        if not store:
            raise UsageError(
                "give --trust-store (or set CARNET_TRUST_STORE): there is no default trust store"
            )
        trust = TrustStore.load(store)
        at = datetime.fromisoformat(args.at) if args.at else None
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # a time without an offset is read as UTC, not local time
        if args.submission:
            if args.signature or args.document:
                raise UsageError(
                    "--submission verifies the request's own documents: no SIGNATURE or --document"
                )
            _, sub, contents = _request(args.submission)
            if not any(is_signature_entry(de) for de in sub.documents):
                print(f"{args.submission}: no signature document", file=sys.stderr)
                return 1
            for item in verify_submission(sub, contents, trust, at=at):
                ver = item.verification
                print(
                    f"valid: {ver.form} signature {item.entry.unique_id} by {describe(ver.signer)}; "
                    f"covers {', '.join(item.covered)}"
                )
            return 0
        if not args.signature:
            raise UsageError("give a SIGNATURE file with --document UID=FILE ..., or --submission REQUEST")
        try:
            data = Path(args.signature).read_bytes()
        except OSError as exc:
            raise UsageError(f"{args.signature}: {exc.strerror}") from None
        ver = verify(data, _documents(args.document), trust, submission_set=args.submission_set, at=at)
    except (UsageError, TrustStoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except XDSError as exc:
        for err in exc.errors:
            print(f"invalid: {err.context}", file=sys.stderr)
        return 1
    except SignatureError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    covers = ", ".join(ver.covered) or "its content"
    print(f"valid: {ver.form} signature by {describe(ver.signer)}; covers {covers}")
    return 0
