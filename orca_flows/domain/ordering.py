"""Ordering keys: which runs share a FIFO message group (and the fence that runs them in turn)."""

from __future__ import annotations

import re

__all__ = ["MAX_ORDERING_KEY_LENGTH", "resolve_ordering_key"]

MAX_ORDERING_KEY_LENGTH = 128  # the runs.ordering_key column, and SQS's MessageGroupId limit
# SQS's MessageGroupId allows printable ASCII but the space; a target's tag value may have
# spaces. Replacing a character can only make two keys one, never split one (runs wait
# longer, never overlap); keys without such characters are unchanged.
_NOT_IN_MESSAGE_GROUP_ID = re.compile(r"[^!-~]")


def resolve_ordering_key(
    setting: str,
    *,
    pipeline_id: int,
    owner_id: int,
    account_id: str | None,
    target: str | None,
) -> str:
    """The ordering key of a pipeline's runs, from its ``ordering_key`` setting.

    Every key starts with its owner (``p-`` a pipeline, which has one owner; ``u-<owner
    id>`` the others), so one user's runs never wait for another's: two users whose
    pipelines target the same instance in the same account, or who both chose the custom
    key ``nightly``, have keys of their own. The owner id is followed by ``-`` (or ends
    the key), so ``u-1-…`` never reads as a key of user 12.

    Args:
        setting: ``pipeline``, ``user``, ``instance`` or custom text (checked by
            ``rules.check_ordering_key``).
        pipeline_id: The pipeline's id.
        owner_id: The pipeline owner's user id.
        account_id: The AWS account of the pipeline's link (``None`` is written as
            ``None``, as it always was, for a link that recorded none).
        target: The pipeline's target as stored (comma-separated ids or one tag).

    Returns:
        ``p-<pipeline id>``, ``u-<user id>``, ``u-<user id>-i-<account>-<target>`` (at
        most 128 characters) or ``u-<user id>-k-<text>``.
    """
    match setting:
        case "pipeline":
            return f"p-{pipeline_id}"
        case "user":
            return f"u-{owner_id}"
        case "instance":
            # Cut at the end, so the owner prefix always stays.
            key = _NOT_IN_MESSAGE_GROUP_ID.sub("_", f"u-{owner_id}-i-{account_id}-{target}")
            return key[:MAX_ORDERING_KEY_LENGTH]
        case custom:
            return f"u-{owner_id}-k-{custom}"
