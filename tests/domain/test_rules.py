"""Every validation rule, once: what is accepted, what is refused and the way out it names."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import botocore
import pytest

from orca_flows.domain import regions, rules
from orca_flows.errors import InvalidInputError

ROLE = "arn:aws:iam::123456789012:role/OrcaAccess"
INSTANCE = "i-0123456789abcdef0"


def _refusal(check: Callable[[], object]) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as raised:
        check()
    return raised.value


@pytest.mark.parametrize(
    ("kind", "name", "ok"),
    [
        pytest.param("link", "prod", True, id="link"),
        pytest.param("pipeline", "etl_2-b", True, id="pipeline-with-dash-and-underscore"),
        pytest.param("pipeline", "e" * 64, True, id="64-characters"),
        pytest.param("pipeline", "e" * 65, False, id="65-characters"),
        pytest.param("link", "Prod", False, id="uppercase"),
        pytest.param("pipeline", "_etl", False, id="leading-underscore"),
        pytest.param("link", "", False, id="empty"),
    ],
)
def test_links_and_pipelines_share_one_name_rule(kind: str, name: str, ok: bool) -> None:
    if ok:
        assert rules.check_resource_name(kind, name) == name
        return
    error = _refusal(lambda: rules.check_resource_name(kind, name))
    assert error.field == "name"
    assert str(error).startswith(f"{kind} name {name!r} must be 1-64 lowercase")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("12345", id="short"),
        pytest.param("1234567890123", id="13-digits"),
        pytest.param("12345678901x", id="letter"),
        pytest.param("１２３４５６７８９０１２", id="non-ascii-digits"),
    ],
)
def test_account_ids_are_exactly_12_ascii_digits(value: str) -> None:
    error = _refusal(lambda: rules.check_account_id(value))
    assert (error.field, str(error)) == (
        "account",
        f"account {value!r} must be the 12-digit AWS account id.",
    )
    assert rules.check_account_id("012345678901") == "012345678901"


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        pytest.param(ROLE, rules.RoleArn("aws", "123456789012", "OrcaAccess"), id="aws"),
        pytest.param(
            "arn:aws-cn:iam::123456789012:role/orca/OrcaAccess",
            rules.RoleArn("aws-cn", "123456789012", "orca/OrcaAccess"),
            id="china-with-path",
        ),
        pytest.param(
            "arn:aws-iso-b:iam::123456789012:role/OrcaAccess",
            rules.RoleArn("aws-iso-b", "123456789012", "OrcaAccess"),
            id="isolated-partition",
        ),
    ],
)
def test_role_arns_are_parsed_into_partition_and_account(arn: str, expected: rules.RoleArn) -> None:
    assert rules.parse_role_arn(arn) == expected


@pytest.mark.parametrize(
    ("arn", "hint"),
    [
        pytest.param(
            "arn:aws:iam::123456789012:user/bob", "is an IAM user; Orca needs a role", id="user"
        ),
        pytest.param("arn:aws:iam::1234:role/x", "is not an IAM role ARN", id="short-account"),
        pytest.param("arn:aws:iam:123:role/x", "is not an IAM role ARN", id="malformed"),
        pytest.param(
            "arn:aws-mars:iam::123456789012:role/x",
            "is not an IAM role ARN",
            id="unknown-partition",
        ),
    ],
)
def test_what_is_not_a_role_arn_is_refused_with_the_kit_as_the_way_out(arn: str, hint: str) -> None:
    error = _refusal(lambda: rules.parse_role_arn(arn))
    assert error.field == "role_arn"
    assert hint in str(error) and "orca link kit" in str(error)


@pytest.mark.parametrize(
    ("region", "partition", "dns_suffix", "console"),
    [
        pytest.param(
            "us-east-1", "aws", "amazonaws.com", "us-east-1.console.aws.amazon.com", id="aws"
        ),
        pytest.param(
            "cn-north-1", "aws-cn", "amazonaws.com.cn", "console.amazonaws.cn", id="china"
        ),
        pytest.param(
            "cn-northwest-1", "aws-cn", "amazonaws.com.cn", "console.amazonaws.cn", id="china-2"
        ),
        pytest.param(
            "us-gov-west-1",
            "aws-us-gov",
            "amazonaws.com",
            "console.amazonaws-us-gov.com",
            id="govcloud",
        ),
        pytest.param("us-iso-east-1", "aws-iso", "c2s.ic.gov", None, id="isolated-no-console"),
    ],
)
def test_a_region_has_one_partition_with_its_hosts(
    region: str, partition: str, dns_suffix: str, console: str | None
) -> None:
    assert regions.partition_of(region).name == partition
    assert regions.partition_of(region).dns_suffix == dns_suffix
    assert regions.console_host(region) == console


@pytest.mark.parametrize(
    "region",
    [
        pytest.param("us-east-9", id="unknown-number"),
        pytest.param("us-middle-1", id="unknown-direction"),
        pytest.param("", id="empty"),
        pytest.param("aws-global", id="pseudo-region"),
    ],
)
def test_unknown_regions_are_refused_with_where_to_find_one(region: str) -> None:
    error = _refusal(lambda: regions.partition_of(region))
    assert error.field == "region"
    assert "use a region code such as us-east-1" in str(error) and "describe-regions" in str(error)


def test_the_region_table_knows_every_region_botocore_knows_in_the_same_partition() -> None:
    data = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    botocore_regions = {
        region: partition["id"]
        for partition in data["partitions"]
        for region in partition["regions"]
        if not region.endswith("-global")
    }

    ours = {region: regions.partition_of(region).name for region in botocore_regions if region}
    assert ours == botocore_regions, "add the new region to regions.PARTITIONS"


def test_a_region_must_be_in_the_role_partition() -> None:
    china_role = rules.parse_role_arn("arn:aws-cn:iam::123456789012:role/OrcaAccess")
    assert rules.check_region_in_role_partition("cn-north-1", china_role) == "cn-north-1"

    error = _refusal(
        lambda: rules.check_region_in_role_partition("cn-north-1", rules.parse_role_arn(ROLE))
    )
    assert error.field == "region" and "choose a region of aws" in str(error)


@pytest.mark.parametrize(
    ("region", "url"),
    [
        pytest.param(
            "eu-west-1", "https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo", id="aws"
        ),
        pytest.param(
            "cn-north-1", "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q.fifo", id="china"
        ),
        pytest.param(
            "us-gov-east-1",
            "https://sqs.us-gov-east-1.amazonaws.com/123456789012/q.fifo",
            id="govcloud",
        ),
    ],
)
def test_queue_urls_use_the_partition_dns_suffix(region: str, url: str) -> None:
    assert regions.sqs_queue_url(region, "123456789012", "q.fifo") == url


def test_role_arns_are_built_in_the_region_partition() -> None:
    assert rules.role_arn("123456789012", "cn-north-1", "OrcaAccess") == (
        "arn:aws-cn:iam::123456789012:role/OrcaAccess"
    )


@pytest.mark.parametrize(
    ("value", "minimum", "hint"),
    [
        pytest.param("", rules.MIN_EXTERNAL_ID, "empty", id="empty"),
        pytest.param(
            "x" * 10,
            rules.MIN_EXTERNAL_ID,
            "10 characters; it needs 32 to 1224",
            id="orca-10-chars",
        ),
        pytest.param("x" * 31, rules.MIN_EXTERNAL_ID, "31 characters", id="orca-31-chars"),
        pytest.param(
            "x", rules.STS_MIN_EXTERNAL_ID, "1 characters; it needs 2 to 1224", id="sts-1-char"
        ),
        pytest.param("x" * 1225, rules.STS_MIN_EXTERNAL_ID, "1225 characters", id="too-long"),
        pytest.param("a" * 40 + " b", rules.MIN_EXTERNAL_ID, "only letters", id="space"),
        pytest.param("é" * 40, rules.MIN_EXTERNAL_ID, "only letters", id="non-ascii"),
    ],
)
def test_bad_external_ids_are_refused_without_quoting_them(
    value: str, minimum: int, hint: str
) -> None:
    error = _refusal(lambda: rules.check_external_id(value, minimum=minimum))
    assert error.field == "external_id"
    assert hint in str(error)
    assert "copy the one `orca link kit` generated" in str(error)
    assert repr(value) not in str(error)


@pytest.mark.parametrize(
    ("value", "minimum"),
    [
        # The earlier copies disagreed here: the block took 10 characters, the kit refused them.
        pytest.param("orca-7f3a9c1e", rules.STS_MIN_EXTERNAL_ID, id="sts-accepts-13-chars"),
        pytest.param(
            "Abc+def=ghi,jkl.mno@pqr:stu/vwx-yz_0123456789",
            rules.MIN_EXTERNAL_ID,
            id="every-character",
        ),
        pytest.param("x" * 1224, rules.MIN_EXTERNAL_ID, id="1224-chars"),
    ],
)
def test_good_external_ids_are_kept(value: str, minimum: int) -> None:
    assert rules.check_external_id(value, minimum=minimum) == value


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("orca-worker", True, id="ok"),
        pytest.param("o", False, id="one-character"),
        pytest.param("orca worker", False, id="space"),
        pytest.param("o" * 65, False, id="65-characters"),
    ],
)
def test_role_session_names(value: str, ok: bool) -> None:
    if ok:
        assert rules.check_role_session_name(value) == value
    else:
        assert "e.g. orca-worker" in str(_refusal(lambda: rules.check_role_session_name(value)))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("orca-123456789012-eu-west-1", True, id="kit-default"),
        pytest.param("a.b-c", True, id="dots"),
        pytest.param("ab", False, id="two-characters"),
        pytest.param("Orca_Outputs", False, id="uppercase-underscore"),
        pytest.param("-orca", False, id="leading-hyphen"),
    ],
)
def test_bucket_names(value: str, ok: bool) -> None:
    if ok:
        assert rules.check_bucket_name(value) == value
    else:
        assert "not an S3 bucket name" in str(_refusal(lambda: rules.check_bucket_name(value)))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("orca-runs.fifo", True, id="default"),
        pytest.param("q" * 71 + ".fifo", True, id="longest-with-its-dlq"),
        pytest.param("q" * 72 + ".fifo", False, id="dlq-would-be-too-long"),
        pytest.param("orca-runs", False, id="not-fifo"),
        pytest.param("a.fifo.fifo", False, id="two-suffixes"),
    ],
)
def test_queue_names(value: str, ok: bool) -> None:
    if ok:
        assert rules.check_queue_name(value) == value
    else:
        error = _refusal(lambda: rules.check_queue_name(value))
        assert error.field == "queue_name" and "then .fifo" in str(error)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        pytest.param(
            "https://sqs.us-east-1.amazonaws.com/123456789012/orca-runs.fifo", True, id="aws"
        ),
        pytest.param("http://127.0.0.1:5000/123456789012/orca-runs.fifo", True, id="sandbox"),
        pytest.param(
            "https://sqs.us-east-1.amazonaws.com/123456789012/orca-runs", False, id="not-fifo"
        ),
        pytest.param("sqs://orca-runs.fifo", False, id="not-http"),
    ],
)
def test_fifo_queue_urls(url: str, ok: bool) -> None:
    if ok:
        assert rules.check_fifo_queue_url(url) == url
    else:
        assert "Orca needs a FIFO queue" in str(_refusal(lambda: rules.check_fifo_queue_url(url)))


@pytest.mark.parametrize(
    "targets",
    [
        pytest.param([INSTANCE], id="one-instance"),
        pytest.param(["i-0123abcd", INSTANCE], id="short-and-long-ids"),
        pytest.param([f"i-{n:017x}" for n in range(50)], id="50-instances"),
        pytest.param(["tag:orca=enabled"], id="tag"),
        # The earlier copies disagreed: the block took spaces in a tag value, the pipeline did not.
        pytest.param(["tag:Name=etl worker"], id="tag-value-with-spaces"),
        pytest.param(["tag:aws:autoscaling:groupName=etl-asg"], id="tag-key-with-colons"),
        pytest.param(["tag:k=a=b"], id="equals-in-value"),
    ],
)
def test_good_targets_are_kept(targets: list[str]) -> None:
    assert rules.check_targets(targets) == targets
    assert rules.parse_targets(",".join(targets)) == targets


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        pytest.param("i-123", "'i-123' are not EC2 instance ids", id="bad-instance-id"),
        pytest.param(f"{INSTANCE},i-12345", "'i-12345' are not EC2 instance ids", id="one-bad-id"),
        pytest.param("tag:orca", "give exactly one tag:KEY=VALUE", id="tag-without-value"),
        # The pipeline accepted an empty tag value, which SSM's instance filter refuses.
        pytest.param("tag:orca=", "give exactly one tag:KEY=VALUE", id="tag-with-empty-value"),
        pytest.param("tag:=x", "give exactly one tag:KEY=VALUE", id="tag-with-empty-key"),
        pytest.param("tag:my key=x", "give exactly one tag:KEY=VALUE", id="tag-key-with-space"),
        pytest.param('tag:orca="x"', "give exactly one tag:KEY=VALUE", id="tag-value-with-quotes"),
        pytest.param(
            f"tag:orca=worker,{INSTANCE}", "give exactly one tag:KEY=VALUE", id="tag-and-id"
        ),
        pytest.param("tag:a=b,tag:c=d", "give exactly one tag:KEY=VALUE", id="two-tags"),
        # The pipeline accepted any number of ids; SendCommand takes at most 50.
        pytest.param(
            ",".join(f"i-{n:017x}" for n in range(51)), "at most 50 instance ids", id="51-instances"
        ),
    ],
)
def test_bad_targets_are_refused_naming_both_forms(text: str, hint: str) -> None:
    error = _refusal(lambda: rules.parse_targets(text))
    assert error.field == "target"
    assert hint in str(error) and "tag:KEY=VALUE" in str(error)


def test_no_target_is_refused() -> None:
    error = _refusal(lambda: rules.check_targets([], field="targets"))
    assert error.field == "targets" and "tag:KEY=VALUE" in str(error)


@pytest.mark.parametrize(
    ("seconds", "hint"),
    [
        pytest.param(0, "timeout must be a positive number of seconds, not 0", id="zero"),
        pytest.param(-5, "timeout must be a positive number of seconds, not -5", id="negative"),
        # The pipeline took any length; SSM stops a command after 48 hours.
        pytest.param(172_801, "at most 171910 seconds, not 172801", id="over-48-hours"),
        # 48 hours exactly left the bootstrap no time to upload the log, the outputs and
        # the marker inside SSM's executionTimeout: a success would end timed_out.
        pytest.param(172_800, "at most 171910 seconds, not 172800", id="48-hours-no-grace"),
        pytest.param(171_911, "SSM runs a command for at most 48 hours (172800 s)", id="one-over"),
    ],
)
def test_timeouts_stay_inside_ssm_48_hours_less_the_upload_grace(seconds: int, hint: str) -> None:
    error = _refusal(lambda: rules.check_timeout(seconds))
    assert error.field == "timeout" and hint in str(error)
    assert rules.check_timeout(1) == 1 and rules.check_timeout(171_910) == 171_910
    assert rules.MAX_PIPELINE_TIMEOUT_SECONDS == 171_910


@pytest.mark.parametrize(
    ("sandbox_link", "allowed", "ok"),
    [
        pytest.param(True, False, True, id="sandbox-link"),
        pytest.param(False, True, True, id="operator-allows-it"),
        pytest.param(False, False, False, id="real-account"),
    ],
)
def test_the_local_runner_is_for_sandbox_links_or_when_the_operator_allows_it(
    sandbox_link: bool, allowed: bool, ok: bool
) -> None:
    def check(runner: str) -> str:
        return rules.check_local_runner_allowed(
            runner, link_name="prod", sandbox_link=sandbox_link, allow_local_runner=allowed
        )

    assert check("ssm") == "ssm"
    if ok:
        assert check("local") == "local"
        return
    error = _refusal(lambda: check("local"))
    assert error.field == "runner"
    assert "link 'prod'" in str(error) and "ORCA_ALLOW_LOCAL_RUNNER=true" in str(error)
    assert "--runner ssm" in str(error)


@pytest.mark.parametrize(
    "retries", [pytest.param(-1, id="negative"), pytest.param(11, id="eleven")]
)
def test_retries_are_0_to_10(retries: int) -> None:
    error = _refusal(lambda: rules.check_retries(retries))
    assert error.field == "retries" and "between 0 and 10" in str(error)
    assert rules.check_retries(0) == 0 and rules.check_retries(10) == 10


def test_runners_are_ssm_or_local() -> None:
    assert [rules.check_runner(runner) for runner in ("ssm", "local")] == ["ssm", "local"]
    assert "must be one of: ssm, local" in str(_refusal(lambda: rules.check_runner("lambda")))


@pytest.mark.parametrize(
    ("setting", "ok"),
    [
        pytest.param("pipeline", True, id="pipeline"),
        pytest.param("instance", True, id="instance"),
        pytest.param("user", True, id="user"),
        pytest.param("nightly:db-1.a_b", True, id="custom"),
        pytest.param("k" * 64, True, id="custom-64"),
        pytest.param("k" * 65, False, id="custom-65"),
        pytest.param("a b", False, id="space"),
        pytest.param("", False, id="empty"),
    ],
)
def test_ordering_key_settings(setting: str, ok: bool) -> None:
    if ok:
        assert rules.check_ordering_key(setting) == setting
    else:
        error = _refusal(lambda: rules.check_ordering_key(setting))
        assert error.field == "ordering_key" and f"ordering key {setting!r} must be" in str(error)
