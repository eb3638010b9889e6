"""`orca demo`: the whole product on the local sandbox, end to end.

Starts the sandbox (and a local Prefect server unless one is configured), creates a demo
user and a link to the sandbox, adds the example pipelines, submits runs on three ordering
keys, runs a worker until they are all finished, and reports states, durations, outputs
and an excerpt of one output. It stops what it started unless asked to keep it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orca_flows.db.engine import session_scope
from orca_flows.db.models import Run
from orca_flows.domain.states import RunState
from orca_flows.db.repositories.links import get_link_by_name
from orca_flows.db.repositories.pipelines import get_pipeline_by_name
from orca_flows.db.repositories.users import get_user_by_email
from orca_flows.examples import EXAMPLES
from orca_flows.services.link_check import check_link
from orca_flows.services.links import create_local_link, link_access
from orca_flows.services.pipelines import ScriptFile, add_pipeline, upload_version
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.services.runs import submit_run, view_run
from orca_flows.local.sandbox import start_sandbox, stop_sandbox
from orca_flows.services.users import add_user
from orca_flows.settings import OrcaSettings
from orca_flows.worker import Worker, WorkerOptions

__all__ = ["DEMO_EMAIL", "DemoReport", "DemoRun", "run_demo"]

DEMO_EMAIL = "demo@orca.example"
DEMO_LINK = "sandbox"
_DEMO_PASSWORD = "orca-demo-password"  # local sandbox only; printed in the demo's output
# (pipeline, example file, ordering key, runs to submit)
_PIPELINES = (
    ("sales-etl", "etl.py", "pipeline", 3),
    ("host-report", "report.sh", "reports", 2),
    ("broken-extract", "fail.sh", "pipeline", 1),
)


@dataclass(frozen=True)
class DemoRun:
    """One run's outcome as the demo reports it."""

    run_id: str
    pipeline: str
    ordering_key: str
    sequence: int
    state: str
    exit_code: int | None
    seconds: float | None
    outputs: list[str]


@dataclass
class DemoReport:
    """What the demo did, for the CLI to print."""

    steps: list[tuple[str, str]] = field(default_factory=list)
    runs: list[DemoRun] = field(default_factory=list)
    excerpt: tuple[str, str] | None = None
    stopped_sandbox: bool = False

    def add(self, step: str, result: str) -> None:
        """Record one setup step and its visible result."""
        self.steps.append((step, result))


def run_demo(
    settings: OrcaSettings,
    *,
    keep: bool = False,
    progress: Callable[[str], None] = lambda line: None,
) -> DemoReport:
    """Run the demo; ``progress`` receives a line for every run state change."""
    report = DemoReport()
    status = start_sandbox(settings)
    assert status.state is not None
    report.add("sandbox", f"AWS emulator {status.state.endpoint_url} (account {status.state.account_id})")
    try:
        with prefect_api(settings) as api_url:
            report.add("prefect", (api_url or "ephemeral API").removesuffix("/api"))
            owner_id, run_ids = _prepare(settings, report)
            _execute(settings, run_ids, progress)
            _collect(settings, report, owner_id, run_ids)
    finally:
        if not keep and not status.already_running:
            stop_sandbox(settings)
            report.stopped_sandbox = True
    return report


def _prepare(settings: OrcaSettings, report: DemoReport) -> tuple[int, list[str]]:
    with session_scope(settings.effective_database_url) as session:
        user = get_user_by_email(session, DEMO_EMAIL) or add_user(session, DEMO_EMAIL, _DEMO_PASSWORD)
        report.add("user", f"{user.email} (password {_DEMO_PASSWORD!r})")
        link = get_link_by_name(session, user.id, DEMO_LINK) or create_local_link(
            session, settings, user, DEMO_LINK
        )
        check = check_link(session, user, DEMO_LINK)
        report.add("link", f"{link.name}: {link.role_arn}; check " + ", ".join(
            f"{step.name} {step.status}" for step in check.steps
        ))
        for name, filename, key, _ in _PIPELINES:
            script = ScriptFile(filename, (EXAMPLES / filename).read_bytes())
            if get_pipeline_by_name(session, user.id, name) is None:
                add_pipeline(session, settings, user, name, script, link_name=DEMO_LINK,
                             ordering_key=key, timeout_seconds=120)
            else:
                upload_version(session, settings, user, name, script)
        owner_id = user.id
    report.add("pipelines", ", ".join(f"{name} ({filename}, key {key})" for name, filename, key, _ in _PIPELINES))
    submitted = [
        submit_run(settings, owner_id, name, requested_by="demo")
        for name, _, _, count in _PIPELINES
        for _ in range(count)
    ]
    keys = {s.ordering_key for s in submitted}
    report.add("submitted", f"{len(submitted)} runs on {len(keys)} ordering keys ({', '.join(sorted(keys))})")
    return owner_id, [s.run_id for s in submitted]


def _states(settings: OrcaSettings, run_ids: list[str]) -> dict[str, tuple[str, str, int]]:
    with session_scope(settings.effective_database_url) as session:
        runs = session.query(Run).filter(Run.id.in_(run_ids)).all()
        return {run.id: (run.state, run.pipeline.name, run.sequence) for run in runs}


def _execute(settings: OrcaSettings, run_ids: list[str], progress: Callable[[str], None]) -> None:
    """Run a worker until every demo run has finished, reporting each state change."""
    # The flow runs' own log lines (and the failing example's error) go to the Prefect
    # UI; the demo prints its own summary.
    logging.getLogger("prefect").setLevel(logging.CRITICAL)
    done = threading.Event()

    def watch() -> None:
        seen: dict[str, str] = {}
        while not done.is_set():
            for run_id, (state, pipeline, sequence) in _states(settings, run_ids).items():
                if seen.get(run_id) != state:
                    seen[run_id] = state
                    progress(f"{time.strftime('%H:%M:%S')}  {pipeline} #{sequence}  {state}")
            done.wait(0.3)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        options = WorkerOptions(concurrency=3, max_runs=len(run_ids), idle_exit=60)
        asyncio.run(Worker(settings, options).run())
    finally:
        done.set()
        watcher.join()


def _collect(settings: OrcaSettings, report: DemoReport, owner_id: int, run_ids: list[str]) -> None:
    with session_scope(settings.effective_database_url) as session:
        runs = session.query(Run).filter(Run.id.in_(run_ids)).order_by(Run.requested_at).all()
        for run in runs:
            view = view_run(run)
            seconds = (
                (run.finished_at - run.started_at).total_seconds()
                if run.finished_at and run.started_at else None
            )
            report.runs.append(DemoRun(run.id, view.pipeline, run.ordering_key, run.sequence,
                                       run.state, run.exit_code, seconds, view.outputs))
        etl = next((r for r in runs if r.pipeline.name == "sales-etl" and r.state == RunState.SUCCEEDED), None)
        if etl is not None:
            bucket = link_access(etl.pipeline.link).user_bucket(owner_id)
            relative = f"{etl.pipeline.name}/runs/{etl.id}/outputs/sales_by_region.csv"
            report.excerpt = (bucket.uri(relative), bucket.get(relative).decode())
