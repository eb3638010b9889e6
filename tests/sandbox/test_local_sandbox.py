"""`orca local up | down | status` for real: a moto server process on 127.0.0.1."""

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
from orca_flows.aws.s3 import PrefixedBucket, user_prefix
from orca_flows.aws.sqs import FifoQueue
from orca_flows.errors import SandboxNotRunningError
from orca_flows.services.sandbox import sandbox_clients
from orca_flows.settings import get_settings

ORCA = str(Path(sys.executable).with_name("orca"))
pytestmark = pytest.mark.sandbox


def orca(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ORCA, *args], capture_output=True, text=True, timeout=120)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.fixture
def sandbox(orca_home: Path) -> Iterator[dict]:
    """`orca local up`, and whatever happens, no emulator left behind."""
    result = orca("local", "up")
    assert result.returncode == 0, result.stderr
    state = json.loads((orca_home / "sandbox.json").read_text())
    yield state
    for pid in {state["pid"], *_recorded_pid(orca_home)}:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _recorded_pid(home: Path) -> list[int]:
    path = home / "sandbox.json"
    return [json.loads(path.read_text())["pid"]] if path.exists() else []


def _client(service: str, endpoint_url: str):
    return boto3.client(service, endpoint_url=endpoint_url, region_name="us-east-1")


def test_up_provisions_orcas_bucket_and_fifo_queue(sandbox: dict) -> None:
    s3 = _client("s3", sandbox["endpoint_url"])
    sqs = _client("sqs", sandbox["endpoint_url"])

    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    url = sqs.get_queue_url(QueueName="orca-runs.fifo")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    assert sandbox["endpoint_url"].startswith("http://127.0.0.1:")
    assert "orca-sandbox" in buckets
    assert url.endswith(".fifo")
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "false"


def test_wrappers_go_over_http_to_the_recorded_server(sandbox: dict) -> None:
    factory = sandbox_clients(get_settings())
    bucket = PrefixedBucket(factory.client("s3"), sandbox["bucket"], user_prefix(1))
    queue = FifoQueue.from_name(factory.client("sqs"), sandbox["queue"])

    bucket.put("hello.txt", b"over http")
    queue.send("m", group_id="g", dedup_id="d1")
    with urllib.request.urlopen(bucket.presigned_get_url("hello.txt")) as response:
        downloaded = response.read()
    other_client = _client("sqs", sandbox["endpoint_url"])
    seen = other_client.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1)["Messages"]

    assert factory.endpoint_url == sandbox["endpoint_url"]
    assert downloaded == b"over http"
    assert [m["Body"] for m in seen] == ["m"]

    assert orca("local", "down").returncode == 0
    no_retry = ClientFactory(session=factory.session, endpoint_url=factory.endpoint_url, max_attempts=1)
    unreachable = PrefixedBucket(no_retry.client("s3", connect_timeout=1), sandbox["bucket"])
    with pytest.raises(EndpointConnectionError):
        unreachable.get("orca/1/hello.txt")


def test_up_when_already_up_says_so_and_keeps_the_same_server(sandbox: dict, orca_home: Path) -> None:
    result = orca("local", "up")

    assert result.returncode == 0
    assert "already running" in result.stdout
    assert _recorded_pid(orca_home) == [sandbox["pid"]]


def test_a_stale_record_is_detected_and_replaced(sandbox: dict, orca_home: Path) -> None:
    os.killpg(sandbox["pid"], signal.SIGKILL)
    time.sleep(0.2)

    status = orca("local", "status")
    up = orca("local", "up")

    assert status.returncode == 0
    assert "not running" in status.stdout and "gone" in status.stdout
    assert up.returncode == 0 and "is up" in up.stdout
    [new_pid] = _recorded_pid(orca_home)
    assert new_pid != sandbox["pid"] and _alive(new_pid)


def test_a_fresh_emulator_is_detected_and_reprovisioned(sandbox: dict) -> None:
    reset = urllib.request.Request(f"{sandbox['endpoint_url']}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset).close()  # the emulator forgets everything, like a restart
    s3 = _client("s3", sandbox["endpoint_url"])
    assert s3.list_buckets()["Buckets"] == []

    status = orca("local", "status", "--json")

    report = json.loads(status.stdout)
    assert report["running"] is True
    assert report["provisioned"] == ["s3://orca-sandbox", "sqs://orca-runs.fifo"]
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["orca-sandbox"]


def test_down_stops_the_process_and_a_second_down_says_so(sandbox: dict, orca_home: Path) -> None:
    first = orca("local", "down")
    second = orca("local", "down")

    assert first.returncode == 0 and "Stopped" in first.stdout
    assert not _alive(sandbox["pid"])
    assert not (orca_home / "sandbox.json").exists()
    assert second.returncode == 0 and "not running" in second.stdout
    assert "not running" in orca("local", "status").stdout


def test_commands_needing_the_sandbox_say_how_to_start_it() -> None:
    with pytest.raises(SandboxNotRunningError, match="orca local up"):
        sandbox_clients(get_settings())
