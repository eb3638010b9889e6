"""The rules of how a pipeline runs: which runner, how long, how many retries.

Each ``check_*`` function returns the value or raises ``InvalidInputError`` with a message
that says what to do (re-exported by :mod:`orca_flows.domain.rules`, where every other
rule lives).

Decisions:

- Timeouts: 1 to :data:`MAX_PIPELINE_TIMEOUT_SECONDS` (47 h 45 min). SSM's
  ``AWS-RunShellScript`` runs a command for at most 48 hours (172800 s), and the bootstrap
  needs part of that beyond the script's own timeout to fetch the script and upload the
  log, the outputs and the exit-code marker (:mod:`orca_flows.domain.limits`); a longer
  timeout would let SSM cut off a script that succeeded and report it ``timed_out``.
- The local runner runs a tenant's script on Orca's own host as the worker's OS user
  (where Orca's database, settings and instance credentials are), so it is allowed only
  on a sandbox link, or on any link of a trusted single-user install whose operator set
  ``ORCA_ALLOW_LOCAL_RUNNER=true`` (docs/operations.md, "The local runner"). The same
  rule is checked when a pipeline is saved and again when a worker starts a run.
"""

from __future__ import annotations

from orca_flows.domain.limits import (
    MAX_PIPELINE_TIMEOUT_SECONDS,
    SSM_MAX_EXECUTION_TIMEOUT_SECONDS,
)
from orca_flows.errors import InvalidInputError

__all__ = [
    "MAX_PIPELINE_TIMEOUT_SECONDS",
    "MAX_RETRIES",
    "MAX_TIMEOUT_SECONDS",
    "MIN_TIMEOUT_SECONDS",
    "RUNNERS",
    "check_local_runner_allowed",
    "check_retries",
    "check_runner",
    "check_timeout",
]

MIN_TIMEOUT_SECONDS = 1
# SSM's own limit on a command (what the SSM runner caps executionTimeout at); a pipeline's
# timeout stays below it by the bootstrap's margin, MAX_PIPELINE_TIMEOUT_SECONDS.
MAX_TIMEOUT_SECONDS = SSM_MAX_EXECUTION_TIMEOUT_SECONDS
MAX_RETRIES = 10
RUNNERS = ("ssm", "local")


def check_timeout(seconds: int, *, field: str = "timeout") -> int:
    """A script timeout: 1 to :data:`MAX_PIPELINE_TIMEOUT_SECONDS` seconds.

    Raises:
        InvalidInputError: On ``field``, naming the limit and why it is there.
    """
    if seconds < MIN_TIMEOUT_SECONDS:
        raise InvalidInputError(
            field, f"timeout must be a positive number of seconds, not {seconds}."
        )
    if seconds > MAX_PIPELINE_TIMEOUT_SECONDS:
        margin = SSM_MAX_EXECUTION_TIMEOUT_SECONDS - MAX_PIPELINE_TIMEOUT_SECONDS
        raise InvalidInputError(
            field,
            f"timeout must be at most {MAX_PIPELINE_TIMEOUT_SECONDS} seconds, not {seconds}: "
            f"SSM runs a command for at most 48 hours ({SSM_MAX_EXECUTION_TIMEOUT_SECONDS} s) "
            f"and Orca keeps {margin} s of them to fetch the script and upload its log and "
            "outputs. Split a longer job into pipelines that share an ordering key.",
        )
    return seconds


def check_retries(retries: int) -> int:
    """Extra attempts after a failure: 0 to 10.

    Raises:
        InvalidInputError: On field ``retries``.
    """
    if not 0 <= retries <= MAX_RETRIES:
        raise InvalidInputError(
            "retries", f"retries must be between 0 and {MAX_RETRIES}, not {retries}."
        )
    return retries


def check_runner(runner: str) -> str:
    """``ssm`` or ``local``.

    Raises:
        InvalidInputError: On field ``runner``.
    """
    if runner not in RUNNERS:
        raise InvalidInputError(
            "runner", f"runner {runner!r} must be one of: {', '.join(RUNNERS)}."
        )
    return runner


def check_local_runner_allowed(
    runner: str, *, link_name: str, sandbox_link: bool, allow_local_runner: bool
) -> str:
    """``runner``, unless it is ``local`` on a link that may not run scripts on Orca's host.

    Args:
        runner: The pipeline's runner (already checked by :func:`check_runner`).
        link_name: The pipeline's link, for the message.
        sandbox_link: Whether that link is a sandbox link (``CloudLink.local``).
        allow_local_runner: The operator's ``ORCA_ALLOW_LOCAL_RUNNER`` setting.

    Raises:
        InvalidInputError: On field ``runner``, saying how to run the script instead.
    """
    if runner == "local" and not (sandbox_link or allow_local_runner):
        raise InvalidInputError(
            "runner",
            f"the local runner is not available on link {link_name!r}: it would run the "
            "script on Orca's own host, so it is only for sandbox links (`orca link create "
            "--local`) or a trusted single-user install whose operator set "
            "ORCA_ALLOW_LOCAL_RUNNER=true. Use the ssm runner with a target (--runner ssm "
            "--target i-…|tag:KEY=VALUE) to run it on your EC2 instances.",
        )
    return runner
