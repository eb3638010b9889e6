"""cloud link bucket queue account

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:20:48.925599
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cloud_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("bucket", sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column("queue_url", sa.String(length=1024), nullable=True))
        batch_op.add_column(
            sa.Column("local", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("cloud_links", schema=None) as batch_op:
        batch_op.drop_column("local")
        batch_op.drop_column("queue_url")
        batch_op.drop_column("bucket")
        batch_op.drop_column("account_id")
