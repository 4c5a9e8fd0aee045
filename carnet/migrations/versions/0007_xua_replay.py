"""XUA assertion replay cache (carnet.security.replay).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xua_assertion_use",
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("assertion_id", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "assertion_id", name=op.f("pk_xua_assertion_use")),
    )
    with op.batch_alter_table("xua_assertion_use", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_xua_assertion_use_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("xua_assertion_use", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_xua_assertion_use_expires_at"))
    op.drop_table("xua_assertion_use")
