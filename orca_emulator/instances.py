"""The emulated EC2 instances SSM manages: who they are, and what their commands run with.

An instance is SSM-managed, as on AWS, when it runs with an instance profile (the agent's
credentials come from it); others are unknown to SSM (``InvalidInstanceId``). A command
runs with what an EC2 instance gives the AWS CLI: the instance role's credentials (here
from STS, as the instance metadata service would hand them out), the region and, the one
thing AWS does not need, the emulator's endpoint.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends

from orca_emulator.agent import Invocation
from orca_emulator.layout import instance_dir

__all__ = [
    "InstanceCredentials",
    "ManagedInstance",
    "instance_running",
    "managed_instance",
    "managed_instances",
]

logger = logging.getLogger(__name__)  # to stderr: the sandbox's log

# Orca's side of the emulator (any key works; this one names the caller in logs).
_EMULATOR_KEY = "orca-emulator"
# Instance credentials are renewed this long before they expire, as the SDKs do.
_RENEW_BEFORE_SECONDS = 300


@dataclass(frozen=True)
class ManagedInstance:
    """An emulated EC2 instance with an SSM agent."""

    instance_id: str
    account_id: str
    region: str
    state: str
    tags: dict[str, str]
    role_arn: str | None
    private_ip: str
    launched_at: datetime | None


def _role_of(account_id: str, profile: dict[str, Any] | None) -> str | None:
    if not profile or not profile.get("Arn"):
        return None
    try:
        found = iam_backends[account_id]["global"].get_instance_profile_by_arn(profile["Arn"])
    except Exception:  # moto's own "no such profile"
        return None
    return found.roles[0].arn if found.roles else None


def _as_managed(account_id: str, region: str, instance: Any) -> ManagedInstance | None:
    role_arn = _role_of(account_id, getattr(instance, "iam_instance_profile", None))
    if role_arn is None or instance.state in ("terminated", "shutting-down"):
        return None
    return ManagedInstance(
        instance_id=instance.id,
        account_id=account_id,
        region=region,
        state=instance.state,
        tags={tag["key"]: tag["value"] for tag in instance.get_tags()},
        role_arn=role_arn,
        private_ip=instance.private_ip or "",
        launched_at=getattr(instance, "launch_time", None) and _parse(instance.launch_time),
    )


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def managed_instances(account_id: str, region: str) -> list[ManagedInstance]:
    """The SSM-managed instances of an account's region, ordered by id."""
    backend = ec2_backends[account_id][region]
    found = (_as_managed(account_id, region, i) for i in backend.all_instances())
    return sorted((i for i in found if i is not None), key=lambda i: i.instance_id)


def managed_instance(account_id: str, region: str, instance_id: str) -> ManagedInstance | None:
    """The instance if SSM manages it, else ``None`` (unknown, terminated, no profile)."""
    return next(
        (i for i in managed_instances(account_id, region) if i.instance_id == instance_id), None
    )


def instance_running(invocation: Invocation) -> bool:
    """Whether the invocation's EC2 instance is running (not stopped or terminated since)."""
    try:
        found = ec2_backends[invocation.account_id][invocation.region].get_instance(
            invocation.instance_id
        )
    except Exception:  # moto's own "no such instance"
        return False
    return bool(found.state == "running")


class InstanceCredentials:
    """Each instance's role credentials, from the emulator's STS, renewed before expiry;
    the environment and the S3 client its commands and its agent use.

    Args:
        home: ORCA_HOME of the sandbox.
        endpoint_url: The emulator's own URL.
    """

    def __init__(self, home: Path, endpoint_url: str) -> None:
        self.home = home
        self.endpoint_url = endpoint_url
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[dict[str, str], float]] = {}
        self._where: dict[str, tuple[str, str, str]] = {}

    def register(self, invocation: Invocation, instance: ManagedInstance) -> None:
        """Remember where ``invocation``'s instance lives (account, region, role)."""
        if instance.role_arn is None:
            raise ValueError(f"{instance.instance_id} has no instance role: SSM cannot use it")
        with self._lock:
            self._where[invocation.instance_id] = (
                instance.account_id,
                instance.region,
                instance.role_arn,
            )

    def _keys(self, instance_id: str) -> dict[str, str]:
        with self._lock:
            cached = self._cached.get(instance_id)
            if cached and cached[1] - time.time() > _RENEW_BEFORE_SECONDS:
                return cached[0]
            _account, region, role_arn = self._where[instance_id]
        sts = boto3.client(
            "sts",
            endpoint_url=self.endpoint_url,
            region_name=region,
            aws_access_key_id=_EMULATOR_KEY,
            aws_secret_access_key=_EMULATOR_KEY,
        )
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=instance_id)["Credentials"]
        keys = {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }
        with self._lock:
            self._cached[instance_id] = (keys, credentials["Expiration"].timestamp())
        return keys

    def environment(self, invocation: Invocation) -> dict[str, str]:
        """What a command on the instance runs with: a clean environment of its own."""
        root = instance_dir(self.home, invocation.instance_id)
        for sub in ("home", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        region = self._where[invocation.instance_id][1]
        return {
            # The AWS CLI and python3 of the emulator's install, then the system's.
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(root / "home"),
            "TMPDIR": str(root / "tmp"),
            "LANG": "C.UTF-8",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            **self._keys(invocation.instance_id),
        }

    def upload_output(
        self, invocation: Invocation, stdout: bytes, stderr: bytes
    ) -> tuple[str, str]:
        """Copy a finished command's whole output to its bucket, under SSM's key layout."""
        region = self._where[invocation.instance_id][1]
        keys = self._keys(invocation.instance_id)
        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=region,
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=keys["AWS_SESSION_TOKEN"],
        )
        prefix = "/".join(
            part
            for part in (
                invocation.output_prefix.strip("/"),
                invocation.command_id,
                invocation.instance_id,
                "awsrunShellScript/0.awsrunShellScript",
            )
            if part
        )
        urls = []
        for name, data in (("stdout", stdout), ("stderr", stderr)):
            if not data:
                urls.append("")
                continue
            key = f"{prefix}/{name}"
            try:
                s3.put_object(Bucket=invocation.output_bucket, Key=key, Body=data)
            except Exception as error:  # as the agent: the command's result stands
                logger.warning("ssm agent: output upload to %s: %r", key, error)
                urls.append("")
                continue
            urls.append(f"https://s3.{region}.amazonaws.com/{invocation.output_bucket}/{key}")
        return urls[0], urls[1]
