"""run stop request

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 12:33:12.135046
"""

import sqlalchemy as sa
from alembic import op

import orca_flows.db.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stop_requested_at", orca_flows.db.base.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("stop_requested_at")
