"""Alembic migrations of the Carnet database (run by `carnet db upgrade` and at server start)."""
