"""Runs of one ordering key start in sequence order and never overlap; other keys run alongside."""

from __future__ import annotations

import itertools

import pytest

from tests.execution.conftest import Ledger, Orca, Workers

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]

# Three ordering keys: two custom keys each shared by two pipelines (order is per key, not
# per pipeline), and one pipeline on the default key (its own).
PIPELINES = {
    "alpha-1": "alpha",
    "alpha-2": "alpha",
    "beta-1": "beta",
    "beta-2": "beta",
    "gamma": "pipeline",
}
RUNS_PER_KEY = 5


def _script_body(ledger: Ledger, key: str) -> str:
    """Bash: half a second of work; the first run of ``key`` first waits (15 s at most) for
    a run of another key to start. Keys that may run in parallel then visibly do; keys that
    were serialized would wait in vain, and the overlap assertion fails."""
    return f"""
if [ "$(grep -c "^start {key} " {ledger.path})" -eq 1 ]; then
    for _ in $(seq 150); do
        [ "$(awk '$1 == "start" {{print $2}}' {ledger.path} | sort -u | wc -l)" -ge 2 ] && break
        sleep 0.1
    done
fi
sleep 0.5"""


def _submissions() -> list[str]:
    """Pipelines to run, interleaved across keys as several users' clicks would arrive."""
    by_key = [
        itertools.islice(itertools.cycle(["alpha-1", "alpha-2"]), RUNS_PER_KEY),
        itertools.islice(itertools.cycle(["beta-2", "beta-1"]), RUNS_PER_KEY),
        ["gamma"] * RUNS_PER_KEY,
    ]
    return [name for round_ in zip(*by_key, strict=True) for name in round_]


def test_each_key_runs_in_order_without_overlap_while_keys_run_in_parallel(
    orca: Orca, ledger: Ledger, workers: Workers
) -> None:
    workers.start(2, concurrency=3)
    for name, key in PIPELINES.items():
        stamp_key = name if key == "pipeline" else key
        script = ledger.script(stamp_key, _script_body(ledger, stamp_key))
        orca.add_pipeline(name, script, ordering_key=key)
    run_ids = [orca.submit(name) for name in _submissions()]

    states = orca.wait_finished(run_ids, timeout=150)

    assert set(states.values()) == {"succeeded"}, states
    runs = list(orca.runs(run_ids).values())
    assert all(run["attempt"] == 1 and run["exit_code"] == 0 for run in runs), runs
    for run in runs:  # exactly once each: one start, one end
        assert (len(ledger.starts(run["id"])), len(ledger.ends(run["id"]))) == (1, 1), run["id"]
    by_key: dict[str, list[dict]] = {}
    for run in runs:
        by_key.setdefault(run["ordering_key"], []).append(run)
    assert sorted(len(key_runs) for key_runs in by_key.values()) == [RUNS_PER_KEY] * 3
    for key, key_runs in by_key.items():
        in_sequence = sorted(key_runs, key=lambda run: run["sequence"])
        by_start = sorted(key_runs, key=lambda run: ledger.starts(run["id"])[0])
        assert [r["sequence"] for r in by_start] == [r["sequence"] for r in in_sequence], key
        for earlier, later in itertools.pairwise(in_sequence):
            assert ledger.ends(earlier["id"])[0] <= ledger.starts(later["id"])[0], (
                f"key {key}: seq {later['sequence']} started before seq {earlier['sequence']} ended"
            )
    spans = [
        (run["ordering_key"], ledger.starts(run["id"])[0], ledger.ends(run["id"])[0])
        for run in runs
    ]
    assert any(
        a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a, b in itertools.combinations(spans, 2)
    ), "no two runs of different ordering keys ran at the same time"
