"""The production profile on one machine: a burst over many keys through three workers, with
Prefect on PostgreSQL and Orca on MariaDB, every run once, in order per key, and no Prefect
request answered 503 (or 429) on the way. Run alone with ``-m profile``."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from orca_flows.db.models import Run
from orca_flows.domain.states import FINISHED_RUN_STATES
from orca_flows.local.profile import Profile, start_profile
from orca_flows.local.servers import find_mariadbd, find_postgres
from tests.execution.conftest import Ledger

pytestmark = [
    pytest.mark.profile,
    # `make test` sets ORCA_REQUIRE_PROFILE: there a missing server fails instead.
    pytest.mark.skipif(
        (find_postgres() is None or find_mariadbd() is None)
        and not os.environ.get("ORCA_REQUIRE_PROFILE"),
        reason="needs Debian's postgresql and mariadb-server (.ci/run installs them)",
    ),
]

KEYS = 10
RUNS_PER_KEY = 4

# Adds one pipeline per key and submits the burst interleaved across keys, in one process
# of the profile's own environment (as a web app or a schedule would submit).
_BURST = """
import json, sys
from orca_flows.cli.common import acting
from orca_flows.services.pipelines import ScriptFile, add_pipeline
from orca_flows.services.runs import submit_run
scripts, rounds = json.loads(sys.stdin.read()), int(sys.argv[1])
settings, actor = acting(None)
for name, script in scripts.items():
    add_pipeline(settings, actor, name, ScriptFile("job.sh", script.encode()), link_name="dev")
ids = [submit_run(settings, actor, name, requested_by="api").run_id
       for _ in range(rounds) for name in scripts]
print(json.dumps(ids))
"""
# uvicorn's access-log lines (`... "POST /api/x HTTP/1.1" 503`) whose answer a Prefect
# client retries (429, 503) or that failed on the server (5xx).
_ACCESS_OK = re.compile(r'"POST /api/\S+ HTTP/[\d.]+" 20\d\b')
_RETRIED = re.compile(r'HTTP/[\d.]+" (429|5\d\d)\b')


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[Profile]:
    started = start_profile(tmp_path / "profile", workers=3, with_ui=False, progress=print)
    yield started
    started.stop()


def _runs(profile: Profile, run_ids: list[str]) -> list[Run]:
    engine = create_engine(profile.env["ORCA_DATABASE_URL"])
    try:
        with Session(engine) as session:
            return list(session.scalars(select(Run).where(Run.id.in_(run_ids))))
    finally:
        engine.dispose()


def _wait_finished(profile: Profile, run_ids: list[str], timeout: float) -> list[Run]:
    deadline = time.monotonic() + timeout
    while True:
        runs = _runs(profile, run_ids)
        if len(runs) == len(run_ids) and all(run.state in FINISHED_RUN_STATES for run in runs):
            return runs
        if time.monotonic() > deadline:
            states = {run.id: run.state for run in runs}
            pytest.fail(f"runs not finished in {timeout:.0f} s: {states}")
        time.sleep(1)


def test_a_burst_over_many_keys_through_three_workers(profile: Profile, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.txt")
    scripts = {
        f"key-{n}": ledger.script(f"key-{n}", "sleep 0.2").content.decode() for n in range(KEYS)
    }
    burst = subprocess.run(
        [sys.executable, "-c", _BURST, str(RUNS_PER_KEY)],
        input=json.dumps(scripts),
        env=profile.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert burst.returncode == 0, burst.stderr
    run_ids = json.loads(burst.stdout.splitlines()[-1])

    runs = _wait_finished(profile, run_ids, timeout=600)

    assert {run.state for run in runs} == {"succeeded"}, {r.id: r.error_summary for r in runs}
    for run in runs:  # exactly once each
        assert (len(ledger.starts(run.id)), len(ledger.ends(run.id))) == (1, 1), run.id
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        by_key.setdefault(run.ordering_key, []).append(run)
    assert sorted(len(key_runs) for key_runs in by_key.values()) == [RUNS_PER_KEY] * KEYS
    for key, key_runs in by_key.items():
        in_sequence = sorted(key_runs, key=lambda run: run.sequence)
        for earlier, later in itertools.pairwise(in_sequence):
            assert ledger.ends(earlier.id)[0] <= ledger.starts(later.id)[0], (
                f"key {key}: seq {later.sequence} started before seq {earlier.sequence} ended"
            )
    served = [
        log.name
        for log in profile.logs.glob("worker-*.log")
        if any(run_id in log.read_text() for run_id in run_ids)
    ]
    assert len(served) > 1, f"only {served} executed runs"  # SQS spread the work

    server_log = (profile.logs / "prefect-server.log").read_text()
    assert _ACCESS_OK.search(server_log), "the server's access log is not on"
    retried = [line for line in server_log.splitlines() if _RETRIED.search(line)]
    assert retried == [], "Prefect answered (clients retried):\n" + "\n".join(retried[:20])


def test_the_access_log_check_sees_what_clients_retry() -> None:
    # The burst's assertion reads these lines; it must see a 503 when one is there.
    lines = {
        '127.0.0.1:5 - "POST /api/flow_runs/ HTTP/1.1" 503': True,
        '127.0.0.1:5 - "POST /api/events/ HTTP/1.1" 429': True,
        '127.0.0.1:5 - "GET /api/health HTTP/1.1" 500': True,
        '127.0.0.1:5 - "POST /api/flow_runs/filter HTTP/1.1" 200': False,
        '127.0.0.1:5 - "GET /api/flow_runs/5030 HTTP/1.1" 404': False,
    }
    assert {line: bool(_RETRIED.search(line)) for line in lines} == lines
