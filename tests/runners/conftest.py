"""Runner fixtures: a real moto server over HTTP, a bucket, and a way to upload scripts."""

from __future__ import annotations

import hashlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from orca_flows.domain.s3_layout import run_prefix, s3_uri, split_s3_uri
from orca_flows.runners import LocalRunner, RunSpec

BUCKET = "orca-runner-tests"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The AWS emulator over HTTP, as the local sandbox runs it; buckets persist per session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def until(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``condition`` every 0.1 s until it is truthy (and return it), or fail."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.1)
    return result


@pytest.fixture
def ssm(moto_endpoint: str) -> Any:
    """An SSM client on the session's emulator server (``mock_aws`` would reset the state
    it shares with it). ``test_ssm_runner`` replaces it with its own stubbed client."""
    return boto3.client(
        "ssm",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def s3(moto_endpoint: str) -> Any:
    """An S3 client on the emulator, with the bucket the runs write to."""
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def runner_env(moto_endpoint: str) -> dict[str, str]:
    """What the worker hands the local runner: the venv on PATH, the emulator, fake keys."""
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """The local runner's state directory (shared by a 'restarted' runner in a test)."""
    return tmp_path / "runner-state"


@pytest.fixture
def local_runner(runner_env: dict[str, str], state_dir: Path, s3: Any) -> LocalRunner:
    """A local runner bound to the emulator."""
    return LocalRunner(runner_env, state_dir=state_dir, s3_client=s3)


MakeSpec = Callable[..., RunSpec]


@pytest.fixture
def make_spec(s3: Any) -> MakeSpec:
    """Upload a script as a new version and describe a run of it.

    Call as ``make_spec(body, name="etl.py", **RunSpec overrides)``; ``sha256`` may be
    overridden to simulate a tampered script.
    """

    def make(body: str, name: str = "etl.py", **overrides: Any) -> RunSpec:
        run_id = str(uuid.uuid4())
        data = body.encode()
        key = f"orca/7/demo/scripts/v1-{run_id}/{name}"
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        fields: dict[str, Any] = {
            "run_id": run_id,
            "pipeline": "demo",
            "script_uri": s3_uri(BUCKET, key),
            "script_sha256": hashlib.sha256(data).hexdigest(),
            "script_name": name,
            "output_uri": s3_uri(BUCKET, run_prefix(7, "demo", run_id)),
            "timeout_seconds": 60,
            "log_interval_seconds": 0.5,
        }
        fields.update(overrides)
        return RunSpec(**fields)

    return make


@pytest.fixture
def run_objects(s3: Any) -> Callable[[RunSpec], dict[str, bytes]]:
    """Every object in a run attempt's S3 folder, by key relative to that folder."""

    def objects(spec: RunSpec) -> dict[str, bytes]:
        prefix = split_s3_uri(spec.attempt_uri)[1]
        listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        return {
            item["Key"][len(prefix) :]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            for item in listing
        }

    return objects
