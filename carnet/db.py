"""Database engine and transactions: SQLite (embedded default, WAL) or PostgreSQL.

A submission is one transaction. On SQLite, write transactions start with BEGIN IMMEDIATE so
two writers never deadlock upgrading a read lock; reads stay deferred and, under WAL, never
block writers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// URLs and pick the psycopg 3 driver the project installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_url(data_dir: str | Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'carnet.sqlite3'}"


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    # No server-side prepared statements: psycopg prepares after 5 runs and PostgreSQL may then
    # keep a generic plan made while a table was tiny (a sequential scan of registry_object that
    # took ITI-41 from 44 to 15 submissions/s over 27,000 submissions until ANALYZE ran).
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("prepare_threshold", None)
    return create_engine(url, connect_args=connect_args, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so BEGIN IMMEDIATE is ours to issue.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed submission survives power loss; health records are not a cache.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("carnet_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


_sqlite_writers: dict[int, threading.RLock] = {}
_sqlite_writers_guard = threading.Lock()


def _writer_lock(engine: Engine) -> AbstractContextManager[object]:
    """SQLite has one writer; waiting for it in busy_timeout's sleep-and-poll is unfair (p99 was 23x
    p50 under load). Writers of this process queue on a lock instead; other processes still meet
    busy_timeout. PostgreSQL needs no such lock."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _sqlite_writers_guard:
        return _sqlite_writers.setdefault(id(engine.pool), threading.RLock())


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Session]:
    """One all-or-nothing write: commits on success, rolls everything back on any exception."""
    bind = engine.execution_options(carnet_write=True)
    with _writer_lock(engine), Session(bind=bind, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(bind=engine, expire_on_commit=False) as session, session.begin():
        yield session
