"""P7: what every `orca` command pays before it does anything, against `prefect --help`.

Run it from the repository root::

    .venv/bin/python bench/cli_startup.py            # 5 runs of each command (~1 minute)
    .venv/bin/python bench/cli_startup.py --runs 9

Whole-process CPU seconds (user + system, the command and its children) of each command,
median of ``--runs``, measured side by side in one run with the load average, and printed
as ratios against `prefect --help` on the same machine. `orca run list --json` runs on an
empty SQLite database in a temporary ORCA_HOME (a user with no runs): its start-up, not
its query. Starts nothing else; asserts nothing.

Goals (issue 13): `orca --help` <= 0.5 x `prefect --help`; `orca run list --json` <= 1 x.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent


def _cpu_seconds(command: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user + system) of ``command`` and everything it started."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (5)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="orca-bench-cli-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCA_", "PREFECT_"))}
    env |= {"ORCA_HOME": str(home), "ORCA_USER": "bench@example.com"}
    print(f"P7: {args.runs} runs of 3 commands, ORCA_HOME {home}; about a minute.", flush=True)
    subprocess.run([str(BIN / "orca"), "db", "upgrade"], env=env, capture_output=True, check=True)
    subprocess.run(
        [str(BIN / "orca"), "user", "add", "bench@example.com", "--password-stdin"],
        input=b"a bench password 123\n",
        env=env,
        capture_output=True,
        check=True,
    )
    commands = {
        "prefect --help": [str(BIN / "prefect"), "--help"],
        "orca --help": [str(BIN / "orca"), "--help"],
        "orca run list --json": [str(BIN / "orca"), "run", "list", "--json"],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(1, args.runs + 1):  # interleaved: load changes hit every command
        for name, command in commands.items():
            samples[name].append(_cpu_seconds(command, env))
        print(f"  round {round_}/{args.runs} done", flush=True)
    median = {name: statistics.median(values) for name, values in samples.items()}
    baseline = median["prefect --help"]
    print(f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(f"{'command':<24} {'CPU s (median)':>15} {'x prefect --help':>17} {'goal':>6}")
    goals = {"orca --help": 0.5, "orca run list --json": 1.0}
    for name, value in median.items():
        goal = f"{goals[name]:.2f}" if name in goals else ""
        print(f"{name:<24} {value:>15.2f} {value / baseline:>17.2f} {goal:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
