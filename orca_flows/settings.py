"""Orca's configuration: one settings class read from ``ORCA_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["OrcaSettings", "get_settings"]


class OrcaSettings(BaseSettings):
    """Everything Orca reads from the environment; nothing else reads ``os.environ``."""

    model_config = SettingsConfigDict(env_prefix="ORCA_", extra="ignore")

    home: Path = Field(
        default=Path("~/.orca"),
        description="Directory for Orca's local state: SQLite file, sandbox record, logs.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of Orca's tables; defaults to a SQLite file under ORCA_HOME.",
    )
    user: str | None = Field(default=None, description="Email of the acting user.")
    region: str = Field(default="us-east-1", description="Default AWS region.")
    sandbox_bucket: str = Field(default="orca-sandbox", description="The sandbox's S3 bucket.")
    sandbox_queue: str = Field(
        default="orca-runs.fifo", description="The sandbox's SQS FIFO queue name."
    )
    sandbox_port: int = Field(
        default=0, ge=0, le=65535, description="Port for `orca local up`; 0 picks a free one."
    )
    # Checked where it is used (the link kit) by orca_flows.domain.rules.check_account_id:
    # settings import no other Orca module, and a pattern here would be a second copy.
    account_id: str | None = Field(
        default=None,
        description="Orca's own AWS account id, 12 digits (the one linked roles trust); "
        "asked of STS when unset.",
    )
    link_template_url: str = Field(
        default="https://orca-link-templates.s3.amazonaws.com/v1/orca-link.json",
        description="HTTPS S3 URL where the operator published the link template "
        "(`orca link kit --template`), used by the quick-create link.",
    )
    max_script_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Largest pipeline script accepted."
    )
    worker_visibility_seconds: int = Field(
        default=120,
        ge=1,
        le=43200,
        description="How long a received run message stays hidden; the heartbeat renews it. "
        "The value of a new link's queue block, whose own value workers use; set on a "
        "worker, it replaces every queue block's there.",
    )
    worker_lease_seconds: int = Field(
        default=90,
        ge=1,
        description="A worker's claim on a running run; another worker takes over after it lapses.",
    )
    worker_heartbeat_seconds: float = Field(
        default=30,
        gt=0,
        description="How often a worker renews message visibility and lease (more often "
        "when a third of the queue block's visibility timeout is shorter).",
    )
    rewake_after_seconds: int = Field(
        default=900,
        ge=1,
        description="How long the head run of a key (or a run whose worker's lease lapsed) "
        "may go without its message being received before a worker's sweeper re-sends one "
        "(SQS may drop messages: retention, the dead-letter queue, the 12-hour visibility "
        "cap). Keep it well above the queues' visibility timeout: an early re-send only "
        "makes a harmless duplicate.",
    )
    worker_poll_seconds: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Long-poll wait of each receive. The value of a new link's queue block, "
        "whose own value workers use; set on a worker, it replaces every queue block's there.",
    )
    min_schedule_interval_seconds: int = Field(
        default=60,
        ge=1,
        description="Shortest interval `orca schedule set --interval` accepts, in seconds.",
    )
    schedule_work_pool: str = Field(
        default="orca-schedules",
        min_length=1,
        max_length=128,
        description="The Prefect work pool (process type) that holds Orca's schedule "
        "deployments; `orca serve` runs a Prefect process worker on it. Give each Orca "
        "database sharing one Prefect server its own pool.",
    )
    aws_max_attempts: int = Field(
        default=5, ge=1, le=20, description="botocore standard-mode retry attempts per call."
    )
    stop_confirm_seconds: float = Field(
        default=300,
        gt=0,
        description="How long a stop waits for the run's process to be confirmed dead; "
        "past it the run stays `cancelling` with the reason, and its key waits.",
    )
    ssm_delivery_timeout_seconds: int = Field(
        default=600,
        ge=30,
        le=2_592_000,
        description="SSM's TimeoutSeconds for each run's command: how long SSM keeps trying "
        "to reach an instance whose agent is offline before the run fails (AWS allows "
        "30 s to 30 days).",
    )
    allow_local_runner: bool = Field(
        default=False,
        description="Let pipelines on any link use the local runner, which runs scripts on "
        "the worker's host as its OS user (only for a trusted single-user install; see "
        "docs/operations.md). Off, only sandbox links may.",
    )
    # Sign-up and sign-in (docs/operations.md, "Sign-up and sign-in").
    max_concurrent_hashes: int = Field(
        default=2,
        ge=1,
        description="Most argon2 password hashes computed at once per process (each takes "
        "tens of MiB), so a burst of sign-ins cannot exhaust memory.",
    )
    hash_wait_seconds: float = Field(
        default=3.0,
        gt=0,
        description="How long a sign-in or sign-up waits for a hashing slot before it is "
        "refused as busy.",
    )
    auth_attempts_per_address: int = Field(
        default=20,
        ge=1,
        description="Sign-in and sign-up attempts one client address may make per window.",
    )
    auth_window_seconds: int = Field(
        default=600, ge=1, description="The window of ORCA_AUTH_ATTEMPTS_PER_ADDRESS."
    )
    ui_trust_forwarded_for: bool = Field(
        default=False,
        description="The web app runs behind the documented reverse proxy, which sets "
        "X-Forwarded-For: the client address is its last entry.",
    )

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: ``ORCA_DATABASE_URL`` or SQLite under ``ORCA_HOME``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'orca.db'}"

    @property
    def sandbox_state_file(self) -> Path:
        """Where `orca local up` records the emulator's pid and endpoint."""
        return self.home / "sandbox.json"

    @property
    def sandbox_log_file(self) -> Path:
        """Where the emulator's own output goes."""
        return self.home / "sandbox.log"

    @property
    def sandbox_identity_file(self) -> Path:
        """What survives `orca local down`: ports and the sandbox link's ExternalId."""
        return self.home / "sandbox-identity.json"


def get_settings(**overrides: Any) -> OrcaSettings:
    """Read the settings from the environment now (never cached: tests change ORCA_HOME)."""
    return OrcaSettings(**overrides)
