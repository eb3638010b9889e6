"""A run's message that comes back while the run executes never starts a second execution."""

from __future__ import annotations

import json
import urllib.request

import pytest

from orca_flows.local.sandbox import SandboxState
from tests.execution.conftest import Ledger, Orca, Workers

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]


def _receive_counts(sandbox: SandboxState) -> dict[str, int]:
    """How many times the emulator handed out each run's message, deleted ones included.

    Read from moto's model dump: SQS forgets a message once it is deleted.
    """
    with urllib.request.urlopen(
        f"{sandbox.endpoint_url}/moto-api/data.json", timeout=10
    ) as response:
        messages = json.load(response)["sqs"]["Message"]
    counts: dict[str, int] = {}
    for message in messages:  # moto also tracks a copy per receive: keep the highest count
        try:
            run_id = json.loads(message["body"])["run_id"]
        except (ValueError, KeyError, TypeError):
            continue  # not a run's message
        counts[run_id] = max(counts.get(run_id, 0), message["approximate_receive_count"])
    return counts


def test_a_run_redelivered_mid_run_executes_once(
    orca: Orca, ledger: Ledger, workers: Workers, sandbox: SandboxState
) -> None:
    # The message hides for 2 s only and no heartbeat extends it: during the 8 s script the
    # queue hands it out again and again, to whichever of the two workers asks. (A lease
    # that lapses too is the stalled-worker case in test_crash.py.)
    workers.start(
        2,
        concurrency=2,
        ORCA_WORKER_VISIBILITY_SECONDS="2",
        ORCA_WORKER_HEARTBEAT_SECONDS="60",
        ORCA_WORKER_LEASE_SECONDS="60",
    )
    orca.add_pipeline("slow", ledger.script("slow", "sleep 8"), ordering_key="shared")
    orca.add_pipeline("quick", ledger.script("quick"), ordering_key="shared")
    orca.add_pipeline("other", ledger.script("other", "sleep 8"))
    slow, other, quick = orca.submit("slow"), orca.submit("other"), orca.submit("quick")

    runs = orca.wait_finished([slow, other, quick], timeout=90)

    assert runs == {slow: "succeeded", other: "succeeded", quick: "succeeded"}
    redelivered = _receive_counts(sandbox)
    assert redelivered[slow] >= 2 and redelivered[other] >= 2, redelivered
    for run_id in (slow, other, quick):
        assert (len(ledger.starts(run_id)), len(ledger.ends(run_id))) == (1, 1), run_id
    assert ledger.starts(quick)[0] >= ledger.ends(slow)[0], "the next run of the key overlapped"
    assert {run["attempt"] for run in orca.runs([slow, other, quick]).values()} == {1}
