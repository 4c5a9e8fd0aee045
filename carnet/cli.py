"""The `carnet` command: a thin client of the same public API the server uses.

carnet serve --host H --port P --data-dir DIR [--mllp-port N] [--workers N]
carnet patient add 'ID^^^&OID&ISO' [--family F --given G --birth-date YYYYMMDD --sex M|F|U]
carnet patient merge SURVIVING SUBSUMED
carnet db upgrade
carnet conformance run --target-registry URL --target-repository URL --testkit DIR --report DIR
carnet pki|token|dossier|audit|notifications ...   (DMP access control: carnet.dmp.cli)
carnet profiles import DIR... | cda metadata FILE | cda validate FILE | publish FILE (carnet.profiles.command)
carnet sign ... | carnet verify ... (XAdES / IHE DSG signatures: carnet.signature.cli)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carnet.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from carnet.app import Carnet


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None)


def cmd_serve(args: argparse.Namespace) -> int:
    import socket

    from carnet.app import build

    settings = _settings(args)
    carnet = build(settings)  # migrates the database and recovers blob publishes, once
    if args.workers <= 1:
        return _serve(settings, carnet, args, port=args.port, sock=None, slot=0)
    if carnet.engine.dialect.name != "postgresql":
        print("carnet serve --workers needs PostgreSQL (CARNET_DATABASE_URL); SQLite runs one process")
        return 2
    from carnet import prefork

    carnet.engine.dispose()  # no connection crosses the fork
    sock = socket.create_server((args.host, args.port), backlog=2048)

    def worker(slot: int, sock: socket.socket) -> None:
        _serve(settings, build(settings, startup=False), args, port=None, sock=sock, slot=slot)

    print(
        f"Carnet listening on http://{args.host}:{sock.getsockname()[1]} with {args.workers} workers",
        flush=True,
    )
    return prefork.serve(args.workers, sock, worker)


def _serve(
    settings: Settings, carnet: Carnet, args: argparse.Namespace, port: int | None, sock: Any, slot: int
) -> int:
    """One server process: waitress on ``port`` (or the inherited ``sock``); worker 0 (or the only
    process) also runs the MLLP listener and the notification outbox."""
    from waitress import create_server

    from carnet.app import create_app

    app = create_app(settings, carnet)
    mllp = None
    if args.mllp_port is not None and slot == 0:
        from carnet.pix.mllp import serve_mllp

        mllp = serve_mllp(carnet.engine, args.host, args.mllp_port, settings)
    listen = {"sockets": [sock]} if sock is not None else {"host": args.host, "port": port}
    server = create_server(
        app, threads=args.threads, max_request_body_size=settings.max_request_bytes, ident="carnet", **listen
    )
    mllp_note = f"  ITI-8 MLLP port {mllp.port}" if mllp is not None else ""
    if sock is None:
        bound = getattr(server, "effective_port", port)  # the real port when --port 0
        print(
            f"Carnet listening on http://{args.host}:{bound}  registry /xds/registry  repository "
            f"/xds/repository  (database {carnet.engine.dialect.name}, data {settings.data_dir}){mllp_note}",
            flush=True,
        )
    elif mllp is not None:
        print(f"Carnet worker {slot} (pid {os.getpid()}):{mllp_note}", flush=True)
    stop_notifications = None
    if settings.smtp_url and slot == 0:
        from carnet.dmp.notifications import start_worker

        stop_notifications = start_worker(carnet.engine, settings)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if mllp is not None:
            mllp.shutdown()
        if stop_notifications is not None:
            stop_notifications()
    return 0


def _engine(args: argparse.Namespace) -> Engine:
    from carnet.db import make_engine
    from carnet.migrate import upgrade

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    upgrade(engine)
    return engine


def cmd_patient_add(args: argparse.Namespace) -> int:
    from carnet.db import write_transaction
    from carnet.registry import patients
    from carnet.registry.validate.datatypes import check_cx

    problem = check_cx(args.patient_id)
    if problem:
        print(
            f"error: '{args.patient_id}' is not a patient id of the form ID^^^&OID&ISO: {problem}",
            file=sys.stderr,
        )
        return 2
    engine = _engine(args)
    with write_transaction(engine) as session:
        patients.upsert(
            session,
            args.patient_id,
            patients.Demographics(
                family_name=args.family, given_name=args.given, birth_date=args.birth_date, sex=args.sex
            ),
        )
    print(f"patient {args.patient_id} known")
    return 0


def cmd_patient_merge(args: argparse.Namespace) -> int:
    from carnet.db import write_transaction
    from carnet.registry import patients

    engine = _engine(args)
    try:
        with write_transaction(engine) as session:
            patients.merge(session, args.surviving, args.subsumed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"patient {args.subsumed} merged into {args.surviving}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    _engine(args)
    print("database at the current schema")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carnet", description="Carnet XDS.b registry and repository")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    def data_dir(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--data-dir",
            help="directory for the SQLite database and blobs (default ./data, or CARNET_DATA_DIR)",
        )

    s = sub.add_parser("serve", help="run the server (waitress)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--threads", type=int, default=8)
    s.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (PostgreSQL only; default 1): one per core",
    )
    s.add_argument(
        "--mllp-port", type=int, help="also listen for ITI-8 Patient Identity Feed (HL7 v2 over MLLP)"
    )
    data_dir(s)
    s.set_defaults(func=cmd_serve)

    pat = sub.add_parser("patient", help="manage known patients").add_subparsers(dest="action", required=True)
    a = pat.add_parser("add", help="make a patient id known to the registry")
    a.add_argument("patient_id", help="CX: ID^^^&OID&ISO")
    a.add_argument("--family")
    a.add_argument("--given")
    a.add_argument("--birth-date")
    a.add_argument("--sex")
    data_dir(a)
    a.set_defaults(func=cmd_patient_add)
    m = pat.add_parser("merge", help="merge SUBSUMED into SURVIVING (as ITI-8 A40)")
    m.add_argument("surviving")
    m.add_argument("subsumed")
    data_dir(m)
    m.set_defaults(func=cmd_patient_merge)

    db = sub.add_parser("db", help="database administration").add_subparsers(dest="action", required=True)
    u = db.add_parser("upgrade", help="migrate the database to the current schema")
    data_dir(u)
    u.set_defaults(func=cmd_db_upgrade)

    from carnet.conformance.command import register as register_conformance

    register_conformance(sub)

    from carnet.profiles.command import register as register_profiles

    register_profiles(sub)

    from carnet.signature.cli import add_commands as add_signature_commands

    add_signature_commands(sub)

    from carnet.dmp.cli import register as register_dmp

    register_dmp(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
