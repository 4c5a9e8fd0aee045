"""FHIR facade: document_entry.updated_at, the time a DocumentEntry row last changed.

MHD/FHIR expose it as ``meta.lastUpdated`` and search it with ``_lastUpdated``; a status change
(RPLC deprecation, ITI-57, PDSm PATCH) rewrites the row in place, so ``created_at`` is not enough.
Existing rows start from their creation time.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("document_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE document_entry SET updated_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("document_entry", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
