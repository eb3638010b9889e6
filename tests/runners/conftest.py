"""Runner fixtures: a real moto server over HTTP, a bucket, and a way to upload scripts;
and the sandbox's emulator (EC2 instances whose SSM agent runs the commands) for the SSM
runner, with the user account's bucket and clients."""

from __future__ import annotations

import hashlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from orca_flows.domain.s3_layout import run_prefix, s3_uri, split_s3_uri
from orca_flows.runners import LocalRunner, RunSpec, local
from orca_flows.runners.transfers import Transfers
from tests.support.emulator import Emulator, start_emulator

BUCKET = "orca-runner-tests"
# The link's bucket in the emulator's user account.
USER_BUCKET = "orca-user-bucket"


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
        config=Config(signature_version="s3v4"),  # as Orca's ClientFactory makes them
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


def _spec_maker(s3: Any, bucket: str) -> MakeSpec:
    def make(body: str, name: str = "etl.py", **overrides: Any) -> RunSpec:
        run_id = str(uuid.uuid4())
        data = body.encode()
        key = f"orca/7/demo/scripts/v1-{run_id}/{name}"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        fields: dict[str, Any] = {
            "run_id": run_id,
            "pipeline": "demo",
            "script_uri": s3_uri(bucket, key),
            "script_sha256": hashlib.sha256(data).hexdigest(),
            "script_name": name,
            "output_uri": s3_uri(bucket, run_prefix(7, "demo", run_id)),
            "timeout_seconds": 60,
            "log_interval_seconds": 0.5,
        }
        fields.update(overrides)
        return RunSpec(**fields)

    return make


@pytest.fixture
def make_spec(s3: Any) -> MakeSpec:
    """Upload a script as a new version and describe a run of it.

    Call as ``make_spec(body, name="etl.py", **RunSpec overrides)``; ``sha256`` may be
    overridden to simulate a tampered script.
    """
    return _spec_maker(s3, BUCKET)


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


# --- The sandbox's emulator: the SSM runner's real path ---------------------------------


@dataclass(frozen=True)
class UserAccount:
    """The user's account on an emulator: what a link gives the SSM runner.

    Attributes:
        emulator: The emulator process (instances, agents, its ORCA_HOME).
        ssm: SSM client of the account (the link's, as ``runner_for`` gets it).
        s3: S3 client of the account.
        bucket: The link's bucket, holding scripts, run folders and SSM's output copy.
        make_spec: Upload a script to ``bucket`` and describe a run of it (as ``make_spec``).
    """

    emulator: Emulator
    ssm: Any
    s3: Any
    bucket: str
    make_spec: MakeSpec

    def launch(self, count: int = 1, **tags: str) -> list[str]:
        """Start ``count`` SSM-managed instances tagged ``orca=enabled`` (as the link
        kit's policy requires) plus ``tags``."""
        return self.emulator.launch(count, tags={"orca": "enabled", **tags})

    def objects(self, spec: RunSpec) -> dict[str, bytes]:
        """Every object in ``spec``'s attempt folder, by key relative to it."""
        prefix = split_s3_uri(spec.attempt_uri)[1]
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return {
            item["Key"][len(prefix) :]: self.s3.get_object(Bucket=self.bucket, Key=item["Key"])[
                "Body"
            ].read()
            for item in listing
        }


def _user_account(emulator: Emulator) -> UserAccount:
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=USER_BUCKET)
    return UserAccount(
        emulator, emulator.client("ssm"), s3, USER_BUCKET, _spec_maker(s3, USER_BUCKET)
    )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The sandbox's AWS emulator, a process of its own (free port, temporary ORCA_HOME,
    stopped by its pid), shared by one test module: tests keep apart by their own
    instances."""
    started = start_emulator(tmp_path_factory.mktemp("emulator"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def account(emulator: Emulator) -> UserAccount:
    """The user account on the module's emulator, with the link's bucket."""
    return _user_account(emulator)


@pytest.fixture
def own_account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserAccount]:
    """The user account on an emulator of the test's own: for what depends on every
    instance of the account (a tag target such as ``tag:orca=enabled``)."""
    started = start_emulator(tmp_path_factory.mktemp("emulator"))
    try:
        yield _user_account(started)
    finally:
        started.stop()


@pytest.fixture
def refused_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local runner's presigned URLs all refused, as once the role session the worker
    signed them in has ended: the bootstrap must fall back to the AWS CLI."""
    closed = "http://127.0.0.1:9/refused"
    monkeypatch.setattr(local, "presign_transfers", lambda *_: Transfers(closed, closed, closed))
