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
from orca_flows.runners.transfers import presign_transfers

__all__ = ["LocalRunner"]

logger = get_logger(__name__)

_COMMAND_PREFIX = "local-"
# Each execution gets a fresh HOME (the runner's env has none; never ORCA_HOME), removed
# when the bootstrap exits. A prefix of the bootstrap, not a wrapper process, so the
# process started is still the bootstrap itself (which sets no EXIT trap of its own).
_FRESH_HOME = (
    'orca_home=$(mktemp -d "${TMPDIR:-/tmp}/orca-home.XXXXXXXX") || exit 1\n'
    "trap 'rm -rf -- \"$orca_home\"' EXIT\n"
    'export HOME="$orca_home"\n'
)
# The execution of an attempt found finished with no local trace left: no process to watch.
_NO_PROCESS = f"{_COMMAND_PREFIX}0-0"
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
        state_dir: Where the per-run state files and the bootstrap's own output go, and
            (under ``host``) the bootstrap's claims, process groups and stop flags.
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
        self.host_dir = state_dir / "host"
        # Popen objects of the bootstraps this instance started, to reap them (no zombies).
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, spec: RunSpec) -> Execution:
        """Start the bootstrap for ``spec``'s attempt, or return the execution already
        started for it.

        Exactly once whatever kills the worker when: an execution record is created
        (``O_EXCL``) before anything is spawned and completed with the process after;
        the bootstrap itself claims the attempt on this host before it runs anything, so
        a second bootstrap of the same attempt (the successor of a worker that died
        between spawning and recording) runs nothing and just follows the first one.

        Args:
            spec: The run to execute.

        Returns:
            ``Execution("local-<pid>-<start time>", None)``; the start time keeps a recycled
            process id from passing for this run's bootstrap.
        """
        key = spec.execution_key
        if existing := self.find(key):
            logger.info("run %s already started as %s", spec.run_id, existing.command_id)
            return existing
        if self.finished(spec) is not None:
            # Over already, its local records gone: report the marker, never rerun.
            logger.info("run %s attempt %s already finished", spec.run_id, spec.attempt)
            return Execution(_NO_PROCESS, None)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        record = self._path(key, ".json")
        try:
            descriptor = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            # A start that died before recording its process; the bootstrap's claim
            # decides which copy runs the script.
            logger.info("run %s: resuming an interrupted start", spec.run_id)
        else:
            with os.fdopen(descriptor, "w") as intent:
                json.dump({"run_id": spec.run_id, "command_id": None}, intent)
        execution = self._spawn(spec)
        self._record(record, spec, execution)
        logger.info("run %s started locally as %s", spec.run_id, execution.command_id)
        return execution

    def _bootstrap(self, spec: RunSpec) -> str:
        transfers = presign_transfers(self.s3_client, spec)
        return render_bootstrap(spec, host_dir=str(self.host_dir), transfers=transfers)

    def _spawn(self, spec: RunSpec) -> Execution:
        """Start the bootstrap in a session of its own (it outlives the worker)."""
        with open(self._path(spec.execution_key, ".bootstrap.log"), "ab") as output:
            process = subprocess.Popen(
                ["bash", "-c", _FRESH_HOME + self._bootstrap(spec)],
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
        return Execution(f"{_COMMAND_PREFIX}{process.pid}-{start_time}", None)

    @staticmethod
    def _record(record: Path, spec: RunSpec, execution: Execution) -> None:
        """Complete the execution record with the process (atomically: whole or not at all)."""
        temporary = record.with_name(f"{record.name}.{os.getpid()}.tmp")
        temporary.write_text(
            json.dumps({"run_id": spec.run_id, "command_id": execution.command_id})
        )
        os.replace(temporary, record)

    def find(self, execution_key: str) -> Execution | None:
        """The execution started for ``execution_key`` (a spec's) by any LocalRunner with
        this ``state_dir``.

        A record without a process (its starter died mid-start) is answered by the
        bootstrap's claim on this host: the copy that runs the script. Neither means
        nothing runs it, and starting is safe (the claim keeps it to one copy).
        """
        try:
            state = json.loads(self._path(execution_key, ".json").read_text() or "{}")
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:  # the intent, cut short by a kill
            state = {}
        if state.get("command_id"):
            return Execution(state["command_id"], None)
        try:
            owner = (self.host_dir / "claims" / execution_key).read_text().split()
        except FileNotFoundError:
            return None
        pid, start_time = (owner + ["", ""])[:2]
        return Execution(f"{_COMMAND_PREFIX}{pid}-{start_time or 'unknown'}", None)

    def finished(self, spec: RunSpec) -> ExecutionStatus | None:
        """The attempt's final status from its exit-code marker in S3; ``None`` until then."""
        return read_marker(self.s3_client, spec)

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
            ["bash", "-c", render_kill(spec.run_id, host_dir=str(self.host_dir))],
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
