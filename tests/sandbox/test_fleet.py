"""The sandbox's fleet of emulated EC2 instances: `orca local up --instances N`, `status`,
`agent stop | start`, a restarted emulator, `down`; pipelines and `orca link check` on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from orca_emulator.layout import agent_stopped_flag, instance_dir, instances_dir
from orca_flows.cli.main import app
from orca_flows.db.models import User
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import CheckStatus
from orca_flows.errors import NotInFleetError
from orca_flows.local.accounts import orca_side_factory, user_side_factory
from orca_flows.local.fleet import fleet_instances, set_agent
from orca_flows.local.sandbox import SandboxState
from orca_flows.services.link_check import check_link
from orca_flows.services.link_creation import create_local_link
from orca_flows.settings import get_settings

ORCA = str(Path(sys.executable).with_name("orca"))
pytestmark = pytest.mark.sandbox


def orca(*args: str) -> subprocess.CompletedProcess[str]:
    """`orca` in a process of its own (what starts or stops the sandbox's processes)."""
    return subprocess.run([ORCA, *args], capture_output=True, text=True, timeout=180)


def in_process(*args: str) -> Result:
    """`orca` in this process (typer's runner): the same CLI, without the start-up time."""
    return CliRunner().invoke(app, list(args))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is dead


def _recorded(home: Path) -> dict[str, Any] | None:
    path = home / "sandbox.json"
    return json.loads(path.read_text()) if path.exists() else None


def _status() -> dict[str, Any]:
    result = in_process("local", "status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _pings() -> dict[str, str]:
    return {i["id"]: i["ping_status"] for i in _status()["instances"]}


@pytest.fixture
def three(orca_home: Path) -> Iterator[list[str]]:
    """`orca local up --instances 3` (no Prefect server of its own); the instances' ids."""
    result = orca("local", "up", "--instances", "3")
    assert result.returncode == 0, result.stderr
    yield [i["id"] for i in _status()["instances"]]
    last = _recorded(orca_home) or {}
    orca("local", "down")  # SIGTERM: the emulator kills what its instances run
    if last.get("pid") and _alive(last["pid"]):
        os.killpg(last["pid"], signal.SIGKILL)


def test_up_runs_the_instances_tagged_for_orca_and_status_lists_them_online(
    three: list[str], orca_home: Path
) -> None:
    status = _status()
    up_again = in_process("local", "up")

    assert [i["tags"] for i in status["instances"]] == [
        {"orca": "enabled", "Name": f"orca-sandbox-{n}"} for n in (1, 2, 3)
    ]
    assert {i["ping_status"] for i in status["instances"]} == {"Online"}
    assert len(set(three)) == 3 and all(i.startswith("i-") for i in three)
    assert all(instance_dir(orca_home, i).is_dir() for i in three)
    assert Path(f"/proc/{status['pid']}/cmdline").read_bytes().count(b"orca_emulator") == 1
    # `up` again keeps the same instances and prints them.
    assert up_again.exit_code == 0 and "already running" in up_again.stdout
    assert all(f"{i}  orca-sandbox-" in up_again.stdout for i in three)
    assert [i["id"] for i in _status()["instances"]] == three


def test_up_with_another_count_resizes_the_fleet_and_refuses_a_bad_one(
    three: list[str], orca_home: Path
) -> None:
    smaller = in_process("local", "up", "--instances", "1")
    too_many = in_process("local", "up", "--instances", "21")

    assert smaller.exit_code == 0, smaller.output
    assert [i["id"] for i in _status()["instances"]] == three[:1]
    assert not instance_dir(orca_home, three[2]).exists()
    assert too_many.exit_code == 1
    assert "--instances must be between 0 and 20" in too_many.stderr
    assert "Traceback" not in too_many.stderr
    assert len(_status()["instances"]) == 1


def test_an_agent_stopped_goes_connection_lost_and_started_comes_back_online(
    three: list[str],
) -> None:
    first, *others = three

    stopped = in_process("local", "agent", "stop", first)
    while_stopped = _pings()
    started = in_process("local", "agent", "start", first)

    assert stopped.exit_code == 0, stopped.output
    assert "ConnectionLost" in stopped.stdout
    assert while_stopped == {first: "ConnectionLost"} | {i: "Online" for i in others}
    assert started.exit_code == 0 and "Online" in started.stdout
    assert _pings() == dict.fromkeys(three, "Online")


def test_an_instance_not_in_the_fleet_is_refused_with_the_way_out(three: list[str]) -> None:
    result = orca("local", "agent", "stop", "i-0123456789abcdef0")  # the exit code, for real

    assert result.returncode == 1
    assert "'i-0123456789abcdef0' does not exist" in result.stderr
    assert "orca local status" in result.stderr and three[0] in result.stderr
    assert "Traceback" not in result.stderr
    assert set(_pings().values()) == {"Online"}


def test_a_restarted_emulator_gets_the_same_number_of_instances_back(
    three: list[str], orca_home: Path
) -> None:
    before = _recorded(orca_home)
    assert before is not None
    os.killpg(before["pid"], signal.SIGKILL)  # the emulator dies with all it knew
    time.sleep(0.2)

    again = orca("local", "up")

    assert again.returncode == 0, again.stderr
    status = _status()
    assert status["pid"] != before["pid"]
    assert len(status["instances"]) == 3
    assert {i["ping_status"] for i in status["instances"]} == {"Online"}
    new_ids = {i["id"] for i in status["instances"]}
    assert not new_ids & set(three)  # a new emulator's instances: new ids
    assert {p.name for p in instances_dir(orca_home).iterdir()} == new_ids


def test_down_stops_what_the_instances_run_and_forgets_them(
    three: list[str], orca_home: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "command.pid"
    state = SandboxState(**_recorded(orca_home))  # type: ignore[arg-type]
    user = user_side_factory(orca_side_factory(get_settings(), state.endpoint_url))
    user.client("ssm").send_command(
        InstanceIds=[three[0]],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": [f"echo $$ > {pid_file}; sleep 600"]},
    )
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the command did not start on the instance"
        time.sleep(0.2)
    command_pid = int(pid_file.read_text())
    assert _alive(command_pid)

    down = orca("local", "down")

    assert down.returncode == 0 and "Stopped" in down.stdout
    assert not _alive(state.pid)
    assert not _alive(command_pid)
    assert not instances_dir(orca_home).exists()
    assert "not running" in in_process("local", "status").stdout


# --- in this process: pipelines and link check on the fleet ---------------------------------


def cli(*args: str) -> str:
    result = in_process(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def dev(prefect_server: Any, sandbox: SandboxState, ann: User) -> Actor:
    """Ann with a sandbox link `dev` (the sandbox runs its default fleet of 2)."""
    actor = Actor(ann.id, ann.email)
    create_local_link(get_settings(), actor, "dev")
    return actor


def test_a_pipeline_on_a_sandbox_link_runs_through_ssm_on_the_fleet(
    dev: Actor, tmp_path: Path
) -> None:
    script = tmp_path / "where.sh"
    script.write_text('#!/bin/bash\necho "ran with HOME=$HOME"\n')
    cli("pipeline", "add", "where", str(script), "--link", "dev")
    shown = json.loads(cli("pipeline", "show", "where", "--json"))
    run_id = cli("run", "start", "where").strip()

    worker = subprocess.run(
        [ORCA, "worker", "--max-runs", "1", "--idle-exit", "60"],
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert (shown["runner"], shown["target"]) == ("ssm", "tag:orca=enabled")
    assert worker.returncode == 0, worker.stderr
    run = json.loads(cli("run", "show", run_id, "--json"))
    assert run["state"] == "succeeded", run
    assert run["command_id"] and not run["command_id"].startswith("local-")
    homes = [
        instance_dir(get_settings().home, i.id) / "home" for i in fleet_instances(get_settings())
    ]
    assert any(f"ran with HOME={home}" in cli("run", "logs", run_id) for home in homes)


def test_link_check_verifies_the_fleet_and_fails_with_the_fix_when_every_agent_is_stopped(
    dev: Actor,
) -> None:
    settings = get_settings()
    fleet = fleet_instances(settings)

    online = {s.name: s for s in check_link(settings, dev, "dev").steps}["ssm targets"]
    for instance in fleet:
        assert set_agent(settings, instance.id, running=False).ping_status == "ConnectionLost"
    offline = check_link(settings, dev, "dev")
    step = {s.name: s for s in offline.steps}["ssm targets"]

    assert len(fleet) == 2
    assert online.status == CheckStatus.PASSED
    assert online.detail.startswith("2 instance(s) online")
    assert all(i.id in online.detail for i in fleet)
    assert not offline.passed and step.status == CheckStatus.FAILED
    assert "none online" in step.detail
    assert "orca local agent start" in step.fix
    assert all(agent_stopped_flag(settings.home, i.id).exists() for i in fleet)


def test_set_agent_refuses_an_instance_outside_the_fleet(dev: Actor) -> None:
    with pytest.raises(NotInFleetError, match="orca local status"):
        set_agent(get_settings(), "i-0123456789abcdef0", running=False)
