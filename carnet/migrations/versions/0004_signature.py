"""Verified signatures and the documents each covers (carnet.signature.records).

Revision ID: 0004
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signature",
        sa.Column("signature_uuid", sa.String(length=64), nullable=False),
        sa.Column("unique_id", sa.String(length=256), nullable=False),
        sa.Column("patient_id", sa.String(length=256), nullable=False),
        sa.Column("submission_set_uuid", sa.String(length=64), nullable=True),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("legacy", sa.Boolean(), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("signer_subject", sa.Text(), nullable=False),
        sa.Column("signer_issuer", sa.Text(), nullable=False),
        sa.Column("signer_serial", sa.String(length=64), nullable=False),
        sa.Column("signer_sha256", sa.String(length=64), nullable=False),
        sa.Column("signing_time", sa.String(length=40), nullable=True),
        sa.Column("purposes", sa.Text(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature_uuid", name=op.f("pk_signature")),
    )
    with op.batch_alter_table("signature", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signature_unique_id"), ["unique_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_signature_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "signature_coverage",
        sa.Column("signature_uuid", sa.String(length=64), nullable=False),
        sa.Column("document_uuid", sa.String(length=64), nullable=False),
        sa.Column("document_unique_id", sa.String(length=256), nullable=False),
        sa.Column("patient_id", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("signature_uuid", "document_uuid", name=op.f("pk_signature_coverage")),
    )
    with op.batch_alter_table("signature_coverage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signature_coverage_document_uuid"), ["document_uuid"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_signature_coverage_document_unique_id"), ["document_unique_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("signature_coverage")
    op.drop_table("signature")
