"""The local runner: the SSM bootstrap, run on this machine in its own session."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orca_flows.domain.states import ExecutionState
from orca_flows.errors import InvalidInputError
from orca_flows.logs import get_logger
from orca_flows.runners.base import Backoff, wait_for_execution
from orca_flows.runners.bootstrap import render_bootstrap, render_kill
from orca_flows.runners.spec import (
    RUN_ID_PATTERN,
    Execution,
    ExecutionStatus,
    RunSpec,
    read_marker,
)

__all__ = ["LocalRunner"]

logger = get_logger(__name__)

_COMMAND_PREFIX = "local-"
_KILL_TIMEOUT_SECONDS = 30
_DETAIL_TAIL_CHARS = 2000


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks since boot) of ``pid``, or ``None`` if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], fields[19]


def _parse_command_id(command_id: str) -> tuple[int, str]:
    pid, start_time = command_id.removeprefix(_COMMAND_PREFIX).split("-")
    return int(pid), start_time


class LocalRunner:
    """Runs the bootstrap here, against whatever AWS endpoint ``env`` points the aws CLI at.

    The bootstrap runs in a new session, so it outlives the worker that started it; a
    state file per run lets a restarted worker ``find`` it again.

    Args:
        env: The bootstrap's whole environment: PATH (with the ``aws`` CLI and python3),
            AWS_ENDPOINT_URL, the linked account's keys and AWS_DEFAULT_REGION.
        state_dir: Where the per-run state files and the bootstrap's own output go.
        s3_client: Client for the account the run writes to (reads the exit-code marker).
        backoff: Delays between polls in ``wait``.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        state_dir: Path,
        s3_client: Any,
        backoff: Backoff = Backoff(first=0.1, factor=1.5, cap=1.0),
    ) -> None:
        self.env = dict(env)
        self.state_dir = state_dir
        self.s3_client = s3_client
        self.backoff = backoff
        # Popen objects of the bootstraps this instance started, to reap them (no zombies).
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, spec: RunSpec) -> Execution:
        """Start the bootstrap for ``spec``, or return the execution already started for it.

        Args:
            spec: The run to execute.

        Returns:
            ``Execution("local-<pid>-<start time>", None)``; the start time keeps a recycled
            process id from passing for this run's bootstrap.
        """
        if existing := self.find(spec.execution_key):
            logger.info("run %s already started as %s", spec.run_id, existing.command_id)
            return existing
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self._path(spec.execution_key, ".bootstrap.log"), "ab") as output:
            process = subprocess.Popen(
                ["bash", "-c", render_bootstrap(spec)],
                env=self.env,
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes[process.pid] = process
        # Our child, not yet reaped: its /proc entry exists even if it has already exited.
        _, start_time = _proc_stat(process.pid) or ("", "")
        execution = Execution(f"{_COMMAND_PREFIX}{process.pid}-{start_time}", None)
        state_file = self._path(spec.execution_key, ".json")
        temporary = state_file.with_suffix(".tmp")
        state = {"run_id": spec.run_id, "command_id": execution.command_id}
        temporary.write_text(json.dumps(state))
        os.replace(temporary, state_file)
        logger.info("run %s started locally as %s", spec.run_id, execution.command_id)
        return execution

    def find(self, run_id: str) -> Execution | None:
        """The execution started for ``run_id`` (a spec's ``execution_key``) by any
        LocalRunner with this ``state_dir``."""
        try:
            state = json.loads(self._path(run_id, ".json").read_text())
        except FileNotFoundError:
            return None
        return Execution(state["command_id"], None)

    def status(self, execution: Execution, spec: RunSpec) -> ExecutionStatus:
        """Final state from the S3 marker; otherwise running while the bootstrap lives.

        Args:
            execution: As returned by ``start`` or ``find``.
            spec: The run it executes.
        """
        # Liveness first: the marker is written before the bootstrap exits, so a bootstrap
        # seen dead here has either written its marker already or never will.
        alive = self._alive(execution)
        if (final := read_marker(self.s3_client, spec)) is not None:
            return final
        if alive:
            return ExecutionStatus(ExecutionState.RUNNING)
        detail = "the bootstrap process ended without an exit-code marker"
        output = self._bootstrap_output(spec.execution_key)
        return ExecutionStatus(
            ExecutionState.FAILED, None, f"{detail}: {output}" if output else detail
        )

    def stop(self, execution: Execution, spec: RunSpec) -> None:
        """Kill the run's script and its children (the bootstrap then reports ``cancelled``).

        Args:
            execution: As returned by ``start`` or ``find``.
            spec: The run it executes.
        """
        result = subprocess.run(
            ["bash", "-c", render_kill(spec.run_id)],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_KILL_TIMEOUT_SECONDS,
            check=False,
        )
        logger.info(
            "run %s (%s) stopped: %s",
            spec.run_id,
            execution.command_id,
            (result.stdout + result.stderr).strip() or "process group signalled",
        )

    def wait(
        self, execution: Execution, spec: RunSpec, *, timeout: float | None = None
    ) -> ExecutionStatus:
        """Poll ``status`` until the execution is finished (see ``wait_for_execution``)."""
        return wait_for_execution(self, execution, spec, timeout=timeout)

    def _alive(self, execution: Execution) -> bool:
        pid, start_time = _parse_command_id(execution.command_id)
        if (process := self._processes.get(pid)) is not None:
            return process.poll() is None
        stat = _proc_stat(pid)
        # A zombie has exited; a different start time means the pid was recycled.
        return stat is not None and stat[0] != "Z" and stat[1] == start_time

    def _bootstrap_output(self, run_id: str) -> str:
        try:
            text = self._path(run_id, ".bootstrap.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[-_DETAIL_TAIL_CHARS:].strip()

    def _path(self, run_id: str, suffix: str) -> Path:
        if not RUN_ID_PATTERN.fullmatch(run_id):
            raise InvalidInputError("run_id", f"run id {run_id!r} must be a uuid.")
        return self.state_dir / f"{run_id}{suffix}"
