"""Orca's SSM path end to end on the sandbox: `orca worker` processes, SsmRunner, the
emulator's SSM API and its agent running the bootstrap on the emulated fleet.

Nothing here is stubbed: what a run did is read from the scripts' own ledger and files,
from SSM as the user's account sees it, and from the link's bucket.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orca_flows.services.pipelines import ScriptFile
from tests.execution.conftest import LINK, Ledger, Orca, Workers, gone, wait_until
from tests.execution.ssm_support import (
    FLEET_TARGET,
    Fleet,
    UserAccount,
    fleet_fixture,  # noqa: F401 - the `fleet` fixture
    user_account_fixture,  # noqa: F401 - the `user_account` fixture
)

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]

UNKNOWN_INSTANCE = "i-0123456789abcdef0"
# SSM's GetCommandInvocation keeps this much of a command's stdout.
SSM_STDOUT_LIMIT = 24_000
# A worker's lapsed lease is taken over within seconds (as in test_crash.py).
TAKEOVER = {"ORCA_WORKER_LEASE_SECONDS": "3", "ORCA_WORKER_VISIBILITY_SECONDS": "3"}


def _ssm_pipeline(
    orca: Orca, name: str, script: ScriptFile, target: str = FLEET_TARGET, **options: object
) -> None:
    orca.add_pipeline(name, script, runner="ssm", target=target, **options)


def test_a_run_printing_100_kb_succeeds_with_its_whole_log_and_its_output_in_s3(
    orca: Orca, ledger: Ledger, workers: Workers, fleet: Fleet, user_account: UserAccount
) -> None:
    # ~100 KB of stdout, four times what SSM keeps, then a last line and an output file.
    body = (
        "yes \"$(printf 'x%.0s' {1..90})\" | head -n 1100\n"
        'echo "last line of $ORCA_RUN_ID"\n'
        'echo "result of $ORCA_RUN_ID" >"$ORCA_OUTPUT_DIR/result.txt"'
    )
    _ssm_pipeline(orca, "loud", fleet.where_script(ledger, "loud", body))
    workers.start(1)
    run_id = orca.submit("loud")

    assert orca.wait_finished([run_id], timeout=45) == {run_id: "succeeded"}
    shown = orca.show(run_id)
    log = orca.cli("run", "logs", run_id)
    assert len(log) > 100_000 and f"last line of {run_id}" in log.splitlines()
    [output] = [uri for uri in shown["outputs"] if uri.endswith("/result.txt")]
    assert user_account.read(output) == f"result of {run_id}\n".encode()
    [instance] = fleet.ran_on(run_id)
    assert (shown["instance_id"], user_account.invoked_on(shown["command_id"])) == (
        instance,
        [instance],
    )
    invocation = user_account.invocation(shown["command_id"], instance)
    assert invocation["Status"] == "Success"
    # SSM's own copy of the bootstrap's output (the log) is cut where SSM cuts it.
    assert invocation["StandardOutputContent"] == log[:SSM_STDOUT_LIMIT]
    assert (len(ledger.starts(run_id)), len(ledger.ends(run_id))) == (1, 1)


def test_a_failing_script_fails_the_run_with_its_exit_code(
    orca: Orca, ledger: Ledger, workers: Workers, fleet: Fleet
) -> None:
    _ssm_pipeline(orca, "seven", fleet.where_script(ledger, "seven", "exit 7"))
    workers.start(1)
    run_id = orca.submit("seven")

    assert orca.wait_finished([run_id], timeout=45) == {run_id: "failed"}
    shown = orca.show(run_id)
    assert (shown["state"], shown["exit_code"]) == ("failed", 7)
    assert len(ledger.starts(run_id)) == 1 and ledger.ends(run_id) == []
    assert len(fleet.ran_on(run_id)) == 1


def test_a_script_past_its_timeout_is_killed_and_the_run_timed_out(
    orca: Orca, ledger: Ledger, workers: Workers, fleet: Fleet
) -> None:
    _ssm_pipeline(orca, "slow", fleet.where_script(ledger, "slow", "sleep 60"), timeout_seconds=2)
    workers.start(1)
    run_id = orca.submit("slow")

    assert orca.wait_finished([run_id], timeout=45) == {run_id: "timed_out"}
    assert len(ledger.starts(run_id)) == 1 and ledger.ends(run_id) == []
    assert len(fleet.ran_on(run_id)) == 1


def test_stop_kills_the_script_and_its_child_on_the_instance_and_the_key_moves_on(
    orca: Orca, ledger: Ledger, workers: Workers, fleet: Fleet, pid_file: Path
) -> None:
    body = f'sleep 300 &\necho "$$ $!" >{pid_file}.tmp && mv {pid_file}.tmp {pid_file}\nsleep 300'
    _ssm_pipeline(orca, "forever", fleet.where_script(ledger, "forever", body), ordering_key="k")
    _ssm_pipeline(orca, "next", ledger.script("next"), ordering_key="k")
    workers.start(1)
    forever, after = orca.submit("forever"), orca.submit("next")
    wait_until(pid_file.exists, 45, "the script started its child")
    script_pid, child_pid = map(int, pid_file.read_text().split())
    assert not gone(script_pid) and not gone(child_pid)
    assert len(fleet.ran_on(forever)) == 1

    orca.cli("run", "stop", forever)

    wait_until(lambda: gone(script_pid) and gone(child_pid), 30, "script and child killed")
    wait_until(lambda: orca.show(forever)["state"] == "cancelled", 30, "the stop confirmed")
    assert orca.wait_finished([after], timeout=45) == {after: "succeeded"}
    assert ledger.ends(forever) == [], "the stopped script ran to its end"
    assert orca.show(forever)["state"] == "cancelled"


def test_an_unknown_instance_fails_the_run_with_the_reason_and_the_key_moves_on(
    orca: Orca, ledger: Ledger, workers: Workers, fleet: Fleet
) -> None:
    _ssm_pipeline(orca, "nowhere", ledger.script("nowhere"), UNKNOWN_INSTANCE, ordering_key="k")
    _ssm_pipeline(orca, "next", fleet.where_script(ledger, "next"), ordering_key="k")
    workers.start(1)
    nowhere, after = orca.submit("nowhere"), orca.submit("next")

    assert orca.wait_finished([nowhere, after], timeout=45) == {
        nowhere: "failed",
        after: "succeeded",
    }
    error = orca.show(nowhere)["error"]
    assert "InvalidInstanceId" in error and UNKNOWN_INSTANCE in error, error
    assert ledger.starts(nowhere) == [] and len(ledger.starts(after)) == 1
    assert len(fleet.ran_on(after)) == 1


def test_with_every_agent_stopped_a_run_by_tag_fails_at_once_and_the_key_moves_on(
    orca: Orca, ledger: Ledger, workers: Workers, fleet: Fleet
) -> None:
    for instance_id in fleet.ids:
        fleet.set_agent(instance_id, running=False)
    assert set(fleet.ping_statuses().values()) == {"ConnectionLost"}
    _ssm_pipeline(orca, "offline", ledger.script("offline"), ordering_key="k")
    _ssm_pipeline(orca, "next", fleet.where_script(ledger, "next"), ordering_key="k")
    workers.start(1)
    offline = orca.submit("offline")

    assert orca.wait_finished([offline], timeout=30) == {offline: "failed"}
    error = orca.show(offline)["error"]
    assert f"No SSM-managed instance among {FLEET_TARGET} is online" in error, error
    for instance_id in fleet.ids:
        fleet.set_agent(instance_id, running=True)
    after = orca.submit("next")
    assert orca.wait_finished([after], timeout=45) == {after: "succeeded"}
    assert ledger.starts(offline) == [] and len(fleet.ran_on(after)) == 1


def test_a_run_on_an_offline_instance_fails_at_the_delivery_timeout_and_never_runs(
    orca: Orca, ledger: Ledger, workers: Workers, fleet: Fleet
) -> None:
    # An explicit instance id is sent to even while its agent is offline (as on AWS, SSM
    # keeps trying): the run fails once SSM gives up, with the reason, and never runs.
    offline_id = fleet.ids[0]
    fleet.set_agent(offline_id, running=False)
    _ssm_pipeline(orca, "offline", ledger.script("offline"), offline_id, ordering_key="k")
    _ssm_pipeline(orca, "next", fleet.where_script(ledger, "next"), ordering_key="k")
    workers.start(1, ORCA_SSM_DELIVERY_TIMEOUT_SECONDS="30")
    offline = orca.submit("offline")

    assert orca.wait_finished([offline], timeout=90) == {offline: "failed"}
    error = orca.show(offline)["error"]
    assert offline_id in error and "never ran" in error, error
    fleet.set_agent(offline_id, running=True)
    after = orca.submit("next")
    assert orca.wait_finished([after], timeout=45) == {after: "succeeded"}
    # Back online, the agent does not run the command SSM gave up on.
    assert ledger.starts(offline) == []


def test_a_worker_killed_mid_command_is_succeeded_by_one_that_resumes_the_same_command(
    orca: Orca, ledger: Ledger, workers: Workers, fleet: Fleet, user_account: UserAccount
) -> None:
    _ssm_pipeline(orca, "steady", fleet.where_script(ledger, "steady", "sleep 5"))
    [doomed] = workers.start(1, concurrency=1, **TAKEOVER)
    run_id = orca.submit("steady")
    wait_until(lambda: ledger.starts(run_id), 45, "the script started")
    command_id = orca.runs([run_id])[run_id]["command_id"]
    assert command_id is not None

    # The bootstrap runs under the instance's agent, not the worker: it lives on.
    doomed.kill()
    doomed.wait()
    killed_at = time.time()
    workers.start(1, concurrency=1, **TAKEOVER)

    assert orca.wait_finished([run_id], timeout=45) == {run_id: "succeeded"}
    assert ledger.ends(run_id)[0] > killed_at, "the run was not in the middle when killed"
    sent = user_account.commands_for(f"{run_id}-a1")
    assert [command["CommandId"] for command in sent] == [command_id], sent
    assert (len(ledger.starts(run_id)), len(ledger.ends(run_id))) == (1, 1)
    shown = orca.show(run_id)
    assert (shown["command_id"], shown["attempt"], shown["exit_code"]) == (command_id, 1, 0)
    assert len(fleet.ran_on(run_id)) == 1


def test_runs_by_tag_spread_over_both_instances_each_running_once_where_ssm_sent_it(
    orca: Orca, ledger: Ledger, workers: Workers, fleet: Fleet, user_account: UserAccount
) -> None:
    first, second = fleet.ids
    for index in range(4):
        _ssm_pipeline(
            orca, f"p{index}", fleet.where_script(ledger, f"p{index}"), ordering_key=f"k{index}"
        )
    workers.start(1, concurrency=4)

    def batch(count: int) -> list[str]:
        run_ids = [orca.submit(f"p{index}") for index in range(count)]
        states = orca.wait_finished(run_ids, timeout=45)
        assert set(states.values()) == {"succeeded"}, orca.runs(run_ids)
        return run_ids

    # Both online, runs go to either (chosen by run id); with one agent stopped, all go
    # to the other: so runs by tag do reach both instances, whatever the ids hash to.
    spread = batch(4)
    fleet.set_agent(second, running=False)
    only_first = batch(2)
    fleet.set_agent(second, running=True)
    fleet.set_agent(first, running=False)
    only_second = batch(2)

    where = {}
    for run_id in spread + only_first + only_second:
        assert (len(ledger.starts(run_id)), len(ledger.ends(run_id))) == (1, 1), run_id
        [where[run_id]] = fleet.ran_on(run_id)
        shown = orca.show(run_id)
        assert shown["instance_id"] == where[run_id]
        assert user_account.invoked_on(shown["command_id"]) == [where[run_id]]
    assert {where[r] for r in spread} <= {first, second}
    assert {where[r] for r in only_first} == {first}
    assert {where[r] for r in only_second} == {second}


def test_a_run_on_the_sandbox_reports_succeeded_only_if_its_script_ran_on_the_fleet(
    orca: Orca, workers: Workers, fleet: Fleet, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    text = f'#!/bin/bash\nprintf "%s %s\\n" "$ORCA_RUN_ID" "${{TMPDIR:-none}}" >{markers}/"$ORCA_RUN_ID"\n'
    script = tmp_path / "mark.sh"
    script.write_text(text)
    # As a new user would: no runner, no target; on the sandbox that means the fleet.
    orca.cli("pipeline", "add", "default", str(script), "--link", LINK, "--ordering-key", "k0")
    mark = ScriptFile("mark.sh", text.encode())
    _ssm_pipeline(orca, "by-tag", mark, ordering_key="k1")
    _ssm_pipeline(orca, "by-id", mark, fleet.ids[0], ordering_key="k2")
    _ssm_pipeline(orca, "unknown-id", mark, UNKNOWN_INSTANCE, ordering_key="k3")
    _ssm_pipeline(orca, "no-such-tag", mark, "tag:orca=nobody", ordering_key="k4")
    workers.start(1, concurrency=5)
    names = ["default", "by-tag", "by-id", "unknown-id", "no-such-tag"]
    run_ids = {name: orca.submit(name) for name in names}

    states = orca.wait_finished(list(run_ids.values()), timeout=45)

    instance_tmp = {str(fleet_dir / "tmp"): i for i, fleet_dir in fleet.dirs().items()}
    ran_on: dict[str, str | None] = {}
    for name, run_id in run_ids.items():
        marker = markers / run_id
        if states[run_id] == "succeeded":
            assert marker.exists(), f"{name}: run {run_id} succeeded, its script never ran"
        if marker.exists():
            marked_id, tmp = marker.read_text().split()
            assert marked_id == run_id
            ran_on[name] = instance_tmp.get(tmp, f"not on the fleet: {tmp}")
        else:
            ran_on[name] = None
    assert {name: states[run_id] for name, run_id in run_ids.items()} == {
        "default": "succeeded",
        "by-tag": "succeeded",
        "by-id": "succeeded",
        "unknown-id": "failed",
        "no-such-tag": "failed",
    }
    assert ran_on["default"] in fleet.ids and ran_on["by-tag"] in fleet.ids, ran_on
    assert ran_on["by-id"] == fleet.ids[0]
    assert ran_on["unknown-id"] is None and ran_on["no-such-tag"] is None
