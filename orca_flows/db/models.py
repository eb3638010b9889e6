"""Orca's tables as SQLAlchemy 2 typed models (see "Data model" in DESIGN.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orca_flows.db.base import Base, StrEnumColumn, UTCDateTime, utcnow
from orca_flows.domain.states import CheckStatus, RunState

__all__ = [
    "AuthThrottle",
    "CloudLink",
    "ExternalId",
    "OrderingKeyCounter",
    "Pipeline",
    "Run",
    "RunFlowRun",
    "Schedule",
    "ScriptVersion",
    "User",
]


class User(Base):
    """A person who signs in to Orca; email is case-folded, password is an argon2id hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Operators run Orca (they may reach Prefect); tenants never see Prefect's UI or API.
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)


class AuthThrottle(Base):
    """Sign-in and sign-up attempts counted per scope (a client address or an account).

    ``scope`` is e.g. ``addr:203.0.113.9`` or ``account:ann@example.com``; the window
    restarts when it is older than the limit's period.
    """

    __tablename__ = "auth_throttles"

    scope: Mapped[str] = mapped_column(String(255), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CloudLink(Base):
    """A linked cloud account; its secrets live in the named Prefect block document."""

    __tablename__ = "cloud_links"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(16), default="aws")
    role_arn: Mapped[str | None] = mapped_column(String(2048))
    region: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str | None] = mapped_column(String(12))
    bucket: Mapped[str | None] = mapped_column(String(63))
    queue_url: Mapped[str | None] = mapped_column(String(1024))
    local: Mapped[bool] = mapped_column(Boolean, default=False)
    block_document_name: Mapped[str] = mapped_column(String(255))
    last_check_status: Mapped[CheckStatus | None] = mapped_column(StrEnumColumn(CheckStatus))
    last_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_check_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set while `link create` saves the block documents (the row reserves the name);
    # NULL once the link is usable. See services/links.py for the recovery rule.
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime())

    owner: Mapped[User] = relationship()


class ExternalId(Base):
    """An ExternalId Orca issued to one user (`orca link kit`); a link may use it once.

    AWS's confused-deputy guidance: the vendor generates a unique id per customer, so a
    user can only link a role whose trust policy names an id issued to them.
    """

    __tablename__ = "external_ids"

    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The link that uses it (NULL while unused, and again once that link is removed).
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("cloud_links.id", ondelete="SET NULL"), unique=True
    )


class Pipeline(Base):
    """A user's script and how to run it; ``current_version`` is the latest upload."""

    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    link_id: Mapped[int] = mapped_column(ForeignKey("cloud_links.id"), index=True)
    runner: Mapped[str] = mapped_column(String(8), default="ssm")
    target: Mapped[str | None] = mapped_column(String(1024))
    ordering_key: Mapped[str] = mapped_column(String(128), default="pipeline")
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    environment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    current_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    owner: Mapped[User] = relationship()
    # Loaded with the pipeline: runners read the link (is it a sandbox link?) after the
    # unit of work that read the pipeline has ended.
    link: Mapped[CloudLink] = relationship(lazy="selectin")


class ScriptVersion(Base):
    """One immutable upload of a pipeline's script."""

    __tablename__ = "script_versions"
    __table_args__ = (UniqueConstraint("pipeline_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    s3_key: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class OrderingKeyCounter(Base):
    """Last sequence number handed out per ordering key (a row lock makes it race-free)."""

    __tablename__ = "ordering_key_counters"

    ordering_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)


class Run(Base):
    """One requested execution of a pipeline, from ``queued`` to a final state."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("ordering_key", "sequence"),
        Index(None, "owner_id", "requested_at"),
        Index(None, "pipeline_id", "requested_at"),
        Index(None, "state", "requested_at"),
        Index(None, "owner_id", "state", "requested_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    script_version_id: Mapped[int] = mapped_column(ForeignKey("script_versions.id"))
    ordering_key: Mapped[str] = mapped_column(String(255))
    sequence: Mapped[int] = mapped_column(BigInteger)
    # Stored as its plain value (no DB enum type, so adding a state needs no migration).
    state: Mapped[RunState] = mapped_column(StrEnumColumn(RunState), default=RunState.QUEUED)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sqs_message_id: Mapped[str | None] = mapped_column(String(128))
    command_id: Mapped[str | None] = mapped_column(String(64))
    instance_id: Mapped[str | None] = mapped_column(String(32))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    s3_prefix: Mapped[str | None] = mapped_column(String(1024))
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    error_summary: Mapped[str | None] = mapped_column(Text)
    stop_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the last wake-up message for the run was sent: the sweeper re-sends one for a
    # head run whose message is older than a bound (the database is the truth, a message
    # only a wake-up; SQS may have dropped it).
    message_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when a worker parked the run (deleted its message because an earlier run of the
    # key is unfinished); a submitter's late "record my message id" must not undo it.
    parked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What makes a second submit of the same request return this run instead of a new one
    # (a schedule's firing: its Prefect flow run id); unique, so a race inserts one row.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # Per-run environment variables for the script, over the pipeline's ``environment``.
    parameters: Mapped[dict[str, str] | None] = mapped_column(JSON)

    pipeline: Mapped[Pipeline] = relationship()
    script_version: Mapped[ScriptVersion] = relationship()


class RunFlowRun(Base):
    """A Prefect flow run that executed (or resumed) a run; a run taken over has several."""

    __tablename__ = "run_flow_runs"
    __table_args__ = (UniqueConstraint("run_id", "flow_run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    flow_run_id: Mapped[str] = mapped_column(String(36))
    attempt: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Schedule(Base):
    """A pipeline's schedule; the firing itself is a Prefect deployment."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline_id: Mapped[int] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), unique=True
    )
    cron: Mapped[str | None] = mapped_column(String(128))
    interval_seconds: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    deployment_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
