"""`orca demo`: the whole product on the local sandbox, end to end.

Starts the sandbox (and a local Prefect server unless one is configured), creates a demo
user and a link to the sandbox, adds the example pipelines, submits runs on three ordering
keys, runs a worker until they are all finished, and reports states, durations, outputs
and an excerpt of one output. It stops what it started unless asked to keep it.

The runs take the production path: the ssm runner sends each one with SendCommand to the
sandbox's emulated EC2 fleet (by its tag), whose SSM agent runs the bootstrap.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orca_flows.domain.actor import Actor
from orca_flows.domain.states import RunState
from orca_flows.domain.views import RunView
from orca_flows.errors import NotFoundError
from orca_flows.examples import EXAMPLES
from orca_flows.local.sandbox import start_sandbox, stop_sandbox
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.services.link_check import check_link
from orca_flows.services.link_creation import create_local_link
from orca_flows.services.links import get_link
from orca_flows.services.pipelines import (
    SANDBOX_TARGET,
    ScriptFile,
    add_pipeline,
    show_pipeline,
    upload_version,
)
from orca_flows.services.run_outputs import read_output
from orca_flows.services.run_views import list_runs
from orca_flows.services.runs import submit_run, view_run
from orca_flows.services.users import add_user, resolve_actor
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
    report.add(
        "sandbox", f"AWS emulator {status.state.endpoint_url} (account {status.state.account_id})"
    )
    report.add(
        "instances",
        ", ".join(f"{i.id} {i.ping_status}" for i in status.instances)
        or "none (`orca local up --instances N`)",
    )
    try:
        # The use cases enter Orca's Prefect API themselves; the demo only reports which
        # one it is, and keeps it for the worker it runs.
        with prefect_api(settings) as api_url:
            report.add("prefect", (api_url or "ephemeral API").removesuffix("/api"))
            actor, run_ids = _prepare(settings, report)
            _execute(settings, actor, run_ids, progress)
            _collect(settings, report, actor, run_ids)
    finally:
        if not keep and not status.already_running:
            stop_sandbox(settings)
            report.stopped_sandbox = True
    return report


def _demo_actor(settings: OrcaSettings) -> Actor:
    try:
        return resolve_actor(settings, DEMO_EMAIL)
    except NotFoundError:
        return add_user(settings, DEMO_EMAIL, _DEMO_PASSWORD)


def _prepare(settings: OrcaSettings, report: DemoReport) -> tuple[Actor, list[str]]:
    actor = _demo_actor(settings)
    report.add("user", f"{actor.email} (password {_DEMO_PASSWORD!r})")
    try:
        link = get_link(settings, actor, DEMO_LINK)
    except NotFoundError:
        link = create_local_link(settings, actor, DEMO_LINK)
    check = check_link(settings, actor, DEMO_LINK)
    report.add(
        "link",
        f"{link.name}: {link.role_arn}; check "
        + ", ".join(f"{step.name} {step.status}" for step in check.steps),
    )
    for name, filename, key, _ in _PIPELINES:
        script = ScriptFile(filename, (EXAMPLES / filename).read_bytes())
        try:
            show_pipeline(settings, actor, name)
        except NotFoundError:
            add_pipeline(
                settings,
                actor,
                name,
                script,
                link_name=DEMO_LINK,
                runner="ssm",
                target=SANDBOX_TARGET,
                ordering_key=key,
                timeout_seconds=120,
            )
        else:
            upload_version(settings, actor, name, script)
    report.add(
        "pipelines",
        ", ".join(f"{name} ({filename}, key {key})" for name, filename, key, _ in _PIPELINES)
        + f"; runner ssm on {SANDBOX_TARGET}",
    )
    submitted = [
        submit_run(settings, actor, name, requested_by="demo")
        for name, _, _, count in _PIPELINES
        for _ in range(count)
    ]
    keys = {s.ordering_key for s in submitted}
    report.add(
        "submitted",
        f"{len(submitted)} runs on {len(keys)} ordering keys ({', '.join(sorted(keys))})",
    )
    return actor, [s.run_id for s in submitted]


def _views(
    settings: OrcaSettings, actor: Actor, run_ids: list[str], *, with_outputs: bool = False
) -> list[RunView]:
    """The demo's runs, oldest first (they are the demo user's newest)."""
    if with_outputs:  # one S3 listing per run: the demo has a handful
        return [view_run(settings, actor, run_id) for run_id in run_ids]
    wanted = set(run_ids)
    newest = list_runs(settings, actor, limit=len(run_ids))
    return [view for view in reversed(newest) if view.id in wanted]


def _execute(
    settings: OrcaSettings, actor: Actor, run_ids: list[str], progress: Callable[[str], None]
) -> None:
    """Run a worker until every demo run has finished, reporting each state change."""
    # The flow runs' own log lines (and the failing example's error) go to the Prefect
    # UI; the demo prints its own summary.
    logging.getLogger("prefect").setLevel(logging.CRITICAL)
    done = threading.Event()

    def watch() -> None:
        seen: dict[str, str] = {}
        while not done.is_set():
            for view in _views(settings, actor, run_ids):
                if seen.get(view.id) != view.state:
                    seen[view.id] = view.state
                    progress(
                        f"{time.strftime('%H:%M:%S')}  {view.pipeline} #{view.sequence}  {view.state}"
                    )
            done.wait(0.3)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        options = WorkerOptions(concurrency=3, max_runs=len(run_ids), idle_exit=60)
        asyncio.run(Worker(settings, options).run())
    finally:
        done.set()
        watcher.join()


def _seconds(view: RunView) -> float | None:
    return view.duration_seconds


def _collect(settings: OrcaSettings, report: DemoReport, actor: Actor, run_ids: list[str]) -> None:
    views = _views(settings, actor, run_ids, with_outputs=True)
    for view in views:
        report.runs.append(
            DemoRun(
                view.id,
                view.pipeline,
                view.ordering_key,
                view.sequence,
                view.state,
                view.exit_code,
                _seconds(view),
                list(view.outputs),
            )
        )
    etl = next(
        (v for v in views if v.pipeline == "sales-etl" and v.state == RunState.SUCCEEDED), None
    )
    csv = (
        next((uri for uri in etl.outputs if uri.endswith("/sales_by_region.csv")), None)
        if etl
        else None
    )
    if etl is not None and csv is not None:
        report.excerpt = (csv, read_output(settings, actor, etl.id, csv).decode())
