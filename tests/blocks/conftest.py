"""Block test fixtures: fake AWS credentials, the moto server, a movable clock, an STS spy."""

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.credentials import DeferredRefreshableCredentials
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from prefect_aws import AwsCredentials

from orca_blocks import OrcaLinkedCloudCredentials


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Orca's own side gets fake keys and no AWS config files, so nothing can reach real AWS."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The AWS emulator over HTTP on a free port of 127.0.0.1, as the local sandbox runs it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_endpoint(moto_server: str) -> str:
    """The emulator's endpoint, emptied of what earlier tests created."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"))
    return moto_server


@pytest.fixture
def linked_credentials(moto_endpoint: str) -> OrcaLinkedCloudCredentials:
    """A link to account 111111111111 in the emulator."""
    return OrcaLinkedCloudCredentials(
        role_arn="arn:aws:iam::111111111111:role/OrcaAccess",
        external_id="orca-7f3a9c1e",
        endpoint_url=moto_endpoint,
    )


class FakeClock:
    """Real time plus an offset that only moves forward when a test says so."""

    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One clock for moto's STS (when keys expire) and the block's credentials (when to refresh).

    STS will not issue sessions shorter than 900 s, so tests move time instead of waiting.
    """
    fake = FakeClock()
    monkeypatch.setattr("moto.sts.models.utcnow", lambda: fake.now().replace(tzinfo=None))
    monkeypatch.setattr(
        "orca_blocks.credentials.DeferredRefreshableCredentials",
        partial(DeferredRefreshableCredentials, time_fetcher=fake.now),
    )
    return fake


class StsSpy:
    """Sees every AssumeRole sent from Orca's own session: the request and the keys it returned.

    Set ``deny_with`` to answer AssumeRole with AccessDenied, as a trust policy that does
    not accept the ExternalId would (moto does not enforce trust policies).
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.issued_keys: list[str] = []
        self.deny_with: str | None = None

    def attach(self, session: boto3.Session) -> None:
        session.events.register("before-call.sts.AssumeRole", self._before_call)
        session.events.register("after-call.sts.AssumeRole", self._after_call)

    def _before_call(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        self.requests.append(params["body"])
        if self.deny_with is None:
            return None
        error = {"Code": "AccessDenied", "Message": self.deny_with}
        return SimpleNamespace(status_code=403), {"Error": error}

    def _after_call(self, parsed: dict[str, Any], **_: Any) -> None:
        if "Credentials" in parsed:
            self.issued_keys.append(parsed["Credentials"]["AccessKeyId"])


@pytest.fixture
def sts_spy(monkeypatch: pytest.MonkeyPatch) -> StsSpy:
    """An StsSpy attached to every session prefect-aws's AwsCredentials builds for Orca's side."""
    spy = StsSpy()
    build_session = AwsCredentials.get_boto3_session

    def spied(self: AwsCredentials) -> boto3.Session:
        session = build_session(self)
        spy.attach(session)
        return session

    monkeypatch.setattr(AwsCredentials, "get_boto3_session", spied)
    return spy
