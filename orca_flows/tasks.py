"""Prefect tasks for your own flows: run Orca pipelines and chain their outputs.

Each is a plain (sync) Prefect ``@task``: call it from a sync flow, or from an async flow
(it then runs in the flow's thread; use ``.submit()`` to run several side by side). The
acting user is ``user`` (an email) or ORCA_USER, as for ``orca run start``::

    from prefect import flow
    from orca_flows.tasks import run_pipeline

    @flow
    def nightly() -> None:
        extract = run_pipeline("extract")
        run_pipeline("load", parameters={"INPUT_URI": extract.output_uris[0]})

A failed, timed-out or cancelled run fails the task; ``run_pipeline.with_options(
retries=2)`` re-submits it as a NEW Orca run each time (the failed ones stay in the history).
A ``timeout`` that lapses fails the task too, and a retry then submits another run while
the one waited for keeps going: with retries, prefer no ``timeout`` (the pipeline's own
timeout bounds each run).

The tasks reach Orca's database, its AWS links and its Prefect server from Orca's own
settings (ORCA_*), whichever Prefect API the calling flow runs against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from prefect import get_run_logger, runtime, task
from prefect.cache_policies import NO_CACHE

from orca_flows.domain.actor import Actor
from orca_flows.errors import InvalidInputError, RunNotSucceededError
from orca_flows.services import run_results
from orca_flows.services import runs as runs_service
from orca_flows.services.run_results import RunResult, failure_message
from orca_flows.services.users import resolve_actor
from orca_flows.settings import OrcaSettings, get_settings

__all__ = ["RunResult", "run_pipeline", "submit_run", "wait_for_run"]

_T = TypeVar("_T")


def _acting(user: str | None) -> tuple[OrcaSettings, Actor]:
    """The settings and the acting user: ``user`` or ORCA_USER."""
    settings = get_settings()
    email = user or settings.user
    if not email:
        raise InvalidInputError(
            "user", "no acting Orca user: pass user='EMAIL' to the task or set ORCA_USER."
        )
    return settings, resolve_actor(settings, email)


def _requested_by() -> str:
    """Who asked, as the run's history shows it: this flow run, or "api" outside one."""
    flow_run_id = runtime.flow_run.id
    return f"flow-run:{flow_run_id}" if flow_run_id else "api"


def _outside_run_context(call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``call`` in a fresh thread, which does not inherit this task's Prefect context.

    Inside a task, Prefect hands ``Block.load`` the task engine's own client, i.e. the
    Prefect API the user's flow runs against; Orca's services name their own
    (``prefect_api``: the configured one, else the sandbox's), and only apply it outside
    a run context. A plain executor thread starts with an empty context (asyncio.to_thread
    would copy it).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="orca-task") as pool:
        return pool.submit(call, *args, **kwargs).result()


def _submit(pipeline: str, user: str | None, parameters: Mapping[str, str] | None) -> str:
    settings, actor = _acting(user)
    submitted = _outside_run_context(
        runs_service.submit_run,
        settings,
        actor,
        pipeline,
        requested_by=_requested_by(),
        parameters=dict(parameters) if parameters else None,
    )
    logger = get_run_logger()
    logger.info("Submitted Orca run %s of pipeline %r.", submitted.run_id, pipeline)
    if not submitted.message_sent:
        logger.warning(
            "Orca run %s is queued; its queue message will be sent by a worker's sweeper.",
            submitted.run_id,
        )
    return submitted.run_id


def _wait(run_id: str, user: str | None, timeout: float | None, poll: float | None) -> RunResult:
    settings, actor = _acting(user)
    result = _outside_run_context(
        run_results.wait_for_run, settings, actor, run_id, timeout=timeout, poll=poll
    )
    get_run_logger().info(
        "Orca run %s of pipeline %r ended %s (exit code %s); outputs: %s; log: %s",
        run_id,
        result.pipeline,
        result.state,
        result.exit_code,
        ", ".join(result.output_uris) or "none",
        result.log_uri,
    )
    return result


# NO_CACHE: two calls with the same arguments are two runs, never a cached first one.
@task(name="orca-submit-run", cache_policy=NO_CACHE, persist_result=False)
def submit_run(
    pipeline: str, *, user: str | None = None, parameters: Mapping[str, str] | None = None
) -> str:
    """Queue a run of an Orca pipeline (as `orca run start` does); returns the run id.

    Args:
        pipeline: The acting user's pipeline.
        user: The acting user's email (default: ORCA_USER).
        parameters: Environment variables for this run's script, overriding the
            pipeline's ``environment`` (e.g. ``{"INPUT_URI": "s3://..."}``).

    Raises:
        InvalidInputError: No acting user, or a bad parameter name or value.
        NotFoundError: No such user or pipeline.
        InvalidStateError: The pipeline has no script yet.
    """
    return _submit(pipeline, user, parameters)


@task(name="orca-wait-for-run", cache_policy=NO_CACHE, persist_result=False)
def wait_for_run(
    run_id: str,
    *,
    user: str | None = None,
    timeout: float | None = None,
    poll: float | None = None,
) -> RunResult:
    """Wait for an Orca run's final state; returns it whether it succeeded or not.

    Args:
        run_id: From ``submit_run`` (or `orca run start`).
        user: The acting user's email (default: ORCA_USER); only their runs are visible.
        timeout: Seconds to wait at most (default: no limit).
        poll: Seconds between two looks at the run (default 2).

    Raises:
        InvalidStateError: The run was not final within ``timeout`` (it keeps going).
        NotFoundError: No such run (or another user's).
    """
    return _wait(run_id, user, timeout, poll)


@task(name="orca-run-pipeline", cache_policy=NO_CACHE, persist_result=False)
def run_pipeline(
    pipeline: str,
    *,
    user: str | None = None,
    parameters: Mapping[str, str] | None = None,
    timeout: float | None = None,
    poll: float | None = None,
) -> RunResult:
    """Run an Orca pipeline and wait for it; returns the result of a ``succeeded`` run.

    Each call (and each Prefect retry of this task) submits a new Orca run.

    Args:
        pipeline: The acting user's pipeline.
        user: The acting user's email (default: ORCA_USER).
        parameters: Environment variables for this run's script (see ``submit_run``).
        timeout: Seconds to wait at most (default: no limit).
        poll: Seconds between two looks at the run (default 2).

    Raises:
        RunNotSucceededError: The run ended ``failed``, ``timed_out`` or ``cancelled``
            (the message names the run, its state, exit code, error and log URI; the
            error's ``run_id`` and ``state`` too).
        InvalidStateError: The run was not final within ``timeout`` (it keeps going).
        InvalidInputError: As ``submit_run``.
        NotFoundError: As ``submit_run``.
    """
    result = _wait(_submit(pipeline, user, parameters), user, timeout, poll)
    if not result.succeeded:
        raise RunNotSucceededError(
            failure_message(result), run_id=result.run_id, state=str(result.state)
        )
    return result
