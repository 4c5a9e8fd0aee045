"""The DMP commands of ``carnet``: the test authority and its tokens, dossiers, consent, the access
trail and notifications. A thin client of ``carnet.dmp.api`` and ``carnet.security``.

    carnet pki init [--force]
    carnet token issue --profession 10 --mode normal|bris_de_glace|centre_15 [--reason R]
                       [--patient INS] [--format saml|jwt] [--kind professional|patient|legal_representative]
    carnet dossier create PATIENT --email E [--consent-note N] [--oppose-bris-de-glace] [--oppose-centre-15]
                                  [--medecin-traitant ID]
    carnet dossier close PATIENT --reason R | reactivate PATIENT | show PATIENT
    carnet dossier authorize|revoke PATIENT (--professional ID | --structure ID)
    carnet dossier medecin-traitant PATIENT (ID | --none)
    carnet dossier oppose|allow PATIENT [--bris-de-glace] [--centre-15]
    carnet audit list PATIENT [--since YYYY-MM-DD] [--json]
    carnet notifications list [--patient P] [--status S] | deliver

The operator's commands run as Carnet itself (the ``cli`` system principal) and are audited as such.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from carnet.config import Settings

if TYPE_CHECKING:
    from carnet.dmp.api import DMP
    from carnet.security.principal import Principal

OPERATOR = "cli"


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None)


def _pki_dir(args: argparse.Namespace) -> Path:
    return Path(args.pki_dir) if getattr(args, "pki_dir", None) else _settings(args).data_dir / "pki"


def _dmp(args: argparse.Namespace) -> DMP:
    from carnet.cli import _engine
    from carnet.dmp.api import DMP
    from carnet.security.dmp_policy import DMPPolicy
    from carnet.security.matrix import Matrix

    engine = _engine(args)
    return DMP(engine, DMPPolicy(engine, Matrix.load(_settings(args).dmp_matrix)))


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _guard(run: argparse.Namespace) -> int:
    """Run a DMP command, reporting refusals and invalid requests as errors (exit 1 / 2)."""
    from carnet.dmp.transaction import DossierError
    from carnet.security.policy import AccessDenied

    try:
        return int(run.dmp_func(run))
    except DossierError as exc:
        return _fail(exc.reason, 2 if exc.status == 400 else 1)
    except AccessDenied as exc:
        return _fail(f"refused: {exc.decision.reason}", 1)


# ---------------------------------------------------------------------------------------------
# pki, token
# ---------------------------------------------------------------------------------------------


def cmd_pki_init(args: argparse.Namespace) -> int:
    from carnet.security import pki

    directory = _pki_dir(args)
    try:
        files = pki.init(directory, force=args.force)
    except pki.TrustError as exc:
        return _fail(str(exc))
    print(f"test authority created in {directory} (for tests and development only)")
    print("trust it in the server with:")
    print(f"  export CARNET_TRUST_STORE={files.authority_cert.resolve()}")
    print(f"  export CARNET_JWT_KEYS={files.signer_cert.resolve()}")
    print("then mint tokens with: carnet token issue --profession 10 --mode normal --patient INS")
    return 0


def cmd_token_issue(args: argparse.Namespace) -> int:
    from carnet.security import jwt, pki, vihf, xua

    if args.kind == "professional" and not args.profession:
        return _fail("a professional token needs --profession (TRE_G15 code, e.g. 10 for a physician)")
    if args.kind != "professional" and not args.patient:
        return _fail(f"a {args.kind} token needs --patient")
    if args.mode != "normal" and not args.reason and args.kind == "professional":
        print(
            f"warning: a {args.mode} access without --reason will be refused by the server", file=sys.stderr
        )
    try:
        signer = pki.load_signer(_pki_dir(args))
    except pki.TrustError as exc:
        return _fail(str(exc))
    roles = []
    if args.profession:
        label = vihf.PROFESSION_LABELS.get(args.profession, args.profession)
        roles.append(vihf.Code(args.profession, vihf.PROFESSION_SYSTEM, label))
        if args.specialty:
            roles.append(vihf.Code(args.specialty, vihf.SPECIALTY_SYSTEM, args.specialty))
    claims = vihf.Claims(
        subject=args.id or ("899700000001" if args.kind == "professional" else args.patient.split("^")[0]),
        kind=args.kind,
        subject_name=args.name,
        roles=roles,
        purpose=vihf.Code(args.mode, vihf.ACCESS_MODE_SYSTEM, vihf.ACCESS_MODES[args.mode]),
        structure=args.structure if args.kind == "professional" else None,
        authentication_mode="INDIRECTE" if args.kind == "professional" else None,
        version="3.0" if args.kind == "professional" else None,
        sector=args.sector if args.kind == "professional" else None,
        patient=args.patient,
        reason=args.reason,
        extra={vihf.LPS_NOM: "carnet token issue", vihf.LPS_VERSION: "1"} if args.format == "saml" else {},
    )
    try:
        claims.principal()  # refuse here what the server would refuse
    except vihf.TokenError as exc:
        return _fail(exc.reason)
    validity = timedelta(seconds=args.validity)
    if args.format == "jwt":
        print(jwt.issue(signer, claims, validity, args.audience))
    else:
        print(xua.issue(signer, claims, validity).decode())
    return 0


# ---------------------------------------------------------------------------------------------
# dossier
# ---------------------------------------------------------------------------------------------


def _operator() -> Principal:
    from carnet.security.principal import system

    return system(OPERATOR)


def cmd_dossier_create(args: argparse.Namespace) -> int:
    d = _dmp(args).create(
        _operator(),
        args.patient,
        args.email,
        args.consent_note,
        args.oppose_bris_de_glace,
        args.oppose_centre_15,
        args.medecin_traitant,
    )
    print(f"DMP of {d.patient_id} created (consent recorded; notification queued to {d.contact_email})")
    return 0


def cmd_dossier_close(args: argparse.Namespace) -> int:
    d = _dmp(args).close(_operator(), args.patient, args.reason)
    print(f"DMP of {d.patient_id} closed")
    return 0


def cmd_dossier_reactivate(args: argparse.Namespace) -> int:
    d = _dmp(args).reactivate(_operator(), args.patient, args.consent_note)
    print(f"DMP of {d.patient_id} reactivated")
    return 0


def cmd_dossier_show(args: argparse.Namespace) -> int:
    dmp = _dmp(args)
    principal = _operator()
    d = dmp.dossier(principal, args.patient)
    auths = dmp.authorisations(principal, args.patient, include_revoked=True)
    out = {
        "patient": d.patient_id,
        "status": d.status,
        "created_at": d.created_at.isoformat(),
        "consent": {
            "collected_by": d.consent_collected_by,
            "at": d.consent_at.isoformat(),
            "note": d.consent_note,
        },
        "closed_at": d.closed_at.isoformat() if d.closed_at else None,
        "close_reason": d.close_reason,
        "medecin_traitant": d.medecin_traitant,
        "opposes_bris_de_glace": d.opposes_bris_de_glace,
        "opposes_centre_15": d.opposes_centre_15,
        "contact_email": d.contact_email,
        "authorisations": [
            {
                "kind": a.grantee_kind,
                "id": a.grantee_id,
                "status": a.status,
                "since": a.granted_at.isoformat(),
            }
            for a in auths
        ],
    }
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def _grantee(args: argparse.Namespace) -> tuple[str, str]:
    return ("professional", args.professional) if args.professional else ("structure", args.structure)


def cmd_dossier_authorize(args: argparse.Namespace) -> int:
    kind, ident = _grantee(args)
    _dmp(args).authorize(_operator(), args.patient, kind, ident)
    print(f"{kind} {ident} authorised on the DMP of {args.patient}")
    return 0


def cmd_dossier_revoke(args: argparse.Namespace) -> int:
    kind, ident = _grantee(args)
    _dmp(args).revoke(_operator(), args.patient, kind, ident)
    print(f"authorisation of {kind} {ident} on the DMP of {args.patient} revoked")
    return 0


def cmd_dossier_medecin_traitant(args: argparse.Namespace) -> int:
    if bool(args.actor) == bool(args.none):
        return _fail("give the médecin traitant's identifier, or --none to remove the designation")
    d = _dmp(args).set_medecin_traitant(_operator(), args.patient, None if args.none else args.actor)
    print(f"médecin traitant of {d.patient_id}: {d.medecin_traitant or 'none'}")
    return 0


def _oppositions(args: argparse.Namespace, value: bool) -> int:
    if not (args.bris_de_glace or args.centre_15):
        return _fail("say which access mode: --bris-de-glace and/or --centre-15")
    d = _dmp(args).set_oppositions(
        _operator(),
        args.patient,
        value if args.bris_de_glace else None,
        value if args.centre_15 else None,
    )
    print(f"{d.patient_id}: opposes bris de glace={d.opposes_bris_de_glace}, centre 15={d.opposes_centre_15}")
    return 0


def cmd_dossier_oppose(args: argparse.Namespace) -> int:
    return _oppositions(args, True)


def cmd_dossier_allow(args: argparse.Namespace) -> int:
    return _oppositions(args, False)


# ---------------------------------------------------------------------------------------------
# audit, notifications
# ---------------------------------------------------------------------------------------------


def cmd_audit_list(args: argparse.Namespace) -> int:
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since).replace(tzinfo=UTC)
        except ValueError:
            return _fail(f"--since '{args.since}' is not a date (YYYY-MM-DD)")
    trail = _dmp(args).traces(_operator(), args.patient, since=since, limit=args.limit)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "at": t.recorded_at.isoformat(),
                        "transaction": t.transaction,
                        "outcome": t.outcome,
                        "who": t.principal,
                        "access_mode": t.access_mode,
                        "reason": t.reason,
                        "from": t.source_address,
                        "objects": t.objects,
                        "detail": t.detail,
                    }
                    for t in trail
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    for t in trail:
        who = t.principal
        actor = f"{who.get('kind')}:{who.get('id')}" + (f" ({who.get('role')})" if who.get("role") else "")
        mode = f" [{t.access_mode}: {t.reason}]" if t.access_mode not in (None, "normal") else ""
        outcome = "ok" if t.outcome == 0 else f"refused/failed ({t.outcome})"
        docs = sum(1 for o in t.objects if o.get("type") in ("Document", "DocumentEntry"))
        print(
            f"{t.recorded_at:%Y-%m-%d %H:%M:%S}  {t.transaction:<22} {actor:<40} {outcome}{mode}"
            f"  documents={docs}"
        )
    return 0


def cmd_notifications_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from carnet.cli import _engine
    from carnet.db import read_session
    from carnet.dmp.ids import canonical
    from carnet.dmp.models import Notification

    stmt = select(Notification).order_by(Notification.id)
    if args.patient:
        try:
            stmt = stmt.where(Notification.patient_id == canonical(args.patient))
        except ValueError as exc:
            return _fail(str(exc))
    if args.status:
        stmt = stmt.where(Notification.status == args.status)
    with read_session(_engine(args)) as session:
        for n in session.scalars(stmt):
            print(
                f"{n.id:>6} {n.created_at:%Y-%m-%d %H:%M} {n.status:<8} {n.kind:<14} "
                f"{n.recipient}  {n.subject}"
            )
    return 0


def cmd_notifications_deliver(args: argparse.Namespace) -> int:
    from carnet.cli import _engine
    from carnet.dmp.notifications import deliver_due

    settings = _settings(args)
    if not settings.smtp_url:
        return _fail("CARNET_SMTP_URL is not set: there is no SMTP server to deliver to")
    report = deliver_due(_engine(args), settings)
    print(f"sent {report.sent}, to retry {report.retried}, failed {report.failed}")
    return 0


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def data_dir(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", help="the server's data directory (default ./data, or CARNET_DATA_DIR)")

    def dmp(sp: argparse.ArgumentParser, func: object) -> None:
        data_dir(sp)
        sp.set_defaults(func=_guard, dmp_func=func)

    pki = sub.add_parser("pki", help="local test authority").add_subparsers(dest="action", required=True)
    init = pki.add_parser("init", help="create a test CA and signing certificate under <data dir>/pki")
    init.add_argument("--force", action="store_true", help="replace an existing test authority")
    init.add_argument("--pki-dir", help="directory of the authority (default <data dir>/pki)")
    data_dir(init)
    init.set_defaults(func=cmd_pki_init)

    token = sub.add_parser("token", help="test identity tokens").add_subparsers(dest="action", required=True)
    issue = token.add_parser("issue", help="print a signed VIHF assertion (or JWT) from the test authority")
    issue.add_argument(
        "--kind", choices=["professional", "patient", "legal_representative"], default="professional"
    )
    issue.add_argument(
        "--profession", help="TRE_G15 profession code (10 physician, 21 pharmacist, 60 nurse...)"
    )
    issue.add_argument("--specialty", help="TRE_R01 specialty code (e.g. SM26)")
    issue.add_argument("--mode", choices=["normal", "bris_de_glace", "centre_15"], default="normal")
    issue.add_argument("--reason", help="justification of a bris_de_glace / centre_15 access")
    issue.add_argument(
        "--patient", help="patient INS as a CX (resource-id), e.g. NIR^^^&1.2.250.1.213.1.4.10&ISO"
    )
    issue.add_argument("--id", help="subject identifier (PS_IdNat; default 899700000001)")
    issue.add_argument("--name", help="subject name (subject-id)")
    issue.add_argument("--structure", default="10B0000000001", help="Identifiant_Structure (Struct_IdNat)")
    issue.add_argument("--sector", default="SA07^1.2.250.1.71.4.2.4", help="Secteur_Activite")
    issue.add_argument("--format", choices=["saml", "jwt"], default="saml")
    issue.add_argument("--audience", help="JWT aud claim")
    issue.add_argument("--validity", type=int, default=3600, help="seconds (default 3600)")
    issue.add_argument("--pki-dir", help="directory of the authority (default <data dir>/pki)")
    data_dir(issue)
    issue.set_defaults(func=cmd_token_issue)

    dossier = sub.add_parser("dossier", help="patients' DMPs").add_subparsers(dest="action", required=True)
    c = dossier.add_parser("create", help="create a DMP, recording the patient's consent")
    c.add_argument("patient")
    c.add_argument("--email", required=True, help="where the patient's notifications go")
    c.add_argument("--consent-note", help="how the consent was collected")
    c.add_argument("--oppose-bris-de-glace", action="store_true")
    c.add_argument("--oppose-centre-15", action="store_true")
    c.add_argument("--medecin-traitant", help="PS_IdNat of the médecin traitant")
    dmp(c, cmd_dossier_create)
    cl = dossier.add_parser("close", help="close a DMP")
    cl.add_argument("patient")
    cl.add_argument("--reason", required=True)
    dmp(cl, cmd_dossier_close)
    r = dossier.add_parser("reactivate", help="reactivate a closed DMP (with renewed consent)")
    r.add_argument("patient")
    r.add_argument("--consent-note")
    dmp(r, cmd_dossier_reactivate)
    s = dossier.add_parser("show", help="status, consent, authorisations, oppositions (JSON)")
    s.add_argument("patient")
    dmp(s, cmd_dossier_show)
    for name, func, text in (
        ("authorize", cmd_dossier_authorize, "authorise a professional or structure to consult"),
        ("revoke", cmd_dossier_revoke, "revoke an authorisation"),
    ):
        a = dossier.add_parser(name, help=text)
        a.add_argument("patient")
        who = a.add_mutually_exclusive_group(required=True)
        who.add_argument("--professional", help="PS_IdNat")
        who.add_argument("--structure", help="Struct_IdNat")
        dmp(a, func)
    m = dossier.add_parser("medecin-traitant", help="designate (or remove) the médecin traitant")
    m.add_argument("patient")
    m.add_argument("actor", nargs="?")
    m.add_argument("--none", action="store_true")
    dmp(m, cmd_dossier_medecin_traitant)
    for name, func, text in (
        ("oppose", cmd_dossier_oppose, "record the patient's opposition to emergency access modes"),
        ("allow", cmd_dossier_allow, "lift an opposition"),
    ):
        o = dossier.add_parser(name, help=text)
        o.add_argument("patient")
        o.add_argument("--bris-de-glace", action="store_true")
        o.add_argument("--centre-15", action="store_true")
        dmp(o, func)

    audit = sub.add_parser("audit", help="the access trail").add_subparsers(dest="action", required=True)
    al = audit.add_parser("list", help="who accessed a patient's record, newest first")
    al.add_argument("patient")
    al.add_argument("--since", help="YYYY-MM-DD")
    al.add_argument("--limit", type=int, default=1000)
    al.add_argument("--json", action="store_true")
    dmp(al, cmd_audit_list)

    notif = sub.add_parser("notifications", help="patient notifications").add_subparsers(
        dest="action", required=True
    )
    nl = notif.add_parser("list", help="the outbox")
    nl.add_argument("--patient")
    nl.add_argument("--status", choices=["pending", "sending", "sent", "failed"])
    data_dir(nl)
    nl.set_defaults(func=cmd_notifications_list)
    nd = notif.add_parser("deliver", help="one delivery pass over the due notifications (CARNET_SMTP_URL)")
    data_dir(nd)
    nd.set_defaults(func=cmd_notifications_deliver)
