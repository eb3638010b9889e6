"""Why a run could not start (or be watched), and whether trying again may help.

An error while a worker starts a run is either *transient* (throttling, a 5xx answer, a
dropped connection, Prefect briefly down): the worker waits and tries again, keeping its
lease, and the run never fails for it; or *permanent* (a role that refuses Orca, an
instance that is unknown, untagged or offline, access denied, the script missing, a
refusal of Orca's own): the attempt fails with a summary naming the cause and the fix,
and after the pipeline's retries the run ends ``failed`` and its ordering key moves on.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
)

from orca_flows.errors import AwsError, OrcaError, PrefectUnavailableError

__all__ = ["cannot_start", "is_transient"]

# Answers botocore's standard mode retries too; seen here once its attempts ran out.
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ExpiredToken",  # the refreshing session assumes the role again on the next call
        "ExpiredTokenException",
        "RequestExpired",
    }
)

_ROLE_FIX = (
    "check the linked role's permissions and trust with `orca link check <link>`; if its "
    "stack is older than the link or its ExternalId changed, `orca link update <link>` "
    "issues a new ExternalId and prints the stack update to deploy"
)
# What a permanent AWS error code means for a run, and what to do about it.
_FIXES: dict[str, str] = {
    "InvalidInstanceId": "the target instance is unknown to SSM, not running, or its SSM "
    "agent is offline: check the pipeline's target (`orca pipeline show`), that the "
    "instance runs with an instance profile allowing SSM, and that it carries the link's "
    "tag",
    "InvalidTarget": "the pipeline's target matches no instance SSM manages: check the "
    "target and the instances' tags",
    "NoSuchKey": "the script version is missing from S3: upload the script again "
    "(`orca pipeline upload`)",
    "404": "the script version is missing from S3: upload the script again "
    "(`orca pipeline upload`)",
    "NoSuchBucket": "the link's bucket does not exist: re-create the link's stack "
    "(`orca link kit`) or update the link",
    "InvalidDocument": "SSM does not offer AWS-RunShellScript in this region: check the "
    "link's region",
}


def is_transient(error: BaseException) -> bool:
    """Whether waiting and trying again may fix ``error`` (throttling, 5xx, network)."""
    if isinstance(error, PrefectUnavailableError):
        return True
    if isinstance(error, AwsError):
        return error.code in _TRANSIENT_CODES
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in _TRANSIENT_CODES or int(status) >= 500
    return isinstance(error, ConnectionError | HTTPClientError)


def cannot_start(error: BaseException) -> str:
    """A permanent start error as the run's error summary: the cause, then the fix."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        message = str(details.get("Message", "")).rstrip(".")
        cause = f"AWS refused {error.operation_name} ({code}{': ' + message if message else ''})"
        if code in _FIXES:
            return f"the run could not start: {cause}; {_FIXES[code]}."
        if code.startswith(("AccessDenied", "Unauthorized")) or code in {
            "AuthorizationError",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "Forbidden",
            "403",
        }:
            return (
                f"the run could not start: {cause}; the link's role may not do this, or "
                f"the target instance lacks the link's tag: {_ROLE_FIX}."
            )
        return f"the run could not start: {cause}; {_ROLE_FIX}."
    if isinstance(error, OrcaError):
        return f"the run could not start: {error}"
    if isinstance(error, BotoCoreError):
        return f"the run could not start: {error}; {_ROLE_FIX}."
    return (
        f"the run could not start: unexpected {type(error).__name__}: {error}; "
        "see the worker's log."
    )
