"""How long a run's bootstrap may take, inside SSM's 48-hour bound: the shared arithmetic.

A bootstrap spends time before its script (downloading it) and after it (the script's
``timeout --kill-after``, the final log, the outputs, the exit-code marker). SSM's
``executionTimeout`` and the worker's watch must both cover all of it, or a script that
succeeded just inside its timeout would be cut off while uploading and reported
``timed_out``. So:

- the bootstrap gives the outputs upload at most :data:`UPLOAD_GRACE_SECONDS` (a slower
  upload fails the run with "outputs could not be uploaded", never ``timed_out``);
- a command's ``executionTimeout`` is :func:`execution_timeout_seconds` (the script's
  timeout plus :data:`BOOTSTRAP_MARGIN_SECONDS`);
- a pipeline timeout is at most :data:`MAX_PIPELINE_TIMEOUT_SECONDS`, so that sum never
  passes :data:`SSM_MAX_EXECUTION_TIMEOUT_SECONDS` (refused above, with the limit named).
"""

from __future__ import annotations

__all__ = [
    "BOOTSTRAP_MARGIN_SECONDS",
    "BOOTSTRAP_OVERHEAD_SECONDS",
    "KILL_AFTER_SECONDS",
    "MAX_PIPELINE_TIMEOUT_SECONDS",
    "SSM_MAX_EXECUTION_TIMEOUT_SECONDS",
    "UPLOAD_GRACE_SECONDS",
    "execution_timeout_seconds",
]

# AWS-RunShellScript's executionTimeout maximum: 48 hours.
SSM_MAX_EXECUTION_TIMEOUT_SECONDS = 172_800
# The longest the bootstrap lets the outputs upload (and the final log) take after the script.
UPLOAD_GRACE_SECONDS = 600
# SIGKILL follows SIGTERM this long after a script's timeout (``timeout --kill-after``).
KILL_AFTER_SECONDS = 10
# Downloading the script, the kill-after wait and writing the marker: every step but the upload.
BOOTSTRAP_OVERHEAD_SECONDS = 290
# What a bootstrap needs beyond its script's timeout.
BOOTSTRAP_MARGIN_SECONDS = UPLOAD_GRACE_SECONDS + BOOTSTRAP_OVERHEAD_SECONDS
# The longest pipeline timeout whose bootstrap still fits SSM's limit (47 h 45 min).
MAX_PIPELINE_TIMEOUT_SECONDS = SSM_MAX_EXECUTION_TIMEOUT_SECONDS - BOOTSTRAP_MARGIN_SECONDS


def execution_timeout_seconds(timeout_seconds: int) -> int:
    """SSM's ``executionTimeout`` (and the worker's watch bound) for a script timeout.

    Never above :data:`SSM_MAX_EXECUTION_TIMEOUT_SECONDS`; a timeout that would need more
    is refused when the pipeline is saved (see ``MAX_PIPELINE_TIMEOUT_SECONDS``).
    """
    return min(timeout_seconds + BOOTSTRAP_MARGIN_SECONDS, SSM_MAX_EXECUTION_TIMEOUT_SECONDS)
