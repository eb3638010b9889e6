"""Task Summary render time with 10,000 runs, against a baseline measured in the same run.

Run it from the repository root::

    .venv/bin/python bench/ui_summary.py              # 10,000 runs, 15 renders per case
    .venv/bin/python bench/ui_summary.py --help       # other sizes, a MySQL URL, repetitions

Self-contained: a temporary ORCA_HOME (SQLite, or ``--database-url``), two users made with
Orca's services, one with no runs (the baseline: the page's fixed cost - router, widgets,
queries on empty tables) and one with N runs over 5 pipelines and 30 days. The page is
rendered in-process by Streamlit's AppTest: each figure is one full script run of the
page in a signed-in session, as the server runs it for a browser (without the websocket). No AWS or Prefect is needed: the page reads the database only.

It prints figures and asserts nothing. The goal (issue 6) is a render of at most 1 s with
10,000 runs; the extra cost over the baseline is what the runs add.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUTER = ROOT / "ui" / "streamlit_app.py"
PASSWORD = "bench password 123"
STATES = ("succeeded",) * 7 + ("failed", "timed_out", "cancelled")
PIPELINES = ("ingest", "clean", "report", "backup", "export")


def _populate(owner_id: int, runs: int) -> None:
    """A link, five pipelines and ``runs`` finished runs, inserted in bulk."""
    from sqlalchemy import insert

    from orca_flows.db.engine import session_scope
    from orca_flows.db.models import OrderingKeyCounter, Run
    from orca_flows.db.repositories import links, pipelines
    from orca_flows.settings import get_settings

    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / max(runs, 1)
    with session_scope(get_settings().effective_database_url) as session:
        link = links.create_link(
            session,
            owner_id=owner_id,
            name="bench",
            region="us-east-1",
            block_document_name="orca-link-bench",
        )
        versions = []
        for name in PIPELINES:
            pipeline = pipelines.create_pipeline(
                session,
                owner_id=owner_id,
                name=name,
                link_id=link.id,
                runner="local",
                ordering_key="pipeline",
                timeout_seconds=600,
                retries=0,
                environment={},
            )
            version = pipelines.add_script_version(
                session,
                pipeline,
                s3_key=f"orca/{owner_id}/{name}/scripts/v1/job.sh",
                sha256="0" * 64,
                size_bytes=1,
                uploaded_by=owner_id,
            )
            versions.append((pipeline.id, version.id))
        rows = []
        for index in range(runs):
            pipeline_id, version_id = versions[index % len(versions)]
            requested = start + step * index
            started = requested + timedelta(seconds=2)
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "owner_id": owner_id,
                    "pipeline_id": pipeline_id,
                    "script_version_id": version_id,
                    "ordering_key": f"p-{pipeline_id}",
                    "sequence": index // len(versions) + 1,
                    "state": STATES[index % len(STATES)],
                    "requested_at": requested,
                    "requested_by": f"user:{owner_id}",
                    "attempt": 1,
                    "started_at": started,
                    "finished_at": started + timedelta(seconds=30 + index % 90),
                    "exit_code": 0,
                    "s3_prefix": f"orca/{owner_id}/runs/{index}/",
                }
            )
        session.execute(insert(Run), rows)
        session.execute(
            insert(OrderingKeyCounter),
            [
                {"ordering_key": f"p-{pid}", "last_sequence": runs // len(versions) + 1}
                for pid, _ in versions
            ],
        )


def _render_seconds(
    user_id: int, email: str, repeat: int, widgets: dict[str, object] | None
) -> list[float]:
    """``repeat`` full script runs of Task Summary in one browser session of the user.

    One AppTest per case, warmed by a first run: a new AppTest pays ~0.3 s of its own
    (mock runtime, component discovery) that a browser session does not.
    """
    from streamlit.testing.v1 import AppTest

    from ui.session import USER_KEY, SignedIn

    app = AppTest.from_file(str(ROUTER), default_timeout=120)
    app.session_state[USER_KEY] = SignedIn(user_id, email)
    app.run()
    for label, value in (widgets or {}).items():
        next(w for w in [*app.selectbox, *app.multiselect] if w.label == label).set_value(value)
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        app.run()
        samples.append(time.perf_counter() - began)
        if app.exception or app.title[0].value != "Task Summary":
            raise SystemExit(f"the page failed: {app.exception}")
    return samples


def _figures(name: str, samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    figures = {"median": statistics.median(samples), "p95": p95, "max": ordered[-1]}
    print(
        f"{name:<44} median {figures['median'] * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
        f"max {figures['max'] * 1000:7.1f} ms   (n={len(samples)})"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000, help="runs of the measured user")
    parser.add_argument("--repeat", type=int, default=15, help="renders per case")
    parser.add_argument("--database-url", help="ORCA_DATABASE_URL (default: SQLite in a temp dir)")
    options = parser.parse_args()

    home = tempfile.TemporaryDirectory(prefix="orca-bench-ui-")
    os.environ["ORCA_HOME"] = home.name
    if options.database_url:
        os.environ["ORCA_DATABASE_URL"] = options.database_url
    sys.path.insert(0, str(ROOT))
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)  # AppTest's bare-mode warnings

    from orca_flows.services.users import add_user
    from orca_flows.settings import get_settings

    empty = add_user(get_settings(), "baseline@bench.example", PASSWORD)
    busy = add_user(get_settings(), "busy@bench.example", PASSWORD)
    began = time.perf_counter()
    _populate(busy.user_id, options.runs)
    print(
        f"database: {get_settings().effective_database_url.split('://')[0]}; "
        f"{options.runs:,} runs inserted in {time.perf_counter() - began:.1f} s"
    )

    began = time.perf_counter()
    _render_seconds(empty.user_id, empty.email, 1, None)  # imports and first connections
    print(
        f"first render of the process (imports, engine): {(time.perf_counter() - began) * 1000:.0f} ms (excluded)"
    )
    cases = {
        "baseline: Task Summary, user with 0 runs": (empty, None),
        f"Task Summary, user with {options.runs:,} runs": (busy, None),
        "  filtered (pipeline=report, state=failed)": (
            busy,
            {"Pipeline": "report", "State": ["failed"]},
        ),
    }
    results = {}
    for name, (user, widgets) in cases.items():
        results[name] = _figures(
            name, _render_seconds(user.user_id, user.email, options.repeat, widgets)
        )
    base, loaded = list(results.values())[:2]
    print(
        f"runs add {1000 * (loaded['median'] - base['median']):.1f} ms to the median render "
        f"({loaded['median'] / base['median']:.2f}x the baseline); goal: render <= 1000 ms "
        f"-> median {'meets' if loaded['median'] <= 1 else 'MISSES'} it, "
        f"p95 {'meets' if loaded['p95'] <= 1 else 'MISSES'} it"
    )
    home.cleanup()


if __name__ == "__main__":
    main()
