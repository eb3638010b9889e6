"""The transaction guard itself: it sees network calls inside a transaction, and only those."""

from __future__ import annotations

import contextvars
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import boto3
import httpx
import pytest
from moto import mock_aws
from sqlalchemy import text

from orca_flows.db.engine import session_scope
from tests.support import transaction_guard
from tests.support.transaction_guard import open_transactions, recording


def _list_buckets() -> None:
    boto3.client("s3", region_name="us-east-1").list_buckets()


def _in_thread(target: Callable[[], None]) -> None:
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()


@mock_aws
def test_a_boto3_call_inside_a_transaction_is_detected(db_url: str) -> None:
    with recording() as violations, session_scope(db_url) as session:
        session.execute(text("SELECT 1"))
        _list_buckets()

    [violation] = violations
    assert violation.operation == "aws s3:ListBuckets"
    assert not violation.latent
    assert violation.call_frames[0].function == "_list_buckets"
    assert violation.call_frames[0].path == "tests/test_transaction_guard.py"
    assert violation.begin_owner is not None
    assert violation.begin_owner.function == "test_a_boto3_call_inside_a_transaction_is_detected"
    assert "aws s3:ListBuckets while a database transaction was open" in violation.describe()


@mock_aws
def test_the_same_call_after_the_commit_or_the_rollback_is_not(db_url: str) -> None:
    with recording() as violations:
        with session_scope(db_url) as session:
            session.execute(text("SELECT 1"))
        _list_buckets()
        with pytest.raises(RuntimeError), session_scope(db_url) as session:
            session.execute(text("SELECT 1"))
            raise RuntimeError("roll back")
        _list_buckets()

    assert violations == []
    assert open_transactions() == ()


@mock_aws
def test_a_call_in_another_thread_is_not_flagged(db_url: str) -> None:
    with recording() as violations, session_scope(db_url) as session:
        session.execute(text("SELECT 1"))
        _in_thread(_list_buckets)

    assert violations == []


@mock_aws
def test_a_call_on_behalf_of_the_caller_in_a_copied_context_is(db_url: str) -> None:
    # What Prefect's sync bridge does: run the client on its loop thread in a copy of the
    # caller's context while the caller waits.
    with recording() as violations, session_scope(db_url) as session:
        session.execute(text("SELECT 1"))
        context = contextvars.copy_context()
        _in_thread(lambda: context.run(_list_buckets))

    [violation] = violations
    assert violation.call_thread != violation.begin_thread
    functions = [frame.function for frame in violation.call_frames]
    assert "_list_buckets" in functions
    assert "test_a_call_on_behalf_of_the_caller_in_a_copied_context_is" in functions


@mock_aws
def test_a_call_before_the_first_sql_is_latent(db_url: str) -> None:
    with recording() as violations, session_scope(db_url) as session:
        _list_buckets()
        session.execute(text("SELECT 1"))

    [violation] = violations
    assert violation.latent


def test_http_calls_are_seen(db_url: str) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    with recording() as violations, session_scope(db_url) as session:
        session.execute(text("SELECT 1"))
        client.get("http://127.0.0.1:4200/api/block_documents/1b2c3d4e-0000-4000-8000-0123456789ab")
        client.post("http://example.test/hook?x=1")

    assert [v.operation for v in violations] == [
        "prefect GET /api/block_documents/{id}",
        "http POST /hook",
    ]


def test_an_unknown_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(transaction_guard.ENV_MODE, "loud")
    with pytest.raises(pytest.UsageError):
        transaction_guard.guard_mode()
    monkeypatch.setenv(transaction_guard.ENV_MODE, "report")
    assert transaction_guard.guard_mode() == "report"


def test_a_process_the_tests_start_reports_its_violations(tmp_path: Path) -> None:
    """A child process (as the CLI or a worker would be) records what it did in a transaction."""
    from tests.support.transaction_guard import ENV_SUBPROCESS_LOG, _subprocess_violations

    log = tmp_path / "child.jsonl"
    child = textwrap.dedent(
        f"""
        from orca_flows.db.engine import session_scope
        from orca_flows.sandbox_record import answers
        from sqlalchemy import text

        answers("http://127.0.0.1:9/")  # outside: fine
        with session_scope("sqlite:///{tmp_path / "child.db"}") as session:
            session.execute(text("select 1"))
            answers("http://127.0.0.1:9/")  # inside: a violation
        """
    )
    env = {**os.environ, ENV_SUBPROCESS_LOG: str(log)}
    subprocess.run([sys.executable, "-c", child], check=True, env=env, timeout=120)

    found = _subprocess_violations(log)
    assert [v.operation for v in found] == ["http GET /"]
    assert any(f.path == "orca_flows/sandbox_record.py" for f in found[0].call_frames)
    assert not found[0].latent
