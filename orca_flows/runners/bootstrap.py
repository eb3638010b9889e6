"""Rendering the bootstrap (one bash script, the same on EC2 and locally) and its kill command."""

from __future__ import annotations

import shlex
from functools import cache
from importlib.resources import files
from string import Template

from orca_flows.domain.limits import KILL_AFTER_SECONDS, UPLOAD_GRACE_SECONDS
from orca_flows.domain.s3_layout import EXIT_CODE_KEY, LOG_KEY, OUTPUTS_PREFIX
from orca_flows.errors import InvalidInputError
from orca_flows.runners.spec import RUN_ID_PATTERN, RunSpec
from orca_flows.runners.transfers import LOG_CONTENT_TYPE, MARKER_CONTENT_TYPE, Transfers

__all__ = ["render_bootstrap", "render_kill"]

# Seconds the kill command waits after SIGTERM before it sends SIGKILL.
_KILL_GRACE_SECONDS = 5
# Where the bootstrap keeps its host-local state (claims, process group, stop flag) unless
# the runner names a directory: the same on every start on a host, whoever starts it.
_DEFAULT_HOST_DIR = '"${TMPDIR:-/tmp}/orca"'


def _host_dir(host_dir: str | None) -> str:
    return _DEFAULT_HOST_DIR if host_dir is None else shlex.quote(host_dir)


class _BashTemplate(Template):
    # "@@{name}" cannot be confused with bash's own "$name" and "${name}".
    delimiter = "@@"


@cache
def _template() -> _BashTemplate:
    text = files("orca_flows.runners").joinpath("bootstrap.sh.tmpl").read_text(encoding="utf-8")
    return _BashTemplate(text)


def render_bootstrap(
    spec: RunSpec, *, host_dir: str | None = None, transfers: Transfers | None = None
) -> str:
    """The bash script that runs ``spec``'s attempt once and reports to its S3 folder.

    Every value is shell-quoted, so a pipeline name or an environment value is passed
    through literally, whatever quotes, ``$(...)`` or backticks it holds. The script first
    claims ``spec.execution_key`` on its host (an atomic link); a second copy of the same
    attempt finds the claim, runs nothing, waits for the first copy and exits 75.

    Args:
        spec: The run to execute (already validated by ``RunSpec``).
        host_dir: The host-local state directory; ``$TMPDIR/orca`` (or ``/tmp/orca``) if
            ``None``. Every start of an attempt on a host must use the same one.
        transfers: Presigned URLs for the script, the log and the marker, sent with curl
            (``orca_flows.runners.transfers``); without them, or when one is refused, the
            AWS CLI does the transfer.

    Returns:
        The script text; it contains no credentials, and no endpoint except the
        presigned URLs' (each good for one operation on one object until it expires).
    """
    exports = "\n".join(
        f"    export {name}={shlex.quote(value)}" for name, value in spec.environment.items()
    )
    interval = f"{spec.log_interval_seconds:g}"
    return _template().substitute(
        run_id=shlex.quote(spec.run_id),
        execution_key=shlex.quote(spec.execution_key),
        orca_dir=_host_dir(host_dir),
        pipeline=shlex.quote(spec.pipeline),
        script_uri=shlex.quote(spec.script_uri),
        script_sha256=shlex.quote(spec.script_sha256),
        script_name=shlex.quote(spec.script_name),
        output_uri=shlex.quote(spec.attempt_uri),
        # The attempt's keys under its folder, from the one S3 layout.
        log_key=shlex.quote(LOG_KEY),
        outputs_prefix=shlex.quote(OUTPUTS_PREFIX),
        exit_code_key=shlex.quote(EXIT_CODE_KEY),
        timeout_seconds=shlex.quote(str(int(spec.timeout_seconds))),
        kill_after=shlex.quote(str(KILL_AFTER_SECONDS)),
        upload_grace=shlex.quote(str(UPLOAD_GRACE_SECONDS)),
        log_interval=shlex.quote(interval),
        script_get_url=shlex.quote(transfers.script_get if transfers else ""),
        log_put_url=shlex.quote(transfers.log_put if transfers else ""),
        marker_put_url=shlex.quote(transfers.marker_put if transfers else ""),
        log_content_type=shlex.quote(LOG_CONTENT_TYPE),
        marker_content_type=shlex.quote(MARKER_CONTENT_TYPE),
        interpreter=shlex.join(spec.interpreter),
        exports=exports,
    )


def render_kill(run_id: str, *, host_dir: str | None = None) -> str:
    """A bash script that kills run ``run_id``'s script and everything it spawned.

    It marks the run as stopped on the host (so a bootstrap that has not started the
    script yet never does), then sends SIGTERM to the script's process group, waits up
    to 5 seconds and sends SIGKILL to what is left. It refuses to signal a group whose
    leader is not this run's (a recycled process id).

    Args:
        run_id: The run to stop.
        host_dir: The host-local state directory its bootstrap was given.
    """
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise InvalidInputError("run_id", f"run id {run_id!r} must be a uuid.")
    quoted = shlex.quote(run_id)
    ticks = _KILL_GRACE_SECONDS * 10
    return f"""#!/bin/bash
set -u
run_id={quoted}
run_dir={_host_dir(host_dir)}/"$run_id"
mkdir -p -- "$run_dir" && : >"$run_dir/cancelled"
pgid=$(cat -- "$run_dir/pgid" 2>/dev/null || true)
case "$pgid" in
    '' | *[!0-9]*)
        echo "orca: run $run_id has no running script on this host"
        exit 0 ;;
esac
if [ -r "/proc/$pgid/environ" ] \\
    && ! tr '\\0' '\\n' <"/proc/$pgid/environ" | grep -qxF "ORCA_RUN_ID=$run_id"; then
    echo "orca: process group $pgid is not run $run_id's any more; nothing killed"
    exit 0
fi
kill -TERM -- "-$pgid" 2>/dev/null || exit 0
for _ in $(seq {ticks}); do
    kill -0 -- "-$pgid" 2>/dev/null || exit 0
    sleep 0.1
done
kill -KILL -- "-$pgid" 2>/dev/null
echo "orca: run $run_id's processes did not stop within {_KILL_GRACE_SECONDS}s and were killed"
exit 0
"""
