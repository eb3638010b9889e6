"""The bootstrap and kill scripts as text: valid bash, no secrets, checked inputs."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from orca_flows.domain.s3_layout import run_prefix, s3_uri, script_key
from orca_flows.errors import InvalidInputError
from orca_flows.runners import RunSpec, render_bootstrap, render_kill

RUN_ID = "5f0e8a52-3c1b-4f7e-9d2a-6b1c0e4d8a71"


def _spec(**overrides: Any) -> RunSpec:
    fields: dict[str, Any] = {
        "run_id": RUN_ID,
        "pipeline": "demo",
        "script_uri": s3_uri("orca-bucket", script_key(7, "demo", 3, "etl.py")),
        "script_sha256": "ab" * 32,
        "script_name": "etl.py",
        "output_uri": s3_uri("orca-bucket", run_prefix(7, "demo", RUN_ID)),
        "timeout_seconds": 900,
        "environment": {"GREETING": "it's $(date) `id`"},
    }
    return RunSpec(**{**fields, **overrides})


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(render_bootstrap(_spec()), id="bootstrap"),
        pytest.param(render_bootstrap(_spec(script_name="job.sh", environment={})), id="sh"),
        pytest.param(render_kill(RUN_ID), id="kill"),
        pytest.param(render_bootstrap(_spec(), host_dir="/var/lib/o'rca $x"), id="host-dir"),
        pytest.param(render_kill(RUN_ID, host_dir="/var/lib/o'rca $x"), id="kill-host-dir"),
    ],
)
def test_scripts_are_valid_bash(script: str) -> None:
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


def test_bootstrap_carries_no_endpoint_or_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    text = render_bootstrap(_spec())
    for needle in ("127.0.0.1", "http", "--endpoint-url", "AWS_ACCESS", "AWS_SECRET", "testing"):
        assert needle not in text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"environment": {"lower": "x"}}, "environment", id="lowercase-name"),
        pytest.param({"environment": {"A-B": "x"}}, "environment", id="dash-in-name"),
        pytest.param({"environment": {"X=$(id)": "x"}}, "environment", id="injection-in-name"),
        pytest.param({"environment": {"ORCA_RUN_ID": "x"}}, "environment", id="reserved-name"),
        pytest.param({"script_name": "etl.rb"}, "script_name", id="unknown-script-type"),
        pytest.param({"script_name": "../etl.py"}, "script_name", id="script-name-with-path"),
        pytest.param({"output_uri": "s3://orca-bucket/runs/x"}, "output_uri", id="no-slash"),
        pytest.param({"script_sha256": "abc"}, "script_sha256", id="short-sha256"),
        pytest.param({"run_id": "../../etc"}, "run_id", id="run-id-with-path"),
        pytest.param({"attempt": 0}, "attempt", id="attempt-zero"),
    ],
)
def test_unsafe_specs_are_refused(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        _spec(**overrides)
    assert caught.value.field == field


def test_the_bootstrap_reports_to_its_attempt_s_folder_and_claims_its_key() -> None:
    text = render_bootstrap(_spec(attempt=3))
    attempt_uri = s3_uri("orca-bucket", run_prefix(7, "demo", RUN_ID)) + "attempts/3/"

    assert f"output_uri={attempt_uri}\n" in text
    assert f"execution_key={RUN_ID}-a3\n" in text
    assert 'ln -- "$claim.$$" "$claim"' in text  # atomic: one copy of an attempt runs
