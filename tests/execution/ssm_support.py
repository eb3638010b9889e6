"""What the SSM-path tests read behind Orca's back: SSM as the user's account sees it, the
sandbox's fleet, and where on the fleet a script really ran.

Orca's own tables say what Orca believes; these helpers read the emulator's SSM (the
commands Orca sent and where they were invoked) and files the scripts themselves write,
so a test can tell a run that executed from one that was only reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orca_emulator.layout import instance_dir
from orca_flows.aws.link_defaults import DEFAULT_TAG_KEY, DEFAULT_TAG_VALUE
from orca_flows.domain.actor import Actor
from orca_flows.local.accounts import orca_side_factory, user_side_factory
from orca_flows.local.fleet import fleet_instances, set_agent
from orca_flows.local.sandbox import SandboxState
from orca_flows.services.links import access_link
from orca_flows.services.pipelines import ScriptFile
from tests.execution.conftest import LINK, Ledger, Orca

# The fixtures are imported by name by the test modules that use them.
__all__ = ["FLEET_TARGET", "Fleet", "UserAccount", "fleet_fixture", "user_account_fixture"]

# The sandbox fleet's tag, the target pipelines on the sandbox default to.
FLEET_TARGET = f"tag:{DEFAULT_TAG_KEY}={DEFAULT_TAG_VALUE}"


@dataclass
class UserAccount:
    """The sandbox's user account: its SSM (what Orca sent) and its bucket (what the runs
    wrote), read with the user's own administrator credentials, not the link's."""

    ssm: Any
    s3: Any
    bucket: str

    def commands_for(self, execution_key: str) -> list[dict[str, Any]]:
        """Every SSM command whose Comment is ``execution_key`` (one per SendCommand)."""
        pages = self.ssm.get_paginator("list_commands").paginate()
        return [
            command
            for page in pages
            for command in page["Commands"]
            if command.get("Comment") == execution_key
        ]

    def invoked_on(self, command_id: str) -> list[str]:
        """The instances SSM invoked ``command_id`` on."""
        invocations = self.ssm.list_command_invocations(CommandId=command_id)
        return sorted(i["InstanceId"] for i in invocations["CommandInvocations"])

    def invocation(self, command_id: str, instance_id: str) -> dict[str, Any]:
        """GetCommandInvocation: SSM's own (truncated) view of the command's output."""
        return self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)

    def read(self, uri: str) -> bytes:
        """An object of the link's bucket by its ``s3://`` URI."""
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        assert bucket == self.bucket, uri
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture(name="user_account")
def user_account_fixture(orca: Orca, sandbox: SandboxState) -> UserAccount:
    user = user_side_factory(orca_side_factory(orca.settings, sandbox.endpoint_url))
    bucket = access_link(orca.settings, Actor(orca.user.id, orca.user.email), LINK).bucket
    return UserAccount(user.client("ssm"), user.client("s3"), bucket)


@dataclass
class Fleet:
    """The sandbox's emulated instances, and where scripts ran on them.

    A script made with ``where_script`` appends ``RUN_ID TMPDIR`` to a file: the emulated
    agent gives each instance its own TMPDIR, so the line names the instance the script
    really ran on (``ran_on``), whatever Orca or SSM report.
    """

    orca: Orca
    where_file: Path

    @property
    def ids(self) -> list[str]:
        return [instance.id for instance in fleet_instances(self.orca.settings)]

    def dirs(self) -> dict[str, Path]:
        """Each instance's directory (its disk), by instance id."""
        return {i: instance_dir(self.orca.settings.home, i) for i in self.ids}

    def ping_statuses(self) -> dict[str, str]:
        return {i.id: i.ping_status for i in fleet_instances(self.orca.settings)}

    def set_agent(self, instance_id: str, *, running: bool) -> None:
        """`orca local agent start|stop INSTANCE`."""
        set_agent(self.orca.settings, instance_id, running)

    def where_line(self) -> str:
        """The bash line recording where the script runs."""
        return f'printf "%s %s\\n" "$ORCA_RUN_ID" "${{TMPDIR:-none}}" >>{self.where_file}'

    def where_script(self, ledger: Ledger, key: str, body: str = "") -> ScriptFile:
        """A ledger script that also records where it ran."""
        return ledger.script(key, f"{self.where_line()}\n{body}")

    def ran_on(self, run_id: str) -> list[str]:
        """The instances ``run_id``'s script ran on (``"not an instance: ..."`` otherwise)."""
        if not self.where_file.exists():
            return []
        by_tmp = {str(directory / "tmp"): i for i, directory in self.dirs().items()}
        lines = (line.split(" ", 1) for line in self.where_file.read_text().splitlines())
        return [by_tmp.get(tmp, f"not an instance: {tmp}") for rid, tmp in lines if rid == run_id]


@pytest.fixture(name="fleet")
def fleet_fixture(orca: Orca, tmp_path: Path) -> Fleet:
    """The sandbox's fleet: two instances tagged for Orca, both online."""
    found = Fleet(orca, tmp_path / "where.txt")
    statuses = found.ping_statuses()
    assert len(statuses) == 2 and set(statuses.values()) == {"Online"}, statuses
    return found
