"""`orca pipeline add | upload | list | show | remove`, and every refusal of bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from orca_flows.db.models import User
from orca_flows.prefect_adapter.link_access import LinkAccess
from tests.pipelines.conftest import listed, orca, queued_messages, stored_objects

SCRIPT = b"echo hello\n"


def _script(tmp_path: Path, name: str = "job.sh", content: bytes = SCRIPT) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def test_add_stores_version_one_in_s3_with_its_sha256(
    tmp_path: Path, access: LinkAccess, ann: User
) -> None:
    result = orca("pipeline", "add", "etl", _script(tmp_path), "--link", "dev")
    shown = listed("pipeline", "show", "etl")

    assert result.exit_code == 0, result.output
    assert shown["current_version"] == 1
    # The production path by default, on a sandbox link too: SendCommand to its fleet.
    assert (shown["runner"], shown["target"]) == ("ssm", "tag:orca=enabled")
    [version] = shown["versions"]
    assert version["sha256"] == hashlib.sha256(SCRIPT).hexdigest()
    assert version["s3_uri"].endswith("/orca/1/etl/scripts/v1/job.sh")
    assert access.user_bucket(ann.id).get("etl/scripts/v1/job.sh") == SCRIPT


def test_ssm_on_a_sandbox_link_targets_its_fleet_unless_told(
    tmp_path: Path, access: LinkAccess, ann: User
) -> None:
    # On a real account's link `--runner ssm` needs --target (tests/pipelines/test_local_runner_gate).
    default = orca("pipeline", "add", "etl", _script(tmp_path), "--link", "dev", "--runner", "ssm")
    chosen = orca(
        "pipeline", "add", "one", _script(tmp_path), "--link", "dev", "--target", "tag:team=a"
    )
    local = orca("pipeline", "add", "here", _script(tmp_path), "--link", "dev", "--runner", "local")

    assert default.exit_code == 0 and chosen.exit_code == 0 and local.exit_code == 0
    shown = {p["name"]: (p["runner"], p["target"]) for p in listed("pipeline", "list")}
    assert shown == {
        "etl": ("ssm", "tag:orca=enabled"),
        "one": ("ssm", "tag:team=a"),
        "here": ("local", None),
    }


def test_upload_adds_an_immutable_new_version(
    tmp_path: Path, access: LinkAccess, ann: User
) -> None:
    orca("pipeline", "add", "etl", _script(tmp_path), "--link", "dev")

    result = orca("pipeline", "upload", "etl", _script(tmp_path, "job.py", b"print('v2')\n"))

    assert result.exit_code == 0, result.output
    versions = listed("pipeline", "show", "etl")["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert access.user_bucket(ann.id).get("etl/scripts/v1/job.sh") == SCRIPT  # v1 untouched
    assert access.user_bucket(ann.id).get("etl/scripts/v2/job.py") == b"print('v2')\n"


@pytest.mark.parametrize(
    ("name", "filename", "content", "options", "message"),
    [
        pytest.param(
            "etl",
            "job.exe",
            SCRIPT,
            [],
            "must be a .sh (bash) or .py (python3) file",
            id="extension",
        ),
        pytest.param("etl", "job.sh", b"", [], "is empty", id="empty"),
        pytest.param("etl", "job.sh", b"echo \x00hi\n", [], "contains NUL bytes", id="nul-bytes"),
        pytest.param("etl", "job.sh", b"#" * 101, [], "the limit is 100", id="too-large"),
        pytest.param(
            "ETL", "job.sh", SCRIPT, [], "pipeline name 'ETL' must be", id="uppercase-name"
        ),
        pytest.param(
            "_etl", "job.sh", SCRIPT, [], "must be 1-64 lowercase", id="leading-underscore"
        ),
        pytest.param("e" * 65, "job.sh", SCRIPT, [], "must be 1-64 lowercase", id="long-name"),
        pytest.param(
            "etl",
            "job.sh",
            SCRIPT,
            ["--target", "i-123"],
            "target 'i-123' must be",
            id="bad-instance-id",
        ),
        pytest.param(
            "etl", "job.sh", SCRIPT, ["--target", "tag:=x"], "must be instance ids", id="bad-tag"
        ),
        pytest.param(
            "etl",
            "job.sh",
            SCRIPT,
            ["--runner", "lambda"],
            "runner 'lambda' must be one of",
            id="bad-runner",
        ),
        pytest.param(
            "etl",
            "job.sh",
            SCRIPT,
            ["--timeout", "0"],
            "timeout must be a positive",
            id="zero-timeout",
        ),
        pytest.param(
            "etl",
            "job.sh",
            SCRIPT,
            ["--timeout", "-5"],
            "timeout must be a positive",
            id="negative-timeout",
        ),
        # SSM stops a command after 48 hours, and the bootstrap needs part of that to
        # upload: the timeout used to have no upper bound, then one without that margin.
        pytest.param(
            "etl",
            "job.sh",
            SCRIPT,
            ["--timeout", "172800"],
            "at most 171910 seconds, not 172800: SSM runs a command for at most 48 hours",
            id="timeout-48h-leaves-no-upload-grace",
        ),
        # SSM's instance filter refuses an empty tag value; the target used to accept it.
        pytest.param(
            "etl",
            "job.sh",
            SCRIPT,
            ["--target", "tag:orca="],
            "give exactly one tag:KEY=VALUE",
            id="empty-tag-value",
        ),
        pytest.param(
            "etl",
            "job.sh",
            SCRIPT,
            ["--retries", "-1"],
            "retries must be between",
            id="negative-retries",
        ),
        pytest.param(
            "etl",
            "job.sh",
            SCRIPT,
            ["--ordering-key", "a b"],
            "ordering key 'a b' must be",
            id="bad-ordering-key",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_is_left_behind(
    tmp_path: Path,
    access: LinkAccess,
    ann: User,
    monkeypatch,
    name: str,
    filename: str,
    content: bytes,
    options: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("ORCA_MAX_SCRIPT_BYTES", "100")

    result = orca(
        "pipeline", "add", name, _script(tmp_path, filename, content), "--link", "dev", *options
    )

    assert result.exit_code == 1
    assert message in result.stderr
    assert listed("pipeline", "list") == []
    assert stored_objects(access, ann) == []
    assert queued_messages(access) == 0


def test_unknown_link_and_missing_file_are_clear_errors(tmp_path: Path, access: LinkAccess) -> None:
    unknown_link = orca("pipeline", "add", "etl", _script(tmp_path), "--link", "prod")
    missing_file = orca("pipeline", "add", "etl", str(tmp_path / "nope.sh"), "--link", "dev")

    assert unknown_link.exit_code == 1 and "link 'prod' does not exist" in unknown_link.stderr
    assert missing_file.exit_code == 1 and "cannot read" in missing_file.stderr
    assert listed("pipeline", "list") == []


def test_a_duplicate_name_is_refused_and_the_first_stays(
    tmp_path: Path, access: LinkAccess, ann: User
) -> None:
    orca("pipeline", "add", "etl", _script(tmp_path), "--link", "dev")

    result = orca(
        "pipeline", "add", "etl", _script(tmp_path, "other.sh", b"echo other\n"), "--link", "dev"
    )

    assert result.exit_code == 1 and "pipeline 'etl' already exists" in result.stderr
    assert "orca pipeline upload" in result.stderr
    assert stored_objects(access, ann) == ["etl/scripts/v1/job.sh"]


def test_remove_refuses_while_runs_are_queued_and_force_stops_them(
    tmp_path: Path, access: LinkAccess
) -> None:
    orca("pipeline", "add", "etl", _script(tmp_path), "--link", "dev")
    run_id = orca("run", "start", "etl").stdout.strip()

    refused = orca("pipeline", "remove", "etl")
    forced = orca("pipeline", "remove", "etl", "--force")

    assert (
        refused.exit_code == 1
        and "1 queued or running run(s)" in refused.stderr
        and "--force" in refused.stderr
    )
    assert forced.exit_code == 0, forced.output
    assert "stay in s3://orca-sandbox/orca/1/etl/" in forced.stdout
    assert listed("pipeline", "list") == []
    assert orca("run", "show", run_id).exit_code == 1  # its history went with it
