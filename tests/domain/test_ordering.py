"""Ordering keys: runs of one key run in turn; keys never let one user hold up another."""

from __future__ import annotations

import pytest

from orca_flows.domain.ordering import resolve_ordering_key

ACCOUNT = "123456789012"


@pytest.mark.parametrize(
    ("setting", "target", "expected"),
    [
        pytest.param("pipeline", None, "p-11", id="pipeline"),
        pytest.param("user", None, "u-7", id="user"),
        pytest.param("nightly", None, "u-7-k-nightly", id="custom-scoped-to-its-user"),
        pytest.param(
            "instance",
            "i-0123456789abcdef0",
            f"u-7-i-{ACCOUNT}-i-0123456789abcdef0",
            id="instance-scoped-to-its-user",
        ),
        pytest.param(
            "instance", "tag:orca=enabled", f"u-7-i-{ACCOUNT}-tag:orca=enabled", id="by-tag"
        ),
        # SQS refuses spaces in a MessageGroupId; a tag value may have them.
        pytest.param(
            "instance",
            "tag:Name=etl worker",
            f"u-7-i-{ACCOUNT}-tag:Name=etl_worker",
            id="tag-with-space",
        ),
    ],
)
def test_each_setting_resolves_to_its_key(setting: str, target: str | None, expected: str) -> None:
    key = resolve_ordering_key(
        setting, pipeline_id=11, owner_id=7, account_id=ACCOUNT, target=target
    )

    assert key == expected


def test_an_instance_key_fits_the_column_and_message_group_id() -> None:
    targets = ",".join(f"i-{n:017x}" for n in range(50))

    key = resolve_ordering_key(
        "instance", pipeline_id=1, owner_id=1, account_id=ACCOUNT, target=targets
    )

    assert key == f"u-1-i-{ACCOUNT}-{targets}"[:128]


def test_two_users_custom_keys_of_the_same_text_differ() -> None:
    ann, bob = (
        resolve_ordering_key(
            "shared", pipeline_id=1, owner_id=owner, account_id=ACCOUNT, target=None
        )
        for owner in (1, 2)
    )

    assert ann != bob


@pytest.mark.parametrize(
    ("setting", "target"),
    [
        pytest.param("instance", "tag:orca=enabled", id="same-instance-tag"),
        pytest.param("instance", "i-0123456789abcdef0", id="same-instance-id"),
        pytest.param("nightly", None, id="same-custom-text"),
        pytest.param("user", None, id="user"),
    ],
)
def test_no_key_is_shared_by_two_users(setting: str, target: str | None) -> None:
    """Users 1 and 12 (whose id starts with 1) with the same setting, account and target."""
    ann, bob = (
        resolve_ordering_key(
            setting, pipeline_id=owner, owner_id=owner, account_id=ACCOUNT, target=target
        )
        for owner in (1, 12)
    )

    assert ann != bob
    assert ann.startswith("u-1-") or ann == "u-1"
    assert bob.startswith("u-12-") or bob == "u-12"
