"""`orca local up | down | status` for real: the emulator (`python -m orca_emulator`, moto's
server with an SSM agent) as a process of its own on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.aws.sqs import FifoQueue
from orca_flows.domain.s3_layout import user_prefix
from orca_flows.errors import SandboxNotRunningError
from orca_flows.local.sandbox import SANDBOX_ACCOUNT_ID, SandboxState, sandbox_clients
from orca_flows.settings import get_settings

ORCA = str(Path(sys.executable).with_name("orca"))
pytestmark = pytest.mark.sandbox


def orca(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ORCA, *args], capture_output=True, text=True, timeout=180, env=env)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is dead


def _recorded(home: Path) -> dict | None:
    path = home / "sandbox.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def up(orca_home: Path) -> Iterator[dict]:
    """`orca local up` (PREFECT_API_URL is configured, so no Prefect server of its own)."""
    result = orca("local", "up")
    assert result.returncode == 0, result.stderr
    state = _recorded(orca_home)
    assert state is not None
    yield state
    for record in (state, _recorded(orca_home) or {}):
        for pid in (record.get("pid"), record.get("prefect_pid")):
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _user_side(endpoint_url: str) -> ClientFactory:
    """Clients acting in the sandbox's user account, as the user at their console would."""
    sts = boto3.client("sts", endpoint_url=endpoint_url, region_name="us-east-1")
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{SANDBOX_ACCOUNT_ID}:role/Admin", RoleSessionName="test"
    )["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return ClientFactory(session, endpoint_url=endpoint_url)


def test_up_provisions_orcas_bucket_and_fifo_queue_in_the_user_account(up: dict) -> None:
    user = _user_side(up["endpoint_url"])
    sqs = user.client("sqs")

    buckets = [b["Name"] for b in user.client("s3").list_buckets()["Buckets"]]
    url = sqs.get_queue_url(QueueName="orca-runs.fifo")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    assert up["endpoint_url"].startswith("http://127.0.0.1:")
    cmdline = Path(f"/proc/{up['pid']}/cmdline").read_bytes().split(b"\0")
    assert cmdline[1:3] == [b"-m", b"orca_emulator"]  # not moto's bare server
    assert up["account_id"] == SANDBOX_ACCOUNT_ID
    assert up["role_arn"] == f"arn:aws:iam::{SANDBOX_ACCOUNT_ID}:role/OrcaAccess"
    assert "orca-sandbox" in buckets
    assert url.endswith(f"/{SANDBOX_ACCOUNT_ID}/orca-runs.fifo")
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "false"
    assert "deadLetterTargetArn" in attributes["RedrivePolicy"]


def test_wrappers_go_over_http_to_the_recorded_server(up: dict) -> None:
    user = _user_side(up["endpoint_url"])
    bucket = PrefixedBucket(user.client("s3"), up["bucket"], user_prefix(1))
    queue = FifoQueue.from_name(user.client("sqs"), up["queue"])

    bucket.put("hello.txt", b"over http")
    queue.send("m", group_id="g", dedup_id="d1")
    with urllib.request.urlopen(bucket.presigned_get_url("hello.txt")) as response:
        downloaded = response.read()
    seen = (
        _user_side(up["endpoint_url"])
        .client("sqs")
        .receive_message(QueueUrl=queue.url, WaitTimeSeconds=1)["Messages"]
    )

    assert sandbox_clients(get_settings()).endpoint_url == up["endpoint_url"]
    assert downloaded == b"over http"
    assert [m["Body"] for m in seen] == ["m"]

    assert orca("local", "down").returncode == 0
    no_retry = ClientFactory(user.session, endpoint_url=up["endpoint_url"], max_attempts=1)
    unreachable = PrefixedBucket(no_retry.client("s3", connect_timeout=1), up["bucket"])
    with pytest.raises(EndpointConnectionError):
        unreachable.get(f"{user_prefix(1)}hello.txt")


def test_up_when_already_up_says_so_and_keeps_the_same_server(up: dict, orca_home: Path) -> None:
    result = orca("local", "up")

    assert result.returncode == 0
    assert "already running" in result.stdout
    assert _recorded(orca_home)["pid"] == up["pid"]


def test_a_stale_record_is_detected_and_replaced(up: dict, orca_home: Path) -> None:
    os.killpg(up["pid"], signal.SIGKILL)
    time.sleep(0.2)

    status = orca("local", "status")
    again = orca("local", "up")

    assert status.returncode == 0
    assert "not running" in status.stdout and "gone" in status.stdout
    assert again.returncode == 0 and "is up" in again.stdout
    new_pid = _recorded(orca_home)["pid"]
    assert new_pid != up["pid"] and _alive(new_pid)


def test_a_fresh_emulator_is_detected_and_reprovisioned(up: dict) -> None:
    reset = urllib.request.Request(f"{up['endpoint_url']}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset).close()  # the emulator forgets everything, like a restart
    user = _user_side(up["endpoint_url"])
    assert user.client("s3").list_buckets()["Buckets"] == []

    status = orca("local", "status", "--json")

    report = json.loads(status.stdout)
    assert report["running"] is True
    assert "s3://orca-sandbox" in report["provisioned"]
    assert [b["Name"] for b in user.client("s3").list_buckets()["Buckets"]] == ["orca-sandbox"]
    # The fleet too: as many instances as recorded (the default, 2), launched again.
    assert len(report["instances"]) == 2 and sorted(report["launched"]) == sorted(
        i["id"] for i in report["instances"]
    )
    assert {i["ping_status"] for i in report["instances"]} == {"Online"}


def test_down_stops_the_process_and_a_second_down_says_so(up: dict, orca_home: Path) -> None:
    first = orca("local", "down")
    second = orca("local", "down")

    assert first.returncode == 0 and "Stopped" in first.stdout
    assert not _alive(up["pid"])
    assert _recorded(orca_home) is None
    assert not (orca_home / "sandbox" / "instances").exists()  # the fleet is forgotten
    assert second.returncode == 0 and "not running" in second.stdout
    assert "not running" in orca("local", "status").stdout


def test_up_starts_a_prefect_server_when_none_is_configured(
    orca_home: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect-profile"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    try:
        result = orca("local", "up", env=env)
        state = _recorded(orca_home)
        assert result.returncode == 0, result.stderr
        assert state["prefect_api_url"].startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{state['prefect_api_url']}/health") as health:
            assert health.status == 200
        assert "prefect" in result.stdout
    finally:
        down = orca("local", "down", env=env)
    assert down.returncode == 0
    assert not _alive(state["prefect_pid"]) and not _alive(state["pid"])


def test_a_record_from_before_the_fleet_is_read_with_the_default_count(orca_home: Path) -> None:
    orca_home.mkdir(parents=True)
    old = {
        "pid": 999999999,
        "port": 1,
        "endpoint_url": "http://127.0.0.1:1",
        "started_at": "2026-01-01T00:00:00+00:00",
        "region": "us-east-1",
        "bucket": "orca-sandbox",
        "queue": "orca-runs.fifo",
        "account_id": SANDBOX_ACCOUNT_ID,
        "role_arn": f"arn:aws:iam::{SANDBOX_ACCOUNT_ID}:role/OrcaAccess",
    }
    (orca_home / "sandbox.json").write_text(json.dumps(old))

    state = SandboxState.load(orca_home / "sandbox.json")

    assert state is not None and state.instance_count == 2
    assert "not running" in orca("local", "status").stdout


def test_commands_needing_the_sandbox_say_how_to_start_it() -> None:
    with pytest.raises(SandboxNotRunningError, match="orca local up"):
        sandbox_clients(get_settings())
