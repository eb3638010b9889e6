"""A run's outcome as a Prefect user's flow sees it, and waiting for it (``orca_flows.tasks``).

Polling reads the run's row only (no network call); the outputs are listed once, from S3,
after the run has finished. Waiting never changes the run: a wait that times out leaves
the run going.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from orca_flows.domain.actor import Actor
from orca_flows.domain.states import RunState
from orca_flows.domain.views import RunView
from orca_flows.errors import InvalidInputError, InvalidStateError
from orca_flows.services.runs import view_run
from orca_flows.settings import OrcaSettings

__all__ = ["DEFAULT_POLL_SECONDS", "RunResult", "failure_message", "wait_for_run"]

DEFAULT_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class RunResult:
    """A finished (or, after a timed-out wait, unfinished) Orca run.

    Attributes:
        run_id: The Orca run id.
        pipeline: The pipeline's name.
        state: ``succeeded``, ``failed``, ``timed_out`` or ``cancelled`` once final.
        exit_code: The script's exit code (``None`` when it never exited on its own).
        duration_seconds: From start to finish (``None`` unless both are known).
        script_version: The script version the run executed.
        script_sha256: Hex sha256 of that script.
        log_uri: ``s3://`` URI of the run's full log.
        output_uris: ``s3://`` URIs of the files the script left in ``$ORCA_OUTPUT_DIR``.
        error: Orca's summary of what went wrong (``None`` on success).
    """

    run_id: str
    pipeline: str
    state: RunState
    exit_code: int | None
    duration_seconds: float | None
    script_version: int
    script_sha256: str
    log_uri: str
    output_uris: tuple[str, ...]
    error: str | None

    @property
    def succeeded(self) -> bool:
        """Whether the run ended ``succeeded``."""
        return self.state == RunState.SUCCEEDED

    @classmethod
    def of(cls, view: RunView) -> RunResult:
        """The result a ``RunView`` describes."""
        return cls(
            run_id=view.id,
            pipeline=view.pipeline,
            state=RunState(view.state),
            exit_code=view.exit_code,
            duration_seconds=view.duration_seconds,
            script_version=view.script_version,
            script_sha256=view.script_sha256,
            log_uri=view.log_uri,
            output_uris=tuple(view.outputs),
            error=view.error,
        )


def failure_message(result: RunResult) -> str:
    """One sentence naming what a flow's author needs: run, state, exit code, error, log."""
    exit_code = "none" if result.exit_code is None else str(result.exit_code)
    summary = (result.error or "").strip().rstrip(".")
    error = f" {summary[:1].upper()}{summary[1:]}." if summary else ""
    return (
        f"Orca run {result.run_id} of pipeline {result.pipeline!r} ended {result.state} "
        f"(exit code {exit_code}).{error} Log: {result.log_uri}"
    )


def wait_for_run(
    settings: OrcaSettings,
    actor: Actor,
    run_id: str,
    *,
    timeout: float | None = None,
    poll: float | None = None,
) -> RunResult:
    """Wait until the actor's run is final; returns its result with the output URIs.

    Args:
        timeout: Seconds to wait at most (``None``: no limit).
        poll: Seconds between two looks at the run's row (default 2).

    Raises:
        InvalidInputError: A negative timeout or a non-positive poll.
        InvalidStateError: The run was not final within ``timeout`` (it keeps going).
        NotFoundError: No such run (or another user's).
    """
    interval = DEFAULT_POLL_SECONDS if poll is None else poll
    if interval <= 0:
        raise InvalidInputError("poll", f"poll must be a positive number of seconds, not {poll}.")
    if timeout is not None and timeout < 0:
        raise InvalidInputError("timeout", f"timeout must not be negative, not {timeout}.")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        # A row read while the run goes on; view_run lists the outputs (one S3 listing)
        # only once the run has finished.
        view = view_run(settings, actor, run_id)
        if view.finished:
            return RunResult.of(view)
        if deadline is not None and time.monotonic() >= deadline:
            raise InvalidStateError(
                f"Orca run {run_id} of pipeline {view.pipeline!r} is still {view.state} after "
                f"{timeout:g} s of waiting; it keeps going. Wait longer, follow it with "
                f"`orca run show {run_id}`, or stop it with `orca run stop {run_id}`."
            )
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        time.sleep(interval if remaining is None else min(interval, remaining))
