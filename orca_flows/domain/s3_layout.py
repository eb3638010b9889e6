"""Every S3 key Orca reads or writes in a linked bucket, and ``s3://`` URIs.

The layout, all under :data:`ORCA_PREFIX` (the only prefix the link kit's role may use)::

    orca/<user id>/                                   user_prefix
        <pipeline>/scripts/v<n>/<file>                script_key (immutable versions)
        <pipeline>/runs/<run id>/                     run_prefix (``runs.s3_prefix``)
            attempts/<n>/                             attempt_prefix (n = ``runs.attempt``)
                log                                   LOG_KEY (live while the attempt goes)
                outputs/<name>                        OUTPUTS_PREFIX (ORCA_OUTPUT_DIR)
                exit-code                             EXIT_CODE_KEY (the bootstrap's marker)
        <pipeline>/ssm/<command id>/...               ssm_output_prefix (SSM's own copy)
        _orca-check/<uuid>                            probe_key (`orca link check`)

Each attempt has its own folder, so a late marker of attempt 1 can never finish attempt
2 and a retry never overwrites the log of the attempt before it. Attempts count from 1
(the claim sets ``runs.attempt`` to 1, each retry adds one); the run's ``log_uri`` and
``outputs`` are its last attempt's, the one whose result the run took.

Keys "relative" here are relative to the user prefix, as a user-confined
``PrefixedBucket`` takes them. ``_orca-check`` cannot clash with a pipeline: pipeline
names start with a letter or digit.
"""

from __future__ import annotations

from orca_flows.errors import InvalidInputError

__all__ = [
    "EXIT_CODE_KEY",
    "LOG_KEY",
    "ORCA_PREFIX",
    "OUTPUTS_PREFIX",
    "attempt_prefix",
    "exit_code_key",
    "log_key",
    "output_key",
    "outputs_prefix",
    "pipeline_prefix",
    "probe_key",
    "probe_relative_key",
    "run_prefix",
    "run_relative_prefix",
    "s3_uri",
    "script_key",
    "script_relative_key",
    "split_s3_uri",
    "ssm_output_prefix",
    "user_prefix",
]

ORCA_PREFIX = "orca/"
# An attempt's objects, relative to its attempt prefix (the bootstrap writes exactly these).
LOG_KEY = "log"
OUTPUTS_PREFIX = "outputs/"
EXIT_CODE_KEY = "exit-code"
_ATTEMPTS_FOLDER = "attempts/"
_PROBE_FOLDER = "_orca-check/"


def user_prefix(user_id: int) -> str:
    """Where everything of one user lives: ``orca/<user id>/``."""
    return f"{ORCA_PREFIX}{user_id}/"


def pipeline_prefix(user_id: int, pipeline: str) -> str:
    """Everything of one pipeline: ``orca/<user id>/<pipeline>/``."""
    return f"{user_prefix(user_id)}{pipeline}/"


def script_relative_key(pipeline: str, version: int, filename: str) -> str:
    """A script version's key under the user prefix: ``<pipeline>/scripts/v<n>/<file>``."""
    return f"{pipeline}/scripts/v{version}/{filename}"


def script_key(user_id: int, pipeline: str, version: int, filename: str) -> str:
    """A script version's full key: ``orca/<user>/<pipeline>/scripts/v<n>/<file>``."""
    return user_prefix(user_id) + script_relative_key(pipeline, version, filename)


def run_relative_prefix(pipeline: str, run_id: str) -> str:
    """A run's prefix under the user prefix: ``<pipeline>/runs/<run id>/``.

    Its attempts' folders (see ``attempt_prefix``) hold the log, outputs and marker.
    """
    return f"{pipeline}/runs/{run_id}/"


def attempt_prefix(run_prefix: str, attempt: int) -> str:
    """Attempt ``attempt``'s folder under ``run_prefix`` (full or relative):
    ``<run prefix>attempts/<n>/``, the one place that decides where an attempt's log,
    outputs and marker go.

    ``attempt`` 0 (a run not claimed yet) names attempt 1's folder, where its first log
    will be.
    """
    return f"{run_prefix}{_ATTEMPTS_FOLDER}{max(attempt, 1)}/"


def run_prefix(user_id: int, pipeline: str, run_id: str) -> str:
    """A run's full prefix: ``orca/<user>/<pipeline>/runs/<run id>/`` (``runs.s3_prefix``)."""
    return user_prefix(user_id) + run_relative_prefix(pipeline, run_id)


def log_key(attempt_prefix: str) -> str:
    """The attempt's log under ``attempt_prefix`` (a full or relative attempt prefix)."""
    return attempt_prefix + LOG_KEY


def outputs_prefix(attempt_prefix: str) -> str:
    """The attempt's outputs folder under ``attempt_prefix``."""
    return attempt_prefix + OUTPUTS_PREFIX


def output_key(attempt_prefix: str, name: str) -> str:
    """Output file ``name`` (relative to the outputs folder) of the attempt at
    ``attempt_prefix``."""
    return outputs_prefix(attempt_prefix) + name


def exit_code_key(attempt_prefix: str) -> str:
    """The bootstrap's ``exit-code`` marker under ``attempt_prefix``."""
    return attempt_prefix + EXIT_CODE_KEY


def ssm_output_prefix(user_id: int, pipeline: str) -> str:
    """``OutputS3KeyPrefix`` for SSM's own copy of the bootstrap's output (no trailing ``/``;
    SSM appends ``/<command id>/<instance id>/...``)."""
    return f"{pipeline_prefix(user_id, pipeline)}ssm"


def probe_relative_key(probe_id: str) -> str:
    """The object `orca link check` writes, reads and deletes, under the user prefix."""
    return f"{_PROBE_FOLDER}{probe_id}"


def probe_key(user_id: int, probe_id: str) -> str:
    """The link-check probe's full key."""
    return user_prefix(user_id) + probe_relative_key(probe_id)


def s3_uri(bucket: str, key: str = "") -> str:
    """``s3://<bucket>/<key>``."""
    return f"s3://{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` → ``("bucket", "some/key")``.

    Raises:
        InvalidInputError: On field ``uri`` when ``uri`` is not ``s3://<bucket>/<key>``.
    """
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise InvalidInputError("uri", f"{uri!r} is not an s3://bucket/key URI.")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key
