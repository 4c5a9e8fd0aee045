"""DMP access control: dossier, authorisations, notification outbox; audit
records made append-only in the database itself.

Revision ID: 0005
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

_APPEND_ONLY = "audit records are append-only"


def upgrade() -> None:
    op.create_table(
        "dmp_dossier",
        sa.Column("patient_id", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consent_collected_by", sa.String(length=256), nullable=False),
        sa.Column("consent_note", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column("medecin_traitant", sa.String(length=128), nullable=True),
        sa.Column("opposes_bris_de_glace", sa.Boolean(), nullable=False),
        sa.Column("opposes_centre_15", sa.Boolean(), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_dmp_dossier")),
    )
    op.create_table(
        "dmp_authorization",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=256), nullable=False),
        sa.Column("grantee_kind", sa.String(length=16), nullable=False),
        sa.Column("grantee_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(length=256), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dmp_authorization")),
        sa.UniqueConstraint("patient_id", "grantee_kind", "grantee_id", name="uq_dmp_authorization_grantee"),
    )
    op.create_table(
        "dmp_notification",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dmp_notification")),
        sa.UniqueConstraint("patient_id", "kind", "dedupe_key", name="uq_dmp_notification_dedupe"),
    )
    with op.batch_alter_table("dmp_notification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dmp_notification_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_dmp_notification_due", ["status", "next_attempt_at"], unique=False)

    # "Audit records cannot be altered": no API updates them, and the database refuses it too, so
    # neither a bug nor an SQL session with the application's credentials can rewrite the trail.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION carnet_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION carnet_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS carnet_audit_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    with op.batch_alter_table("dmp_notification", schema=None) as batch_op:
        batch_op.drop_index("ix_dmp_notification_due")
        batch_op.drop_index(batch_op.f("ix_dmp_notification_patient_id"))
    op.drop_table("dmp_notification")
    op.drop_table("dmp_authorization")
    op.drop_table("dmp_dossier")
