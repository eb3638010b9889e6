"""prefect-native: idempotent submits, per-run parameters, every flow run of a run

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 06:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

import orca_flows.db.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("parameters", sa.JSON(), nullable=True))
        batch_op.create_unique_constraint("uq_runs_idempotency_key", ["idempotency_key"])
    op.create_table(
        "run_flow_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("flow_run_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("recorded_at", orca_flows.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "flow_run_id"),
    )
    op.create_index(op.f("ix_run_flow_runs_run_id"), "run_flow_runs", ["run_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_run_flow_runs_run_id"), table_name="run_flow_runs")
    op.drop_table("run_flow_runs")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint("uq_runs_idempotency_key", type_="unique")
        batch_op.drop_column("parameters")
        batch_op.drop_column("idempotency_key")
