"""Presigned URLs for the bootstrap's three fixed transfers, so a run needs no AWS CLI start.

Every run fetches its script and writes its log and its exit-code marker; with the AWS CLI
each of those is a Python start (~0.5-0.8 s with CLI v1), most of a no-op run's cost.
The worker signs a GET for the script and a PUT for the log and for the marker (local
signing with the link's credentials: no network call) and the bootstrap sends them with
`curl` (milliseconds). Why it holds on EC2 and through SSM: `curl` ships with Amazon Linux
and Ubuntu AMIs; the instance reaches S3 exactly as the CLI would; the URLs travel in the
SSM command's parameters like the rest of the bootstrap, and each one allows one
operation on one object of the run's own attempt, until it expires.

A URL signed with assumed-role credentials stops working when that role session ends,
however long it was signed for: between ~15 minutes (botocore renews the session 15
minutes before its end) and the link's ``session_duration_seconds``; a long run's final
log and marker would then be refused. The URLs are bearer capabilities (one operation on
one object each, until they expire), visible to whoever reads the SSM command. So every transfer falls back to the
AWS CLI with the instance's own credentials when `curl` is missing or the URL is refused:
short runs pay no CLI start, long runs pay one or two, none can lose its report. Outputs
(names not known in advance) always go up with the CLI, and only when there are some.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orca_flows.domain.limits import execution_timeout_seconds
from orca_flows.domain.s3_layout import EXIT_CODE_KEY, LOG_KEY, split_s3_uri
from orca_flows.logs import get_logger
from orca_flows.runners.spec import RunSpec

__all__ = ["LOG_CONTENT_TYPE", "MARKER_CONTENT_TYPE", "Transfers", "presign_transfers"]

logger = get_logger(__name__)

LOG_CONTENT_TYPE = "text/plain; charset=utf-8"
MARKER_CONTENT_TYPE = "application/json"
# SigV4's longest presigned lifetime.
_MAX_EXPIRY_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Transfers:
    """The attempt's presigned URLs: GET the script, PUT the log, PUT the marker."""

    script_get: str
    log_put: str
    marker_put: str


def presign_transfers(s3_client: Any, spec: RunSpec) -> Transfers | None:
    """Sign the attempt's three transfers for as long as it may run (its SSM timeout).

    Returns:
        The URLs; None when they cannot be signed (no client, no credentials yet): the
        bootstrap then uses the AWS CLI for everything, as before.
    """
    if s3_client is None:  # a runner made without one (it never reads the bucket)
        return None
    expires = min(execution_timeout_seconds(spec.timeout_seconds), _MAX_EXPIRY_SECONDS)
    script_bucket, script_key = split_s3_uri(spec.script_uri)
    bucket, attempt_key = split_s3_uri(spec.attempt_uri)

    def put(key: str, content_type: str) -> str:
        params = {"Bucket": bucket, "Key": attempt_key + key, "ContentType": content_type}
        url: str = s3_client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)
        return url

    try:
        script = s3_client.generate_presigned_url(
            "get_object", Params={"Bucket": script_bucket, "Key": script_key}, ExpiresIn=expires
        )
        return Transfers(
            script, put(LOG_KEY, LOG_CONTENT_TYPE), put(EXIT_CODE_KEY, MARKER_CONTENT_TYPE)
        )
    except (BotoCoreError, ClientError) as error:  # credentials not available: CLI only
        logger.warning(
            "run %s: transfers not presigned (%s); the AWS CLI does them", spec.run_id, error
        )
        return None
