"""The sandbox's fleet: emulated EC2 instances in the user's account that SSM manages.

`orca local up` launches them as a user would on AWS: an instance role trusting EC2, an
instance profile holding it (the emulator's SSM agent manages an instance only when it has
one, as AWS does) and one RunInstances per instance (moto gives a batch's profile to its
first instance only), tagged as the link kit's policy requires (``orca=enabled``) plus a
``Name`` of ``orca-sandbox-<n>``. Each instance has a directory under ORCA_HOME (its disk);
a flag file there stops its agent (`orca local agent stop`). The emulator keeps instances
in memory: a restarted one gets the recorded number of instances again, with new ids.

``FleetInstance.ping_status`` is what SSM's DescribeInstanceInformation says as the user's
account (``Online`` or ``ConnectionLost``); ``Unknown`` for an instance SSM does not list
(it has no instance profile, e.g. its role was deleted).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from typing import Any

from orca_emulator.layout import (
    INSTANCE_PROFILE_NAME,
    INSTANCE_ROLE_NAME,
    agent_stopped_flag,
    instance_dir,
    instances_dir,
)
from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.link_defaults import DEFAULT_TAG_KEY, DEFAULT_TAG_VALUE
from orca_flows.errors import InvalidInputError, NotInFleetError, SandboxNotRunningError
from orca_flows.local.accounts import orca_side_factory, user_side_factory
from orca_flows.sandbox_record import DEFAULT_SANDBOX_INSTANCES, SandboxState, running_sandbox
from orca_flows.settings import OrcaSettings

__all__ = [
    "DEFAULT_INSTANCES",
    "MAX_INSTANCES",
    "UNKNOWN_PING_STATUS",
    "FleetInstance",
    "check_instance_count",
    "ensure_fleet",
    "ensure_instance_profile",
    "fleet_instances",
    "launch_instance",
    "set_agent",
]

DEFAULT_INSTANCES = DEFAULT_SANDBOX_INSTANCES
# Each instance is a directory and, while it runs a command, processes on this machine.
MAX_INSTANCES = 20
UNKNOWN_PING_STATUS = "Unknown"
_NAME_PREFIX = "orca-sandbox-"
_NAME = re.compile(rf"^{_NAME_PREFIX}(\d+)$")
# A stopped instance is still one of the fleet (SSM shows it ConnectionLost).
_LIVE_STATES = ("pending", "running", "stopping", "stopped")
_IMAGE_ID = "ami-12c6146b"  # one of moto's built-in AMIs (Amazon Linux)
_INSTANCE_TYPE = "t3.micro"
_EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass(frozen=True)
class FleetInstance:
    """One instance of the sandbox's fleet, as `orca local status --json` lists it."""

    id: str
    tags: dict[str, str]
    ping_status: str


def check_instance_count(count: int) -> int:
    """``count`` if the sandbox can run that many instances.

    Raises:
        InvalidInputError: Not between 0 and ``MAX_INSTANCES``.
    """
    if not 0 <= count <= MAX_INSTANCES:
        raise InvalidInputError(
            "instances",
            f"--instances must be between 0 and {MAX_INSTANCES} (got {count}); the default "
            f"is {DEFAULT_INSTANCES}.",
        )
    return count


def _user_side(settings: OrcaSettings, state: SandboxState) -> ClientFactory:
    return user_side_factory(orca_side_factory(settings, state.endpoint_url))


def ensure_instance_profile(iam: Any) -> None:
    """The instance role and profile the fleet runs with (created once per emulator).

    SSM manages an instance only with an instance profile, as on AWS: its agent's
    credentials come from it.
    """
    try:
        iam.get_role(RoleName=INSTANCE_ROLE_NAME)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(
            RoleName=INSTANCE_ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(_EC2_TRUST),
            Description="The role of the local sandbox's emulated instances (their SSM agent).",
        )
    try:
        profile = iam.get_instance_profile(InstanceProfileName=INSTANCE_PROFILE_NAME)
    except iam.exceptions.NoSuchEntityException:
        profile = iam.create_instance_profile(InstanceProfileName=INSTANCE_PROFILE_NAME)
    if not any(r["RoleName"] == INSTANCE_ROLE_NAME for r in profile["InstanceProfile"]["Roles"]):
        iam.add_role_to_instance_profile(
            InstanceProfileName=INSTANCE_PROFILE_NAME, RoleName=INSTANCE_ROLE_NAME
        )


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}


def _instances(ec2: Any, *, live_only: bool) -> list[dict[str, Any]]:
    filters = [{"Name": "instance-state-name", "Values": list(_LIVE_STATES)}] if live_only else []
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            found.extend(reservation["Instances"])
    return found


def _fleet(ec2: Any) -> list[tuple[int, str, dict[str, str]]]:
    """The live instances named ``orca-sandbox-<n>``: (n, id, tags), by n then id."""
    fleet = []
    for instance in _instances(ec2, live_only=True):
        tags = _tags(instance)
        match = _NAME.match(tags.get("Name", ""))
        if match:
            fleet.append((int(match.group(1)), instance["InstanceId"], tags))
    return sorted(fleet)


def launch_instance(ec2: Any, tags: dict[str, str], *, profile: bool = True) -> str:
    """Start one emulated instance with ``tags`` (and the fleet's instance profile).

    One RunInstances per instance: moto gives a batch's profile to its first one only.
    """
    options: dict[str, Any] = {}
    if profile:
        options["IamInstanceProfile"] = {"Name": INSTANCE_PROFILE_NAME}
    if tags:
        options["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    reservation = ec2.run_instances(
        ImageId=_IMAGE_ID, InstanceType=_INSTANCE_TYPE, MinCount=1, MaxCount=1, **options
    )
    instance_id: str = reservation["Instances"][0]["InstanceId"]
    return instance_id


def _launch(ec2: Any, number: int) -> str:
    return launch_instance(
        ec2, {DEFAULT_TAG_KEY: DEFAULT_TAG_VALUE, "Name": f"{_NAME_PREFIX}{number}"}
    )


def ensure_fleet(settings: OrcaSettings, state: SandboxState, count: int) -> tuple[str, ...]:
    """Make the sandbox's running fleet exactly ``count`` instances; returns the ids launched.

    Instances missing from ``orca-sandbox-1`` … ``orca-sandbox-<count>`` are launched, those
    beyond (or a duplicate number) are terminated with their directory. Directories of
    instances the emulator does not know (it restarted) are removed. Idempotent.

    Raises:
        InvalidInputError: ``count`` out of range (``check_instance_count``).
    """
    check_instance_count(count)
    user = _user_side(settings, state)
    ec2 = user.client("ec2")
    kept: dict[int, str] = {}
    extra: list[str] = []
    for number, instance_id, _tags_of in _fleet(ec2):
        if number <= count and number not in kept:
            kept[number] = instance_id
        else:
            extra.append(instance_id)
    if extra:
        ec2.terminate_instances(InstanceIds=extra)
        for instance_id in extra:
            shutil.rmtree(instance_dir(settings.home, instance_id), ignore_errors=True)
    launched = []
    missing = [n for n in range(1, count + 1) if n not in kept]
    if missing:
        ensure_instance_profile(user.client("iam"))
        for number in missing:
            kept[number] = _launch(ec2, number)
            launched.append(kept[number])
    for instance_id in kept.values():
        instance_dir(settings.home, instance_id).mkdir(parents=True, exist_ok=True)
    if launched:
        _forget_lost_instances(settings, ec2)
    return tuple(launched)


def _forget_lost_instances(settings: OrcaSettings, ec2: Any) -> None:
    """Remove the directories of instances a previous emulator ran (their ids are gone)."""
    root = instances_dir(settings.home)
    if not root.is_dir():
        return
    known = {instance["InstanceId"] for instance in _instances(ec2, live_only=False)}
    for directory in root.iterdir():
        if directory.name.startswith("i-") and directory.name not in known:
            shutil.rmtree(directory, ignore_errors=True)


def _ping_statuses(user: ClientFactory) -> dict[str, str]:
    ssm = user.client("ssm")
    statuses: dict[str, str] = {}
    for page in ssm.get_paginator("describe_instance_information").paginate():
        for info in page["InstanceInformationList"]:
            statuses[info["InstanceId"]] = info.get("PingStatus", UNKNOWN_PING_STATUS)
    return statuses


def fleet_instances(
    settings: OrcaSettings, state: SandboxState | None = None
) -> list[FleetInstance]:
    """The sandbox's running instances, by name, each with its SSM ping status.

    Args:
        settings: Orca's settings (ORCA_HOME decides which sandbox).
        state: The running sandbox; ``None`` reads the record.

    Raises:
        SandboxNotRunningError: The sandbox is not running.
    """
    state = state or running_sandbox(settings)
    if state is None:
        raise SandboxNotRunningError()
    user = _user_side(settings, state)
    fleet = _fleet(user.client("ec2"))
    statuses = _ping_statuses(user) if fleet else {}
    return [
        FleetInstance(instance_id, tags, statuses.get(instance_id, UNKNOWN_PING_STATUS))
        for _number, instance_id, tags in fleet
    ]


def set_agent(settings: OrcaSettings, instance_id: str, running: bool) -> FleetInstance:
    """Start or stop the SSM agent of one of the sandbox's instances.

    A stopped agent answers PingStatus ``ConnectionLost`` and takes no command (they wait,
    undelivered, until their delivery timeout), as an instance whose agent died on AWS.

    Returns:
        The instance as SSM now sees it.

    Raises:
        SandboxNotRunningError: The sandbox is not running.
        NotInFleetError: ``instance_id`` is not one of the sandbox's instances.
    """
    fleet = fleet_instances(settings)
    if not any(instance.id == instance_id for instance in fleet):
        raise NotInFleetError(instance_id, [instance.id for instance in fleet])
    flag = agent_stopped_flag(settings.home, instance_id)
    if running:
        flag.unlink(missing_ok=True)
    else:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
    return next(i for i in fleet_instances(settings) if i.id == instance_id)
