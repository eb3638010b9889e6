"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:08:40.072156
"""

import sqlalchemy as sa
from alembic import op

import orca_flows.db.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ordering_key_counters",
        sa.Column("ordering_key", sa.String(length=255), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("ordering_key", name=op.f("pk_ordering_key_counters")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", orca_flows.db.base.UTCDateTime(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", orca_flows.db.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "cloud_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("role_arn", sa.String(length=2048), nullable=True),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("block_document_name", sa.String(length=255), nullable=False),
        sa.Column("last_check_status", sa.String(length=16), nullable=True),
        sa.Column("last_check_at", orca_flows.db.base.UTCDateTime(), nullable=True),
        sa.Column("last_check_detail", sa.Text(), nullable=True),
        sa.Column("created_at", orca_flows.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_cloud_links_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cloud_links")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_cloud_links_owner_id_name")),
    )
    op.create_table(
        "pipelines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("runner", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=1024), nullable=True),
        sa.Column("ordering_key", sa.String(length=128), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=True),
        sa.Column("created_at", orca_flows.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["cloud_links.id"], name=op.f("fk_pipelines_link_id_cloud_links")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_pipelines_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_pipelines_owner_id_name")),
    )
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pipelines_link_id"), ["link_id"], unique=False)

    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("cron", sa.String(length=128), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", orca_flows.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", orca_flows.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_schedules_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("pipeline_id", name=op.f("uq_schedules_pipeline_id")),
    )
    op.create_table(
        "script_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("s3_key", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_at", orca_flows.db.base.UTCDateTime(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_script_versions_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["users.id"], name=op.f("fk_script_versions_uploaded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_versions")),
        sa.UniqueConstraint(
            "pipeline_id", "version", name=op.f("uq_script_versions_pipeline_id_version")
        ),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("script_version_id", sa.Integer(), nullable=False),
        sa.Column("ordering_key", sa.String(length=255), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", orca_flows.db.base.UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("started_at", orca_flows.db.base.UTCDateTime(), nullable=True),
        sa.Column("finished_at", orca_flows.db.base.UTCDateTime(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", orca_flows.db.base.UTCDateTime(), nullable=True),
        sa.Column("sqs_message_id", sa.String(length=128), nullable=True),
        sa.Column("command_id", sa.String(length=64), nullable=True),
        sa.Column("instance_id", sa.String(length=32), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("s3_prefix", sa.String(length=1024), nullable=True),
        sa.Column("flow_run_id", sa.String(length=36), nullable=True),
        sa.Column("error_summary", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_runs_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_runs_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["script_version_id"],
            ["script_versions.id"],
            name=op.f("fk_runs_script_version_id_script_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("ordering_key", "sequence", name=op.f("uq_runs_ordering_key_sequence")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_runs_owner_id_requested_at"), ["owner_id", "requested_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_runs_owner_id_state_requested_at"),
            ["owner_id", "state", "requested_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_runs_pipeline_id_requested_at"),
            ["pipeline_id", "requested_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_runs_state_requested_at"), ["state", "requested_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_state_requested_at"))
        batch_op.drop_index(batch_op.f("ix_runs_pipeline_id_requested_at"))
        batch_op.drop_index(batch_op.f("ix_runs_owner_id_state_requested_at"))
        batch_op.drop_index(batch_op.f("ix_runs_owner_id_requested_at"))

    op.drop_table("runs")
    op.drop_table("script_versions")
    op.drop_table("schedules")
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipelines_link_id"))

    op.drop_table("pipelines")
    op.drop_table("cloud_links")
    op.drop_table("users")
    op.drop_table("ordering_key_counters")
