"""Shared fixtures: a fresh database per test (SQLite always; PostgreSQL too when
CARNET_TEST_DATABASE_URL points at one), a Carnet app on it, and a live HTTP server for real clients."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, text

from carnet.app import Carnet, build, create_app
from carnet.config import Settings
from carnet.db import make_engine, normalize_url
from carnet.migrate import upgrade
from carnet.registry.schema import Base

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
NIST_TESTS = FIXTURES / "nist-testkit/xdstools2/src/main/webapp/toolkitx/testkit/tests"
DCM4CHEE = FIXTURES / "dcm4chee-sq"
DCM4CHEE_WS = DCM4CHEE / "dcm4chee-xds2-registry-ws/src/test/resources/org/dcm4chee/xds2/registry/ws"

PG_URL = os.environ.get("CARNET_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def needs_fixtures(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared fixtures not available: {path}")
    return path


_pg_engine: Engine | None = None


def _postgres_engine() -> Engine:
    global _pg_engine
    if _pg_engine is None:
        assert PG_URL
        _pg_engine = make_engine(normalize_url(PG_URL))
        with _pg_engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade(_pg_engine)
    return _pg_engine


def _truncate(engine: Engine) -> None:
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'carnet.sqlite3'}")
        upgrade(eng)
        yield eng
        eng.dispose()
    else:
        eng = _postgres_engine()
        _truncate(eng)
        yield eng


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        accept_any_patient=False,
        allow_anonymous=True,
        repository_unique_id="1.2.250.1.999.1.1.1",
    )


@pytest.fixture
def carnet(settings: Settings, engine: Engine) -> Carnet:
    return build(settings, engine)


@pytest.fixture
def client(carnet: Carnet):  # type: ignore[no-untyped-def]
    return create_app(carnet.settings, carnet).test_client()


@pytest.fixture
def live_server(carnet: Carnet) -> Iterator[str]:
    """The app on a real socket (waitress), for clients nobody here wrote."""
    with serving(create_app(carnet.settings, carnet)) as url:
        yield url


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` with waitress on a free local port; yields its base URL."""
    from waitress import wasyncore
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    stopping = threading.Event()

    def serve() -> None:
        # waitress has no stop(): its loop runs until its socket map empties.
        while not stopping.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host, port = server.socket.getsockname()[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        stopping.set()
        thread.join(timeout=10)
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The DMP test authority (CA + signing certificate) that signs the tokens of the DMP tests."""
    from tests.dmp import make_authority

    return make_authority(tmp_path_factory.mktemp("pki"))
