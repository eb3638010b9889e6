"""What a runner is asked to run (RunSpec), what it started (Execution) and how that went."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from orca_flows.domain.environment import check_environment
from orca_flows.domain.s3_layout import (
    EXIT_CODE_KEY,
    LOG_KEY,
    OUTPUTS_PREFIX,
    attempt_prefix,
    exit_code_key,
    split_s3_uri,
)
from orca_flows.domain.states import ExecutionState
from orca_flows.errors import InvalidInputError

__all__ = [
    "EXIT_CODE_KEY",
    "LOG_KEY",
    "OUTPUTS_PREFIX",
    "RUN_ID_PATTERN",
    "Execution",
    "ExecutionStatus",
    "RunSpec",
    "parse_marker",
    "read_marker",
    "split_s3_uri",
]

# EXIT_CODE_KEY, LOG_KEY, OUTPUTS_PREFIX and split_s3_uri are the domain's S3 layout
# (orca_flows.domain.s3_layout), named here too as part of the runner API: they are what
# the bootstrap writes under RunSpec.attempt_uri.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_INTERPRETERS = {".py": ("python3", "-u"), ".sh": ("bash",)}
# What the bootstrap's "error" codes mean, in words a user can act on.
_MARKER_ERRORS = {
    "script-download-failed": "the script could not be downloaded from S3; see the log",
    "sha256-mismatch": "the script in S3 does not match its recorded sha256, so it was not run",
    "interpreter-missing": "the host lacks the script's interpreter; see the log",
    "outputs-upload-failed": "the files in ORCA_OUTPUT_DIR could not be uploaded; see the log",
    "stopped-before-start": "the run was stopped before its script started",
}


def _interpreter_for(script_name: str) -> tuple[str, ...]:
    suffix = script_name[script_name.rfind(".") :] if "." in script_name else ""
    if "/" in script_name or suffix not in _INTERPRETERS:
        raise InvalidInputError(
            "script_name", f"{script_name!r} must be a file name ending in .py or .sh."
        )
    return _INTERPRETERS[suffix]


@dataclass(frozen=True)
class RunSpec:
    """Everything the bootstrap needs to run one script once; checked on construction.

    Attributes:
        run_id: The run's id (a uuid4 string).
        pipeline: The pipeline's name, passed to the script as ORCA_PIPELINE.
        script_uri: ``s3://`` URI of the script version to run.
        script_sha256: Hex sha256 the downloaded script must have.
        script_name: File name of the script; ``.py`` runs with python3, ``.sh`` with bash.
        output_uri: The run's ``s3://`` prefix (ending with ``/``, ``runs.s3_prefix``); each
            attempt writes its log, outputs and marker in its own folder under it
            (``attempt_uri``).
        timeout_seconds: Longest the script may run before it is killed.
        environment: Extra, non-secret environment variables for the script.
        log_interval_seconds: How often the live log is uploaded while the script runs.
        attempt: Which attempt of the run this is, from 1 (``runs.attempt``; a retry
            re-runs the same run as the next attempt).
    """

    run_id: str
    pipeline: str
    script_uri: str
    script_sha256: str
    script_name: str
    output_uri: str
    timeout_seconds: int
    environment: dict[str, str] = field(default_factory=dict)
    log_interval_seconds: float = 2.0
    attempt: int = 1

    @property
    def execution_key(self) -> str:
        """What identifies this attempt's execution: ``<run id>-a<attempt>``.

        Deterministic, so a worker that died at any point of a start finds what it
        started: the SSM command's Comment (at most 100 characters; this is at most 75),
        the local runner's execution record and the bootstrap's claim on its host. Per
        attempt, so resuming never mistakes a failed attempt's command for the next one.
        """
        return f"{self.run_id}-a{self.attempt}"

    @property
    def attempt_uri(self) -> str:
        """``s3://`` folder of this attempt: ``<output_uri>attempts/<n>/``, receiving its
        log, outputs and exit-code marker."""
        return attempt_prefix(self.output_uri, self.attempt)

    def __post_init__(self) -> None:
        if not RUN_ID_PATTERN.fullmatch(self.run_id):
            raise InvalidInputError("run_id", f"run id {self.run_id!r} must be a uuid.")
        split_s3_uri(self.script_uri)
        if not self.output_uri.endswith("/"):
            raise InvalidInputError("output_uri", f"{self.output_uri!r} must end with '/'.")
        split_s3_uri(self.output_uri)
        if not _SHA256.fullmatch(self.script_sha256):
            raise InvalidInputError(
                "script_sha256", f"{self.script_sha256!r} is not a lowercase hex sha256."
            )
        _interpreter_for(self.script_name)
        if not 1 <= self.attempt < 10**9:
            raise InvalidInputError("attempt", f"attempt {self.attempt} must count from 1.")
        if self.timeout_seconds < 1 or self.log_interval_seconds <= 0:
            raise InvalidInputError(
                "timeout_seconds", "the timeout and the log interval must be positive."
            )
        check_environment(self.environment)
        if "\0" in self.pipeline:
            raise InvalidInputError("pipeline", "a pipeline name cannot contain a NUL byte.")

    @property
    def interpreter(self) -> tuple[str, ...]:
        """The command that runs the script (python3 unbuffered, so the live log is live)."""
        return _interpreter_for(self.script_name)


@dataclass(frozen=True)
class Execution:
    """A started bootstrap; the worker stores it at once so a restarted worker can resume.

    Attributes:
        command_id: SSM command id, or ``local-<pid>-<start time>`` for the local runner.
        instance_id: The EC2 instance running it (``None`` for the local runner).
    """

    command_id: str
    instance_id: str | None


@dataclass(frozen=True)
class ExecutionStatus:
    """Where an execution stands.

    Attributes:
        state: ``pending`` and ``running`` are transient; the others are final.
        exit_code: The script's exit code once known (124 after a timeout).
        detail: Why, in words, when the state alone does not say it.
    """

    state: ExecutionState
    exit_code: int | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        # Accept the plain value too (runners map SSM's statuses from tables of strings).
        object.__setattr__(self, "state", ExecutionState(self.state))

    @property
    def finished(self) -> bool:
        """Whether the execution has reached a final state."""
        return self.state.finished


def parse_marker(body: bytes) -> ExecutionStatus:
    """The final status recorded in an ``exit-code`` marker written by the bootstrap."""
    marker: dict[str, Any] = json.loads(body)
    exit_code = int(marker["exit_code"])
    detail = _MARKER_ERRORS.get(marker.get("error") or "", "")
    if marker.get("cancelled"):
        return ExecutionStatus(ExecutionState.CANCELLED, exit_code, detail or "the run was stopped")
    if marker.get("timed_out"):
        return ExecutionStatus(
            ExecutionState.TIMED_OUT, exit_code, "the script ran past its timeout"
        )
    if exit_code == 0:
        return ExecutionStatus(ExecutionState.SUCCEEDED, 0, detail)
    return ExecutionStatus(
        ExecutionState.FAILED, exit_code, detail or f"the script exited with {exit_code}"
    )


def read_marker(s3_client: Any, spec: RunSpec) -> ExecutionStatus | None:
    """The attempt's final status from its S3 ``exit-code`` marker, or ``None`` while absent.

    Only ``spec``'s attempt's own marker counts: an earlier attempt's, however late it
    was written, lives in that attempt's folder.
    """
    bucket, prefix = split_s3_uri(spec.attempt_uri)
    try:
        response = s3_client.get_object(Bucket=bucket, Key=exit_code_key(prefix))
    except s3_client.exceptions.NoSuchKey:
        return None
    return parse_marker(response["Body"].read())
