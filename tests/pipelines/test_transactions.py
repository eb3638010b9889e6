"""Pipelines and runs hold no transaction while S3 or a runner is called, and a failure or a
crash between the steps leaves a state that a retry or the worker finishes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.db.base import utcnow
from orca_flows.db.models import ScriptVersion, User
from orca_flows.db.repositories.runs import compare_and_set_state
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import RunState
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.runners import LocalRunner
from orca_flows.services.pipelines import ScriptFile, add_pipeline, show_pipeline, upload_version
from orca_flows.services.runs import read_log, stop_run, submit_run, view_run
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import get_settings
from orca_flows.worker.claims import finish_run, stop_requested
from tests.pipelines.conftest import listed, orca, stored_objects
from tests.support.transaction_guard import open_transactions, recording

SCRIPT = ScriptFile("job.sh", b"echo hello\n")


@pytest.fixture
def actor(access: LinkAccess, ann: User) -> Actor:
    """Ann, with her sandbox link `dev`."""
    return Actor(ann.id, ann.email)


def _s3_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def put(self: PrefixedBucket, relative: str, body: bytes, **_: Any) -> str:
        raise EndpointConnectionError(endpoint_url="http://s3.example")

    monkeypatch.setattr(PrefixedBucket, "put", put)


def _version_rows() -> int:
    with unit_of_work(get_settings()) as session:
        return session.query(ScriptVersion).count()


def _during(
    monkeypatch: pytest.MonkeyPatch,
    cls: type,
    name: str,
    check: Callable[[], None],
    *,
    call: bool = True,
) -> list[bool]:
    """Run ``check`` inside every call of ``cls.name`` (then the method itself, if
    ``call``); returns one True per call made with no transaction open."""
    original = getattr(cls, name)
    calls: list[bool] = []

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(open_transactions() == ())
        check()
        return original(self, *args, **kwargs) if call else None

    monkeypatch.setattr(cls, name, wrapped)
    return calls


def test_s3_down_while_adding_leaves_no_pipeline_and_no_version(
    tmp_path: Path, access: LinkAccess, ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    _s3_down(monkeypatch)
    script = tmp_path / "job.sh"
    script.write_bytes(SCRIPT.content)

    result = orca("pipeline", "add", "etl", str(script), "--link", "dev")

    assert result.exit_code == 1 and "an AWS call failed" in result.stderr
    assert listed("pipeline", "list") == []
    assert _version_rows() == 0
    assert stored_objects(access, ann) == []


def test_s3_down_while_uploading_keeps_the_current_version(
    actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    add_pipeline(settings, actor, "etl", SCRIPT, link_name="dev")
    _s3_down(monkeypatch)

    with pytest.raises(EndpointConnectionError):
        upload_version(settings, actor, "etl", ScriptFile("job.py", b"print('v2')\n"))

    view = show_pipeline(settings, actor, "etl")
    assert view.current_version == 1 and [v.version for v in view.versions] == [1]
    assert _version_rows() == 1


def test_a_version_reserved_by_an_upload_that_died_is_not_shown(
    actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process killed mid-upload leaves its reserved row: never shown, never run."""
    from orca_flows.services import pipelines

    settings = get_settings()
    add_pipeline(settings, actor, "etl", SCRIPT, link_name="dev")

    class _Died(BaseException):
        pass

    def die(*_: Any, **__: Any) -> None:
        raise _Died  # before any clean-up could run, as SIGKILL would

    monkeypatch.setattr(pipelines, "_store_script", die)
    monkeypatch.setattr(pipelines.pipelines_repo, "delete_script_version", lambda *a: None)
    with pytest.raises(_Died):
        upload_version(settings, actor, "etl", ScriptFile("job.py", b"print('v2')\n"))

    assert _version_rows() == 2  # the reservation stayed
    view = show_pipeline(settings, actor, "etl")
    assert view.current_version == 1 and [v.version for v in view.versions] == [1]


def test_an_upload_holds_no_transaction_while_it_stores_the_script(
    actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    add_pipeline(settings, actor, "etl", SCRIPT, link_name="dev")
    second = ScriptFile("job.sh", b"echo second\n")
    nested: list[int] = []

    def another_upload() -> None:
        # SQLite would make this wait out its busy timeout if the first upload held a
        # transaction; it finishes first, so the first one must not undo its "current".
        if not nested:
            nested.append(0)
            nested[0] = upload_version(settings, actor, "etl", second).version

    calls = _during(monkeypatch, PrefixedBucket, "put", another_upload)
    with recording() as violations:
        first = upload_version(settings, actor, "etl", ScriptFile("job.sh", b"echo first\n"))

    view = show_pipeline(settings, actor, "etl")
    assert violations == [] and calls == [True, True]
    assert (first.version, nested) == (2, [3])
    assert view.current_version == 3  # the later version stays current
    assert {v.version: v.sha256 for v in view.versions}[2] == ScriptFile(
        "x", b"echo first\n"
    ).sha256


def _running(actor: Actor, pipeline: str = "etl") -> str:
    """A run of ``pipeline`` (a local runner's) that a worker (``w1``) has claimed and started."""
    settings = get_settings()
    run_id = submit_run(settings, actor, pipeline, requested_by="test").run_id
    with unit_of_work(settings) as session:
        assert compare_and_set_state(
            session,
            run_id,
            RunState.QUEUED,
            RunState.RUNNING,
            started_at=utcnow(),
            attempt=1,
            lease_owner="w1",
            command_id="local-999999999-1",  # a process that is gone: killed, confirmed
        )
    return run_id


def test_stopping_a_running_run_records_the_stop_before_the_runner_kills_it(
    actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    add_pipeline(settings, actor, "etl", SCRIPT, link_name="dev", runner="local")
    run_id = _running(actor)
    seen: list[bool] = []

    def while_killing() -> None:
        seen.append(stop_requested(settings, run_id))  # committed already
        submit_run(settings, actor, "etl", requested_by="test")  # the database is free

    # The execution id is made up: check, but kill nothing.
    calls = _during(monkeypatch, LocalRunner, "stop", while_killing, call=False)
    with recording() as violations:
        was = stop_run(settings, actor, run_id)

    assert violations == [] and calls == [True] and seen == [True]
    assert was == RunState.RUNNING
    assert view_run(settings, actor, run_id, with_outputs=False).state == RunState.CANCELLED


def test_a_crash_while_the_runner_stops_a_run_leaves_it_to_the_worker(
    actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    add_pipeline(settings, actor, "etl", SCRIPT, link_name="dev", runner="local")
    run_id = _running(actor)

    def crash(self: Any, execution: Any, spec: Any) -> None:
        raise RuntimeError("killed -9")

    monkeypatch.setattr(LocalRunner, "stop", crash)
    with pytest.raises(RuntimeError):
        stop_run(settings, actor, run_id)

    # Cancelling, the stop recorded: the worker watching it kills it and finishes it
    # cancelled, whatever the script's exit code.
    assert view_run(settings, actor, run_id, with_outputs=False).state == RunState.CANCELLING
    assert stop_requested(settings, run_id)
    final = finish_run(
        settings, run_id, RunState.SUCCEEDED, worker_id="w1", exit_code=0, error=None
    )
    assert final == RunState.CANCELLED


def test_remove_force_stops_running_runs_with_no_transaction_open(
    actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    add_pipeline(settings, actor, "etl", SCRIPT, link_name="dev", runner="local")
    running, queued = _running(actor), submit_run(settings, actor, "etl", requested_by="t").run_id
    calls = _during(monkeypatch, LocalRunner, "stop", lambda: None, call=False)

    with recording() as violations:
        result = orca("pipeline", "remove", "etl", "--force")

    assert result.exit_code == 0, result.output
    assert violations == [] and calls == [True]
    assert listed("pipeline", "list") == []
    for run_id in (running, queued):
        assert orca("run", "show", run_id).exit_code == 1


def test_showing_a_run_and_its_log_reads_s3_after_the_unit_of_work(actor: Actor) -> None:
    settings = get_settings()
    add_pipeline(settings, actor, "etl", SCRIPT, link_name="dev", runner="local")
    run_id = _running(actor)
    with unit_of_work(settings) as session:
        compare_and_set_state(
            session, run_id, RunState.RUNNING, RunState.SUCCEEDED, finished_at=utcnow()
        )

    with recording() as violations:
        view = view_run(settings, actor, run_id)
        log = read_log(settings, actor, run_id)

    assert violations == []
    assert view.outputs == () and log.data == b"" and log.finished
