"""The S3 layout: the exact keys Orca writes (a change here moves users' files)."""

from __future__ import annotations

import pytest

from orca_flows.domain import s3_layout
from orca_flows.errors import InvalidInputError

RUN = "5f0c7a3e-1d2b-4c5a-9e8f-0a1b2c3d4e5f"
RUN_PREFIX = f"orca/7/etl/runs/{RUN}/"
ATTEMPT_2 = f"{RUN_PREFIX}attempts/2/"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param(s3_layout.user_prefix(7), "orca/7/", id="user"),
        pytest.param(s3_layout.pipeline_prefix(7, "etl"), "orca/7/etl/", id="pipeline"),
        pytest.param(
            s3_layout.script_relative_key("etl", 3, "job.py"),
            "etl/scripts/v3/job.py",
            id="script-relative",
        ),
        pytest.param(
            s3_layout.script_key(7, "etl", 3, "job.py"), "orca/7/etl/scripts/v3/job.py", id="script"
        ),
        pytest.param(
            s3_layout.run_relative_prefix("etl", RUN), f"etl/runs/{RUN}/", id="run-relative"
        ),
        pytest.param(s3_layout.run_prefix(7, "etl", RUN), RUN_PREFIX, id="run"),
        pytest.param(s3_layout.attempt_prefix(RUN_PREFIX, 2), ATTEMPT_2, id="attempt"),
        pytest.param(
            s3_layout.attempt_prefix(RUN_PREFIX, 0),
            f"{RUN_PREFIX}attempts/1/",
            id="attempt-of-an-unclaimed-run-is-the-first",
        ),
        pytest.param(s3_layout.log_key(ATTEMPT_2), f"{ATTEMPT_2}log", id="log"),
        pytest.param(s3_layout.outputs_prefix(ATTEMPT_2), f"{ATTEMPT_2}outputs/", id="outputs"),
        pytest.param(
            s3_layout.output_key(ATTEMPT_2, "sub/a.csv"),
            f"{ATTEMPT_2}outputs/sub/a.csv",
            id="output",
        ),
        pytest.param(s3_layout.exit_code_key(ATTEMPT_2), f"{ATTEMPT_2}exit-code", id="exit-code"),
        pytest.param(s3_layout.ssm_output_prefix(7, "etl"), "orca/7/etl/ssm", id="ssm-output"),
        pytest.param(s3_layout.probe_relative_key("p1"), "_orca-check/p1", id="probe-relative"),
        pytest.param(s3_layout.probe_key(7, "p1"), "orca/7/_orca-check/p1", id="probe"),
    ],
)
def test_keys_keep_the_layout_users_have_in_their_buckets(key: str, expected: str) -> None:
    assert key == expected


def test_every_key_is_under_the_prefix_the_kit_role_may_use() -> None:
    keys = [
        s3_layout.script_key(7, "etl", 1, "a.sh"),
        s3_layout.run_prefix(7, "etl", RUN),
        s3_layout.ssm_output_prefix(7, "etl"),
        s3_layout.probe_key(7, "p"),
    ]
    assert all(key.startswith(s3_layout.ORCA_PREFIX) for key in keys)


def test_each_attempt_has_its_own_log_marker_and_outputs() -> None:
    first, second = (s3_layout.attempt_prefix(RUN_PREFIX, n) for n in (1, 2))
    for key_of in (s3_layout.log_key, s3_layout.exit_code_key, s3_layout.outputs_prefix):
        assert key_of(first) != key_of(second)
        assert key_of(first).startswith(RUN_PREFIX) and key_of(second).startswith(RUN_PREFIX)


def test_full_keys_are_the_user_prefix_and_the_relative_key() -> None:
    user = s3_layout.user_prefix(7)
    assert s3_layout.run_prefix(7, "etl", RUN) == user + s3_layout.run_relative_prefix("etl", RUN)
    assert s3_layout.script_key(7, "etl", 2, "a.sh") == (
        user + s3_layout.script_relative_key("etl", 2, "a.sh")
    )


@pytest.mark.parametrize(
    ("uri", "parts"),
    [
        pytest.param("s3://bucket/orca/7/etl/", ("bucket", "orca/7/etl/"), id="prefix"),
        pytest.param("s3://bucket/a/b.csv", ("bucket", "a/b.csv"), id="key"),
        pytest.param("s3://bucket/", ("bucket", ""), id="bucket-root"),
    ],
)
def test_uris_split_back_into_bucket_and_key(uri: str, parts: tuple[str, str]) -> None:
    assert s3_layout.split_s3_uri(uri) == parts
    assert s3_layout.s3_uri(*parts) == uri


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("s3://bucket", id="no-slash"),
        pytest.param("https://bucket.s3.amazonaws.com/key", id="https"),
        pytest.param("bucket/key", id="no-scheme"),
    ],
)
def test_what_is_not_an_s3_uri_is_refused(uri: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        s3_layout.split_s3_uri(uri)
    assert raised.value.field == "uri"
