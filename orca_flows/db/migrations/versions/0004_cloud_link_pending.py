"""cloud link pending

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import orca_flows.db.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every existing link: they are complete.
    with op.batch_alter_table("cloud_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pending_since", orca_flows.db.base.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("cloud_links", schema=None) as batch_op:
        batch_op.drop_column("pending_since")
