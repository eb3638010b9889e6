"""A run that cannot start fails with the cause and the fix, and its key moves on; a
transient error while starting is retried and never fails the run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from orca_flows.db.engine import session_scope
from orca_flows.db.models import Pipeline, ScriptVersion
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import ExecutionState
from orca_flows.runners import ExecutionStatus, LocalRunner, RunSpec
from orca_flows.services.links import access_link
from orca_flows.settings import get_settings
from orca_flows.worker import Worker, WorkerOptions, execution
from tests.execution.conftest import LINK, Ledger, Orca, Workers
from tests.execution.test_transient_faults import prefect_services_drained  # noqa: F401

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]


def _in_process_worker(runs: int) -> int:
    """A worker in this process (so that injected faults reach it) until ``runs`` finish."""
    settings = get_settings(
        worker_poll_seconds=1,
        worker_heartbeat_seconds=1,
        worker_lease_seconds=10,
        worker_visibility_seconds=10,
    )
    worker = Worker(settings, WorkerOptions(concurrency=2, max_runs=runs, idle_exit=60))
    return asyncio.run(worker.run())


def _refusing(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def _delete_script(orca: Orca, pipeline: str) -> None:
    """Remove the pipeline's script object from the bucket (a lifecycle rule, a person)."""
    with session_scope(orca.settings.effective_database_url) as session:
        key = (
            session.query(ScriptVersion.s3_key)
            .join(Pipeline, Pipeline.id == ScriptVersion.pipeline_id)
            .filter(Pipeline.name == pipeline)
            .scalar()
        )
    access = access_link(orca.settings, Actor(orca.user.id, orca.user.email), LINK)
    access.client("s3").delete_object(Bucket=access.bucket, Key=key)


def test_a_run_whose_script_is_gone_fails_with_the_fix_and_the_next_run_of_its_key_runs(
    orca: Orca, ledger: Ledger, workers: Workers
) -> None:
    orca.add_pipeline("gone", ledger.script("gone"), ordering_key="broken", retries=1)
    orca.add_pipeline("next", ledger.script("next"), ordering_key="broken")
    _delete_script(orca, "gone")
    gone, after = orca.submit("gone"), orca.submit("next")
    workers.start(1)

    states = orca.wait_finished([gone, after], timeout=120)

    assert states == {gone: "failed", after: "succeeded"}
    failed = orca.show(gone)
    assert failed["attempt"] == 2, "the pipeline's one retry was not made"
    assert "the script version is missing from S3" in failed["error"]
    assert "orca pipeline upload" in failed["error"]
    assert ledger.starts(gone) == [] and len(ledger.starts(after)) == 1


@pytest.mark.usefixtures("prefect_services_drained")
def test_a_refused_start_fails_the_run_after_its_retries_and_releases_its_key(
    orca: Orca, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As SSM answers SendCommand when the instance lacks the tag the role's policy names.
    start = LocalRunner.start
    refused: list[int] = []

    def refusing(self: LocalRunner, spec: RunSpec) -> Any:
        if spec.pipeline == "denied":
            refused.append(spec.attempt)
            raise _refusing("SendCommand", "AccessDeniedException", "not authorized")
        return start(self, spec)

    monkeypatch.setattr(LocalRunner, "start", refusing)
    orca.add_pipeline("denied", ledger.script("denied"), ordering_key="refused", retries=2)
    orca.add_pipeline("next", ledger.script("next"), ordering_key="refused")
    denied, after = orca.submit("denied"), orca.submit("next")

    assert _in_process_worker(runs=2) == 2

    assert orca.states([denied, after]) == {denied: "failed", after: "succeeded"}
    assert refused == [1, 2, 3]
    error = orca.show(denied)["error"]
    assert "AWS refused SendCommand (AccessDeniedException: not authorized)" in error
    assert "orca link update" in error and "tag" in error
    assert ledger.starts(denied) == [] and len(ledger.starts(after)) == 1


@pytest.mark.usefixtures("prefect_services_drained")
def test_throttling_while_starting_is_retried_and_the_run_succeeds_once(
    orca: Orca, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = LocalRunner.start
    calls: list[int] = []

    def throttled_once(self: LocalRunner, spec: RunSpec) -> Any:
        calls.append(spec.attempt)
        if len(calls) == 1:  # botocore's own retries ran out on this one
            raise _refusing("SendCommand", "ThrottlingException", "Rate exceeded")
        return start(self, spec)

    monkeypatch.setattr(LocalRunner, "start", throttled_once)
    orca.add_pipeline("steady", ledger.script("steady"), retries=0)
    run_id = orca.submit("steady")

    assert _in_process_worker(runs=1) == 1

    shown = orca.show(run_id)
    assert (shown["state"], shown["attempt"], shown["error"]) == ("succeeded", 1, None)
    assert calls == [1, 1], "the throttled start was not tried again in the same attempt"
    assert len(ledger.starts(run_id)) == 1


@pytest.mark.usefixtures("prefect_services_drained")
def test_a_command_held_undelivered_is_not_timed_out_once_it_runs(
    orca: Orca, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As SSM answers while an instance is briefly unreachable ("Delayed"): the wait for
    # delivery is SSM's to end, not part of the script's timeout.
    status = LocalRunner.status
    first: dict[str, float] = {}

    def delayed(self: LocalRunner, run: Any, spec: RunSpec) -> ExecutionStatus:
        since = first.setdefault(spec.run_id, time.monotonic())
        if time.monotonic() - since < 4:
            return ExecutionStatus(ExecutionState.PENDING, None, "SSM could not reach it yet")
        return status(self, run, spec)

    monkeypatch.setattr(LocalRunner, "status", delayed)
    monkeypatch.setattr(execution, "_TIMEOUT_GRACE_S", 0.5)
    orca.add_pipeline("late", ledger.script("late"), timeout_seconds=1)
    run_id = orca.submit("late")

    assert _in_process_worker(runs=1) == 1

    shown = orca.show(run_id)
    assert (shown["state"], shown["error"]) == ("succeeded", None)
