"""Every rule a value given to Orca must meet, once: names, accounts, ARNs, regions, targets.

Each ``check_*`` function returns the value (or what it parsed) or raises ``InvalidInputError``
with a message that says what to do; Prefect blocks re-raise that message as the
``ValueError`` pydantic expects. The ``*_PATTERN`` strings are the same rules for callers
that need a pattern (CloudFormation's ``AllowedPattern``), matched whole and ASCII-only.

Decisions (they settle rules that earlier copies disagreed on):

- Regions and partitions: one table, in :mod:`orca_flows.domain.regions` (offline, every
  partition); role ARNs are accepted in each partition it lists.
- ExternalIds: Orca issues and accepts from users 32 to 1224 characters
  (:data:`MIN_EXTERNAL_ID`: one nobody can guess); the credentials block accepts anything
  STS accepts (2 to 1224, :data:`STS_MIN_EXTERNAL_ID`), so a block document saved by hand
  or by an older Orca still loads. Both use the characters IAM allows.
- Targets: 1 to 50 instance ids (SendCommand's limit) or exactly one ``tag:KEY=VALUE``
  whose key and value follow the link kit's instance-tag rule: the key 1-128 and the value
  1-256 characters (SSM's instance filter refuses an empty value) of ASCII letters, digits
  and ``_.:/=+@-``, the value also spaces. A key cannot hold ``=`` in a target, which is
  split at its first ``=``.
- Runners, timeouts and retries: in :mod:`orca_flows.domain.runner_rules` (re-exported
  here), with who may use the local runner and why a timeout stays below SSM's 48 hours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from orca_flows.domain.regions import PARTITION_NAMES, partition_of
from orca_flows.domain.runner_rules import (
    MAX_PIPELINE_TIMEOUT_SECONDS,
    MAX_RETRIES,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    RUNNERS,
    check_local_runner_allowed,
    check_retries,
    check_runner,
    check_timeout,
)
from orca_flows.errors import InvalidInputError

__all__ = [
    "ACCOUNT_ID_PATTERN",
    "BUCKET_NAME_PATTERN",
    "CUSTOM_ORDERING_KEY_PATTERN",
    "EXTERNAL_ID_PATTERN",
    "INSTANCE_ID_PATTERN",
    "MAX_EXTERNAL_ID",
    "MAX_INSTANCE_IDS",
    "MAX_PIPELINE_TIMEOUT_SECONDS",
    "MAX_RETRIES",
    "MAX_TIMEOUT_SECONDS",
    "MIN_EXTERNAL_ID",
    "MIN_TIMEOUT_SECONDS",
    "NAMED_ORDERING_KEYS",
    "QUEUE_NAME_PATTERN",
    "RESOURCE_NAME_PATTERN",
    "ROLE_NAME_PATTERN",
    "ROLE_SESSION_NAME_PATTERN",
    "RUNNERS",
    "STS_MIN_EXTERNAL_ID",
    "TAG_KEY_PATTERN",
    "TAG_VALUE_PATTERN",
    "RoleArn",
    "check_account_id",
    "check_bucket_name",
    "check_external_id",
    "check_fifo_queue_url",
    "check_local_runner_allowed",
    "check_ordering_key",
    "check_queue_name",
    "check_region_in_role_partition",
    "check_resource_name",
    "check_retries",
    "check_role_session_name",
    "check_runner",
    "check_targets",
    "check_timeout",
    "parse_role_arn",
    "parse_targets",
    "role_arn",
]

RESOURCE_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"  # links and pipelines
ACCOUNT_ID_PATTERN = r"[0-9]{12}"
ROLE_NAME_PATTERN = r"[\w+=,.@-]{1,64}"
ROLE_SESSION_NAME_PATTERN = r"[\w+=,.@-]{2,64}"
EXTERNAL_ID_PATTERN = r"[\w+=,.@:/-]+"  # the characters; lengths are checked apart
MIN_EXTERNAL_ID = 32
STS_MIN_EXTERNAL_ID = 2
MAX_EXTERNAL_ID = 1224
BUCKET_NAME_PATTERN = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
# 71 + len("-dlq.fifo") is SQS's limit of 80 characters for the kit's dead-letter queue.
QUEUE_NAME_PATTERN = r"[A-Za-z0-9_-]{1,71}\.fifo"
# Tags reach the kit's policy through a JSON string in Fn::Sub: no quotes, no backslashes.
TAG_KEY_PATTERN = r"[A-Za-z0-9_.:/=+@-]{1,128}"
TAG_VALUE_PATTERN = r"[A-Za-z0-9 _.:/=+@-]{1,256}"
INSTANCE_ID_PATTERN = r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})"
MAX_INSTANCE_IDS = 50  # SendCommand's limit on InstanceIds
NAMED_ORDERING_KEYS = ("pipeline", "instance", "user")
CUSTOM_ORDERING_KEY_PATTERN = r"[A-Za-z0-9_.:-]{1,64}"

_GET_EXTERNAL_ID = (
    "copy the one `orca link kit` generated for this link, or run `orca link kit` for a new one"
)
_TARGET_FORM = (
    "must be instance ids (i-0123456789abcdef0[,i-…]) or one tag selector (tag:KEY=VALUE)"
)
_ROLE_ARN = re.compile(
    rf"arn:(?P<partition>{'|'.join(map(re.escape, PARTITION_NAMES))}):iam::"
    rf"(?P<account>{ACCOUNT_ID_PATTERN}):role/(?P<name>(?:[\w+=,.@-]+/)*{ROLE_NAME_PATTERN})",
    re.ASCII,
)
_USER_ARN = re.compile(rf"arn:[\w-]+:iam::{ACCOUNT_ID_PATTERN}:user/.+", re.ASCII)


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value, flags=re.ASCII) is not None


def check_resource_name(kind: str, name: str) -> str:
    """A link's or pipeline's name: 1-64 lowercase letters, digits, ``-``, ``_``.

    Args:
        kind: What is named (``link``, ``pipeline``), for the message.
        name: The name given.

    Raises:
        InvalidInputError: On field ``name``.
    """
    if not _matches(RESOURCE_NAME_PATTERN, name):
        raise InvalidInputError(
            "name",
            f"{kind} name {name!r} must be 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit.",
        )
    return name


def check_account_id(value: str, *, field: str = "account", what: str = "account") -> str:
    """A 12-digit AWS account id.

    Args:
        value: The account id given.
        field: The input's name for the error.
        what: How the message names the value, e.g. ``ORCA_ACCOUNT_ID``.

    Raises:
        InvalidInputError: On ``field`` unless ``value`` is exactly 12 digits.
    """
    if not _matches(ACCOUNT_ID_PATTERN, value):
        raise InvalidInputError(field, f"{what} {value!r} must be the 12-digit AWS account id.")
    return value


@dataclass(frozen=True)
class RoleArn:
    """A parsed IAM role ARN: ``arn:<partition>:iam::<account id>:role/<path/name>``."""

    partition: str
    account_id: str
    name: str


def parse_role_arn(value: str, *, field: str = "role_arn") -> RoleArn:
    """The parts of an IAM role ARN, in a partition Orca knows.

    Raises:
        InvalidInputError: On ``field`` for a user ARN (Orca cannot assume a user) or
            anything else that is not a role ARN.
    """
    how = "Run `orca link kit` to create the role and use the RoleArn it outputs."
    if _USER_ARN.fullmatch(value):
        raise InvalidInputError(
            field, f"{value} is an IAM user; Orca needs a role it can assume. {how}"
        )
    match = _ROLE_ARN.fullmatch(value)
    if match is None:
        raise InvalidInputError(
            field,
            f"{value!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>). {how}",
        )
    return RoleArn(match["partition"], match["account"], match["name"])


def role_arn(account_id: str, region: str, role_name: str) -> str:
    """The ARN of role ``role_name`` in ``account_id``, in the partition of ``region``."""
    return f"arn:{partition_of(region).name}:iam::{account_id}:role/{role_name}"


def check_role_session_name(value: str) -> str:
    """An STS role session name: 2-64 letters, digits and ``+=,.@-``.

    Raises:
        InvalidInputError: On field ``role_session_name``.
    """
    if not _matches(ROLE_SESSION_NAME_PATTERN, value):
        raise InvalidInputError(
            "role_session_name",
            f"{value!r} is not a valid role session name; use 2 to 64 letters, "
            "digits or +=,.@- characters, e.g. orca-worker.",
        )
    return value


def check_external_id(value: str, *, minimum: int = MIN_EXTERNAL_ID) -> str:
    """An ExternalId: ``minimum`` to 1224 of the characters ``sts:ExternalId`` allows.

    The message never quotes the value: an ExternalId is a secret.

    Args:
        value: The ExternalId.
        minimum: Fewest characters: Orca's 32 by default, :data:`STS_MIN_EXTERNAL_ID` for
            what STS itself accepts.

    Raises:
        InvalidInputError: On field ``external_id``.
    """
    if not value:
        raise InvalidInputError("external_id", f"The ExternalId is empty; {_GET_EXTERNAL_ID}.")
    if not minimum <= len(value) <= MAX_EXTERNAL_ID:
        raise InvalidInputError(
            "external_id",
            f"The ExternalId has {len(value)} characters; it needs {minimum} to "
            f"{MAX_EXTERNAL_ID}; {_GET_EXTERNAL_ID}.",
        )
    if not _matches(EXTERNAL_ID_PATTERN, value):
        raise InvalidInputError(
            "external_id",
            f"The ExternalId may hold only letters, digits and _+=,.@:/-; {_GET_EXTERNAL_ID}.",
        )
    return value


def check_region_in_role_partition(region: str, role: RoleArn) -> str:
    """A region in the role's partition (an IAM role is valid in its partition only).

    Raises:
        InvalidInputError: On field ``region`` (also for an unknown region).
    """
    if partition_of(region).name != role.partition:
        raise InvalidInputError(
            "region",
            f"Region {region} is not in the role's partition {role.partition}; "
            f"choose a region of {role.partition}.",
        )
    return region


def check_bucket_name(value: str, *, field: str = "bucket") -> str:
    """An S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens.

    Raises:
        InvalidInputError: On ``field``.
    """
    if not _matches(BUCKET_NAME_PATTERN, value):
        raise InvalidInputError(
            field,
            f"{value!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and "
            "hyphens, starting and ending with a letter or digit); use the BucketName output "
            "of the stack from `orca link kit`.",
        )
    return value


def check_queue_name(value: str, *, field: str = "queue_name") -> str:
    """The name of the kit's FIFO run queue: up to 71 of ``A-Za-z0-9-_``, then ``.fifo``.

    Raises:
        InvalidInputError: On ``field``.
    """
    if not _matches(QUEUE_NAME_PATTERN, value):
        raise InvalidInputError(
            field,
            f"queue name {value!r} must be up to 71 letters, digits, - and _, then .fifo "
            "(the dead-letter queue adds -dlq, and SQS allows 80 characters).",
        )
    return value


def check_fifo_queue_url(value: str) -> str:
    """The http(s) URL of an SQS FIFO queue (its name ends in ``.fifo``).

    Raises:
        InvalidInputError: On field ``queue_url``.
    """
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc or not url.path.endswith(".fifo"):
        raise InvalidInputError(
            "queue_url",
            f"{value!r} is not the URL of an SQS FIFO queue (its name ends in .fifo); "
            "Orca needs a FIFO queue to keep each pipeline's runs in order. "
            "Use the QueueUrl output of the stack from `orca link kit`.",
        )
    return value


def check_targets(targets: Sequence[str], *, field: str = "target") -> list[str]:
    """Where the SSM runner may run: 1-50 instance ids, or exactly one ``tag:KEY=VALUE``.

    Raises:
        InvalidInputError: On ``field``, saying which form was expected.
    """
    text = ",".join(targets)
    if not targets:
        raise InvalidInputError(
            field,
            "no target: give instance ids (i-0123456789abcdef0[,i-…]) or exactly one "
            "tag:KEY=VALUE.",
        )
    if any(target.startswith("tag:") for target in targets):
        key, _, value = targets[0].removeprefix("tag:").partition("=")
        if len(targets) > 1 or not (
            _matches(TAG_KEY_PATTERN, key) and _matches(TAG_VALUE_PATTERN, value)
        ):
            raise InvalidInputError(
                field,
                f"target {text!r} {_TARGET_FORM}; give exactly one tag:KEY=VALUE, e.g. "
                "tag:orca=enabled, with a key of 1-128 letters, digits and _.:/+@- and a value "
                "of 1-256 of those, = or spaces.",
            )
        return list(targets)
    if bad := [target for target in targets if not _matches(INSTANCE_ID_PATTERN, target)]:
        raise InvalidInputError(
            field,
            f"target {text!r} {_TARGET_FORM}: {', '.join(map(repr, bad))} are not EC2 instance "
            "ids (i- and 8 or 17 hex digits); copy them from `aws ec2 describe-instances`.",
        )
    if len(targets) > MAX_INSTANCE_IDS:
        raise InvalidInputError(
            field,
            f"SSM sends a command to at most {MAX_INSTANCE_IDS} instance ids, not "
            f"{len(targets)}; select more instances with one tag:KEY=VALUE.",
        )
    return list(targets)


def parse_targets(text: str, *, field: str = "target") -> list[str]:
    """A pipeline's target as stored (comma-separated instance ids, or one tag) as a list.

    Raises:
        InvalidInputError: As :func:`check_targets`.
    """
    return check_targets(text.split(","), field=field)


def check_ordering_key(setting: str) -> str:
    """A pipeline's ordering key: ``pipeline``, ``instance``, ``user`` or custom text.

    Raises:
        InvalidInputError: On field ``ordering_key`` for custom text that is not 1-64
            letters, digits and ``_.:-``.
    """
    if setting not in NAMED_ORDERING_KEYS and not _matches(CUSTOM_ORDERING_KEY_PATTERN, setting):
        raise InvalidInputError(
            "ordering_key",
            f"ordering key {setting!r} must be pipeline, instance, user or 1-64 "
            "letters, digits and _.:- (for example --ordering-key nightly-etl).",
        )
    return setting
