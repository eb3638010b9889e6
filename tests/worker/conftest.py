"""Worker fixtures: Orca's settings on the database under test, and runs to claim.

``db_url`` (tests/conftest.py) gives every test here once on SQLite and once on MariaDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from prefect.blocks.core import Block
from pydantic import SecretStr
from sqlalchemy import update

from orca_blocks import OrcaLinkedCloudCredentials
from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import CloudLink, Run
from orca_flows.db.repositories import links, pipelines, runs, users
from orca_flows.errors import NotFoundError
from orca_flows.prefect_adapter import link_access
from orca_flows.settings import OrcaSettings, get_settings

LEASE_SECONDS = 60


@dataclass
class Board:
    """One user's pipeline on one link, and helpers to make and inspect its runs."""

    settings: OrcaSettings
    owner_id: int
    link_id: int
    pipeline_id: int
    version_id: int

    def submit(self, key: str = "k", *, message_id: str | None = "m", age_s: float = 0) -> str:
        """A queued run of ``key`` (the next sequence), requested ``age_s`` seconds ago."""
        with session_scope(self.settings.effective_database_url) as session:
            run = runs.create_run(
                session,
                owner_id=self.owner_id,
                pipeline_id=self.pipeline_id,
                script_version_id=self.version_id,
                ordering_key=key,
                requested_by="test",
            )
            run.sqs_message_id = message_id
            run.requested_at = utcnow() - timedelta(seconds=age_s)
            return run.id

    def set(self, run_id: str, **values: Any) -> None:
        """Write columns of a run directly (another process's doing)."""
        with session_scope(self.settings.effective_database_url) as session:
            session.execute(update(Run).where(Run.id == run_id).values(**values))

    def get(self, run_id: str) -> Run:
        with session_scope(self.settings.effective_database_url) as session:
            run = session.get(Run, run_id)
            assert run is not None
            return run

    def add_link(self, name: str, **values: Any) -> int:
        """Another link of the same owner (``values``: bucket, queue_url...)."""
        with session_scope(self.settings.effective_database_url) as session:
            link = links.create_link(
                session,
                owner_id=self.owner_id,
                name=name,
                region="us-east-1",
                block_document_name=f"block-{name}",
            )
            for column, value in values.items():
                setattr(link, column, value)
            return link.id

    def update_link(self, link_id: int, **values: Any) -> None:
        with session_scope(self.settings.effective_database_url) as session:
            link = session.get(CloudLink, link_id)
            assert link is not None
            for column, value in values.items():
                setattr(link, column, value)

    def remove_link(self, link_id: int) -> None:
        with session_scope(self.settings.effective_database_url) as session:
            link = session.get(CloudLink, link_id)
            assert link is not None
            session.delete(link)


@pytest.fixture
def board(db_url: str, tmp_path: Path) -> Board:
    """Ann's pipeline ``etl`` on link ``aws``, on SQLite or MariaDB."""
    settings = get_settings(
        database_url=db_url, home=tmp_path / "home", worker_lease_seconds=LEASE_SECONDS
    )
    with session_scope(db_url) as session:
        ann = users.create_user(session, email="ann@example.com", password_hash="x")
        link = links.create_link(
            session, owner_id=ann.id, name="aws", region="us-east-1", block_document_name="b"
        )
        pipeline = pipelines.create_pipeline(session, owner_id=ann.id, name="etl", link_id=link.id)
        version = pipelines.add_script_version(
            session,
            pipeline,
            s3_key="orca/1/etl/v1/job.sh",
            sha256="0" * 64,
            size_bytes=1,
            uploaded_by=ann.id,
        )
        return Board(settings, ann.id, link.id, pipeline.id, version.id)


@pytest.fixture
def aws() -> Iterator[Any]:
    """moto's in-process AWS; yields an SQS client of it."""
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def fifo_queue(sqs: Any, name: str) -> str:
    """Create a FIFO queue in moto; returns its URL."""
    return sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]


def credentials(external_id: str = "orca-external-id-1") -> OrcaLinkedCloudCredentials:
    """A linked account's credentials block (moto accepts any role)."""
    return OrcaLinkedCloudCredentials(
        role_arn="arn:aws:iam::123456789012:role/OrcaAccess", external_id=SecretStr(external_id)
    )


@pytest.fixture
def blocks(monkeypatch: pytest.MonkeyPatch) -> dict[str, Block]:
    """The Prefect block documents links load, kept in a dict (name -> block) instead.

    Assigning a new block to a name is what `orca link update` (or an edit in Prefect's
    UI) does to the document. As in Prefect, a name is looked up within the block type.
    """
    saved: dict[str, Block] = {}

    def load_block(block_type: type[Block], name: str) -> Block:
        if not isinstance(saved.get(name), block_type):
            raise NotFoundError("block document", name, "Re-create the link.")
        return saved[name]

    monkeypatch.setattr(link_access, "load_block", load_block)
    monkeypatch.setattr(link_access, "_CACHE", {})
    return saved
