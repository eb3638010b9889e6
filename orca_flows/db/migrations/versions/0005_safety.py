"""safety: operators, issued ExternalIds, auth throttles, run wake-up bookkeeping

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

import orca_flows.db.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_operator", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "auth_throttles",
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_started_at", orca_flows.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )
    op.create_table(
        "external_ids",
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", orca_flows.db.base.UTCDateTime(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["link_id"], ["cloud_links.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("value"),
        sa.UniqueConstraint("link_id"),
    )
    op.create_index(op.f("ix_external_ids_owner_id"), "external_ids", ["owner_id"])
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("message_sent_at", orca_flows.db.base.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("parked_at", orca_flows.db.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("parked_at")
        batch_op.drop_column("message_sent_at")
    op.drop_index(op.f("ix_external_ids_owner_id"), table_name="external_ids")
    op.drop_table("external_ids")
    op.drop_table("auth_throttles")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("is_operator")
