"""The sandbox's AWS emulator (`python -m orca_emulator`) as a process of its own for tests.

A free port on 127.0.0.1, a temporary ORCA_HOME, stopped by its own pid. ``launch`` makes
emulated EC2 instances in the sandbox's user account the way an AWS user would (an
instance profile, tags), through boto3 over HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from orca_emulator.layout import agent_stopped_flag, instance_dir
from orca_flows.local.fleet import ensure_instance_profile, launch_instance

__all__ = ["USER_ACCOUNT", "Emulator", "start_emulator"]

USER_ACCOUNT = "111122223333"
REGION = "us-east-1"


@dataclass
class Emulator:
    """A running emulator; ``endpoint_url`` is its HTTP address, ``home`` its ORCA_HOME."""

    process: subprocess.Popen[bytes]
    endpoint_url: str
    home: Path
    _session: boto3.Session | None = field(default=None, repr=False)

    def session(self) -> boto3.Session:
        """A session in the user's account (an assumed admin role, as the sandbox does)."""
        if self._session is None:
            sts = boto3.client(
                "sts",
                endpoint_url=self.endpoint_url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            credentials = sts.assume_role(
                RoleArn=f"arn:aws:iam::{USER_ACCOUNT}:role/TestAdmin", RoleSessionName="tests"
            )["Credentials"]
            self._session = boto3.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=REGION,
            )
        return self._session

    def client(self, service: str) -> Any:
        """A client of the user's account on the emulator."""
        return self.session().client(service, endpoint_url=self.endpoint_url)

    def launch(
        self, count: int = 1, *, tags: dict[str, str] | None = None, profile: bool = True
    ) -> list[str]:
        """Start ``count`` instances (with the instance profile SSM needs, unless not)."""
        if profile:
            ensure_instance_profile(self.client("iam"))
        ec2 = self.client("ec2")
        return [launch_instance(ec2, tags or {}, profile=profile) for _ in range(count)]

    def instance_dir(self, instance_id: str) -> Path:
        return instance_dir(self.home, instance_id)

    def stop_agent(self, instance_id: str) -> None:
        """Take the instance's SSM agent offline (what `orca local agent stop` does)."""
        flag = agent_stopped_flag(self.home, instance_id)
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()

    def start_agent(self, instance_id: str) -> None:
        agent_stopped_flag(self.home, instance_id).unlink(missing_ok=True)

    def stop(self) -> None:
        """SIGTERM (the emulator kills what its instances run), SIGKILL after 10 s."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_emulator(home: Path) -> Emulator:
    """Start ``python -m orca_emulator`` with ``home`` as its ORCA_HOME."""
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = open(home / "emulator.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "orca_emulator", "--home", str(home), "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                return Emulator(process, url, home)
        except (urllib.error.URLError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                log_path = home / "emulator.log"
                raise RuntimeError(f"the emulator did not start; see {log_path}") from None
            time.sleep(0.1)
