"""Schema migrations: bring a database to the current Alembic head."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "carnet:migrations")
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: Engine) -> None:
    cfg = alembic_config()
    # Alembic owns its transaction; on SQLite our BEGIN listener issues it.
    with engine.execution_options(carnet_write=True).begin() as conn:
        cfg.attributes["connection"] = conn
        # "heads": features may add migration branches in parallel; each is applied.
        command.upgrade(cfg, "heads")
