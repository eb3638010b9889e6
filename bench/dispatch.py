"""Dispatch benchmark: Orca's worker against a Prefect process worker and against the floor.

Run it from the repository root::

    .venv/bin/python bench/dispatch.py            # P1, P2 and P5: 5-6 min on 2 idle cores
    .venv/bin/python bench/dispatch.py --help     # fewer repetitions, fewer runs, keep files

It is self-contained: a temporary ORCA_HOME and PREFECT_HOME, the local sandbox (moto on a
free 127.0.0.1 port) with its own Prefect server (another free port), a user, a local link
and the pipelines, all made through Orca's services; everything it started is stopped at the
end and the temporary directory removed (unless ``--keep``).

It prints figures, it asserts nothing (see docs/performance.md for what they mean):

P1  submit -> script-start latency of Orca's worker / that of a Prefect process worker
    running the same no-op script (a deployment whose flow runs the script with
    subprocess, served by ``prefect worker start --type process``). Goal <= 0.1.
P2  50 no-op runs through Orca (submit all, one worker, until all are finished) / the bare
    floor: the same bootstrap and the same AWS calls in a plain sequential loop, without
    database or Prefect (half of it before Orca's batch, half after). Both sides at
    concurrency 1: one pipeline is one FIFO group, which Orca runs strictly in order.
    Goal <= 1.5.
P5  peak RSS (VmHWM) of ``orca worker --concurrency 8`` with 16 short runs queued (16
    pipelines, so 16 FIFO groups; each script sleeps 3 s), and
    separately the peak of the summed RSS of its descendants (bootstraps, aws CLI,
    scripts). Goal <= 250 MB for the worker.

The script of every measured run writes ``$EPOCHREALTIME`` to a file whose absolute path is
baked into it; that line is "script start".
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
EMAIL = "bench@orca.example"
LINK = "bench"
NOOP = "noop"
PREFECT_POOL = "orca-bench-process"
PREFECT_FLOW = "orca-bench-noop"
PREFECT_DEPLOYMENT = "noop"

# The Prefect client logs its retries at DEBUG: counted to explain stalls (see _retries_503).
CLIENT_DEBUG = {"PREFECT_LOGGING_LOGGERS_PREFECT_CLIENT_LEVEL": "DEBUG"}

GOAL_P1 = 0.1
GOAL_P2 = 1.5
GOAL_P5_MB = 250.0


# --- small helpers ------------------------------------------------------------------------


def _isolate_environment(tmp: Path) -> None:
    """Point Orca and Prefect at the temporary directory before either is imported."""
    for name in list(os.environ):
        if name.startswith(("ORCA_", "PREFECT_", "AWS_")):
            del os.environ[name]
    os.environ.update(
        ORCA_HOME=str(tmp / "orca-home"),
        PREFECT_HOME=str(tmp / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    (tmp / "prefect-home").mkdir(parents=True, exist_ok=True)


def _wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


class Stamps:
    """The file every benchmark script appends ``$EPOCHREALTIME`` to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def lines(self) -> list[float]:
        complete = self.path.read_text().split("\n")[:-1]  # a line is there once its \n is
        return [float(line.replace(",", ".")) for line in complete if line.strip()]

    def count(self) -> int:
        return len(self.lines())

    def wait_for(self, count: int, timeout: float) -> float:
        """The stamp number ``count`` (1-based), once it is there."""
        lines = _wait_until(
            lambda: (ls := self.lines()) and len(ls) >= count and ls,
            timeout,
            f"script start #{count}",
            every=0.005,
        )
        return lines[count - 1]


def _descendants(root: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of every live descendant of ``root`` (one /proc scan)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        parent = todo.pop()
        for child in children.get(parent, []):
            found.append((child, parent))
            todo.append(child)
    return found


def _retries_503(log: Path) -> int:
    """How often the worker's Prefect client was answered 503 and backed off (2, 4, 8, 16 s).

    A Prefect server on SQLite answers 503 when its database is locked by another write.
    """
    try:
        return log.read_text(errors="replace").count("retryable status code 503")
    except OSError:
        return 0


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def _status_kb(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Proc:
    """A background process this benchmark started, in its own session."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _spawn(name: str, command: list[str], env: dict[str, str], log: Path, cwd: Path) -> Proc:
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Proc(name, process, log)


# --- the benchmark ------------------------------------------------------------------------


@dataclass
class Results:
    lines: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)


class Bench:
    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        self.tmp = tmp
        self.args = args
        self.out = Results()
        self.stack = contextlib.ExitStack()
        self.procs: list[Proc] = []
        self.stamps = Stamps(tmp / "stamps.txt")
        # One no-op script, byte for byte the same for Orca and for Prefect.
        self.noop_script = (
            f"#!/bin/bash\nprintf '%s\\n' \"$EPOCHREALTIME\" >>'{self.stamps.path}'\n"
        ).encode()
        self.noop_path = tmp / "noop.sh"
        self.noop_path.write_bytes(self.noop_script)
        # P5: short runs that overlap (each holds a slot for a few seconds).
        self.short_script = b"#!/bin/bash\nsleep 3\n"

    # --- setup / teardown -----------------------------------------------------------------

    def setup(self) -> None:
        from orca_flows.local.sandbox import start_sandbox, stop_sandbox
        from orca_flows.prefect_adapter.api import prefect_api
        from orca_flows.services.link_creation import create_local_link
        from orca_flows.services.pipelines import ScriptFile, add_pipeline
        from orca_flows.services.users import add_user
        from orca_flows.settings import get_settings

        self.settings = get_settings()
        started = time.monotonic()
        status = start_sandbox(self.settings, with_prefect=True)
        self.stack.callback(stop_sandbox, self.settings)
        assert status.state is not None and status.state.prefect_api_url
        self.state = status.state
        self.api_url = status.state.prefect_api_url
        self.stack.enter_context(prefect_api(self.settings))
        sandbox_s = time.monotonic() - started
        actor = add_user(self.settings, EMAIL, "bench-password-" + uuid.uuid4().hex)
        create_local_link(self.settings, actor, LINK)
        add_pipeline(
            self.settings, actor, NOOP, ScriptFile("noop.sh", self.noop_script), link_name=LINK
        )
        for i in range(self.args.p5_runs):
            add_pipeline(
                self.settings,
                actor,
                f"short-{i:02d}",
                ScriptFile("short.sh", self.short_script),
                link_name=LINK,
            )
        self.user_id = actor.user_id
        self.out.say(
            f"setup: sandbox {self.state.endpoint_url}, Prefect {self.api_url}, "
            f"ORCA_HOME {self.settings.home} (sandbox + Prefect server {sandbox_s:.1f} s, "
            f"user, link and {1 + self.args.p5_runs} pipelines {time.monotonic() - started - sandbox_s:.1f} s)"
        )

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.stack.close()

    def _env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        # No PREFECT_API_URL: each process finds the sandbox's Prefect server and its API
        # auth string in the sandbox record of ORCA_HOME (the server refuses requests
        # without it).
        env.update(PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}")
        env.update(extra)
        return env

    def start(self, name: str, command: list[str], **extra_env: str) -> Proc:
        proc = _spawn(name, command, self._env(**extra_env), self.tmp / f"{name}.log", self.tmp)
        self.procs.append(proc)
        return proc

    # --- Orca helpers ---------------------------------------------------------------------

    def submit(self, pipeline: str) -> str:
        from orca_flows.domain.actor import Actor
        from orca_flows.services.runs import submit_run

        actor = Actor(self.user_id, EMAIL)
        return submit_run(self.settings, actor, pipeline, requested_by="api").run_id

    def runs(self, run_ids: list[str]) -> list[Any]:
        from orca_flows.db.engine import session_scope
        from orca_flows.db.models import Run

        with session_scope(self.settings.effective_database_url) as session:
            rows = session.query(Run).filter(Run.id.in_(run_ids)).all()
            session.expunge_all()
            return rows

    def finished(self, run_ids: list[str]) -> bool:
        from orca_flows.domain.states import FINISHED_RUN_STATES

        rows = self.runs(run_ids)
        return len(rows) == len(run_ids) and all(r.state in FINISHED_RUN_STATES for r in rows)

    def wait_finished(self, run_ids: list[str], timeout: float) -> None:
        _wait_until(
            lambda: self.finished(run_ids), timeout, f"{len(run_ids)} Orca run(s)", every=0.1
        )

    # --- P1 -------------------------------------------------------------------------------

    def start_orca_worker(self) -> None:
        """The idle, warm `orca worker` P1 and P2 use; it exits after its last run."""
        total = 1 + self.args.p1_reps + self.args.p2_runs
        self.orca_worker = self.start(
            "orca-worker-c1",
            [str(VENV_BIN / "orca"), "worker", "--concurrency", "1", "--max-runs", str(total)],
            **CLIENT_DEBUG,
        )

    def start_prefect_worker(self) -> None:
        """A process work pool, a deployment of a flow that runs the no-op script, a worker."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.flows import Flow

        flow_dir = self.tmp / "prefect-flow"
        flow_dir.mkdir()
        (flow_dir / "bench_flow.py").write_text(
            "import subprocess\n"
            "from prefect import flow\n\n"
            f"@flow(name={PREFECT_FLOW!r}, persist_result=False)\n"
            "def bench_noop() -> None:\n"
            f"    subprocess.run(['bash', {str(self.noop_path)!r}], check=True)\n"
        )
        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name=PREFECT_POOL, type="process"))
        with contextlib.redirect_stdout(io.StringIO()):  # its table of deployments
            Flow.from_source(source=str(flow_dir), entrypoint="bench_flow.py:bench_noop").deploy(
                name=PREFECT_DEPLOYMENT,
                work_pool_name=PREFECT_POOL,
                build=False,
                push=False,
                print_next_steps=False,
                ignore_warnings=True,
            )
        self.prefect_worker = self.start(
            "prefect-worker",
            [
                str(VENV_BIN / "prefect"),
                "worker",
                "start",
                "--pool",
                PREFECT_POOL,
                "--type",
                "process",
            ],
        )

        def registered() -> bool:
            with get_client(sync_client=True) as client:
                return bool(client.read_workers_for_work_pool(PREFECT_POOL))

        _wait_until(registered, 90, "the Prefect worker to register", every=0.5)

    def flow_run_start(self, flow_run_id: str | None) -> float | None:
        """When the Prefect flow run of an Orca run entered Running (epoch seconds)."""
        from prefect.client.orchestration import get_client

        if not flow_run_id:
            return None
        with get_client(sync_client=True) as client:
            start = client.read_flow_run(uuid.UUID(flow_run_id)).start_time
        return start.timestamp() if start else None

    def one_orca(self) -> tuple[float, float, float | None]:
        """submit_run -> stamp, -> claimed (the run's started_at), -> its flow run Running."""
        before = self.stamps.count()
        t0 = time.time()
        run_id = self.submit(NOOP)
        stamp = self.stamps.wait_for(before + 1, timeout=180)
        self.wait_finished([run_id], timeout=180)
        run = self.runs([run_id])[0]
        flow_start = self.flow_run_start(run.flow_run_id)
        return (
            stamp - t0,
            run.started_at.timestamp() - t0,
            (flow_start - t0 if flow_start else None),
        )

    def one_prefect(self) -> tuple[float, float | None]:
        """run_deployment -> stamp, and run_deployment -> PENDING (the worker took it)."""
        from prefect.client.orchestration import get_client
        from prefect.deployments import run_deployment

        before = self.stamps.count()
        t0 = time.time()
        flow_run = run_deployment(f"{PREFECT_FLOW}/{PREFECT_DEPLOYMENT}", timeout=0)
        stamp = self.stamps.wait_for(before + 1, timeout=180)
        with get_client(sync_client=True) as client:
            _wait_until(
                lambda: client.read_flow_run(flow_run.id).state.is_final(),
                180,
                "the Prefect flow run to finish",
                every=0.2,
            )
            states = client.read_flow_run_states(flow_run.id)
        pending = [s.timestamp.timestamp() for s in states if s.type.value == "PENDING"]
        return stamp - t0, (pending[0] - t0 if pending else None)

    def p1(self) -> None:
        out, reps = self.out, self.args.p1_reps
        out.say()
        out.say(
            f"P1  submit -> script start, idle warm workers, {reps} submissions each, "
            f"alternating Orca / Prefect after one warm-up each  [{_load()}]"
        )
        self.start_orca_worker()
        self.start_prefect_worker()
        orca, claims, flows, prefect, pickups, launches = [], [], [], [], [], []
        for rep in range(reps + 1):
            o, c, fs = self.one_orca()
            p, k = self.one_prefect()
            if rep:  # rep 0 warms both workers up (imports, first flow run, caches)
                orca.append(o)
                claims.append(c)
                if fs is not None:
                    flows.append(fs)
                prefect.append(p)
                if k is not None:
                    pickups.append(k)
                    launches.append(p - k)
        self.prefect_worker.stop()
        pid = self.orca_worker.process.pid
        out.figures["idle_worker_rss_mb"] = _status_kb(pid, "VmRSS") / 1024
        out.figures["idle_worker_hwm_mb"] = _status_kb(pid, "VmHWM") / 1024
        out.say(f"    orca worker (concurrency 1)        {_median(orca):7.3f} s   {_fmt(orca)}")
        out.say(f"      submit -> claimed                {_median(claims):7.3f} s   {_fmt(claims)}")
        out.say(f"      submit -> its flow run Running   {_median(flows):7.3f} s   {_fmt(flows)}")
        out.say(
            f"    prefect process worker (defaults)  {_median(prefect):7.3f} s   {_fmt(prefect)}"
        )
        out.say(
            f"      created -> PENDING (picked up)   {_median(pickups):7.3f} s   {_fmt(pickups)}"
            "   (worker poll; PREFECT_WORKER_QUERY_SECONDS=10)"
        )
        out.say(
            f"      PENDING -> script start          {_median(launches):7.3f} s   {_fmt(launches)}"
            "   (python -m prefect.engine subprocess, flow load, subprocess.run)"
        )
        ratio = _median(orca) / _median(prefect)
        out.figures.update(
            p1_orca_s=orca,
            p1_orca_claim_s=claims,
            p1_orca_flow_start_s=flows,
            p1_prefect_s=prefect,
            p1_prefect_pickup_s=pickups,
            p1_prefect_launch_s=launches,
            p1=ratio,
        )
        out.say(
            f"    P1 = {_median(orca):.3f} / {_median(prefect):.3f} = {ratio:.3f}   (goal <= {GOAL_P1})"
        )

    # --- P2 -------------------------------------------------------------------------------

    def p2_orca(self, n: int) -> tuple[float, int]:
        """n runs of one pipeline through the running concurrency-1 worker."""
        before = self.stamps.count()
        t0 = time.monotonic()
        run_ids = [self.submit(NOOP) for _ in range(n)]
        submitted = time.monotonic() - t0
        self.wait_finished(run_ids, timeout=900)
        elapsed = time.monotonic() - t0
        rows = sorted(self.runs(run_ids), key=lambda r: r.sequence)
        succeeded = sum(r.state == "succeeded" for r in rows)
        starts = self.stamps.lines()[before:]
        f = self.out.figures
        f["p2_orca_submit_s"] = submitted
        if len(starts) == len(rows):  # concurrency 1: stamp i belongs to run i
            claimed = [r.started_at.timestamp() for r in rows]
            done = [r.finished_at.timestamp() for r in rows]
            f["p2_orca_cycle_s"] = _median([b - a for a, b in pairwise(starts)])
            f["p2_orca_claim_to_script_s"] = _median(
                [s - c for c, s in zip(claimed, starts, strict=False)]
            )
            f["p2_orca_script_to_final_s"] = _median(
                [d - s for s, d in zip(starts, done, strict=False)]
            )
            f["p2_orca_final_to_next_claim_s"] = _median(
                [c - d for d, c in zip(done, claimed[1:], strict=False)]
            )
        return elapsed, succeeded

    def prepare_floor(self) -> None:
        """What the floor loop reuses: the noop pipeline's spec inputs, clients, its own queue.

        The floor has its own FIFO queue (same attributes as the link's), so its first half
        can run while the Orca worker idles on the link's queue without either seeing the
        other's messages.
        """
        from orca_flows.aws.sqs import FifoQueue
        from orca_flows.db.engine import session_scope
        from orca_flows.db.models import Pipeline, ScriptVersion
        from orca_flows.runners.factory import runner_for
        from orca_flows.services.links import link_access

        with session_scope(self.settings.effective_database_url) as session:
            pipeline = session.query(Pipeline).filter_by(name=NOOP).one()
            script = (
                session.query(ScriptVersion)
                .filter_by(pipeline_id=pipeline.id, version=pipeline.current_version)
                .one()
            )
            access = link_access(pipeline.link)
            runner = runner_for(pipeline, access, self.settings)
            self.floor_prefix = f"orca/{pipeline.owner_id}/{pipeline.name}/floor/"
            self.floor_script = (script.s3_key, script.sha256)
        self.floor_env = runner.env  # the very environment the local runner gives the bootstrap
        sqs = access.client("sqs")
        attributes = sqs.get_queue_attributes(
            QueueUrl=access.queue_url,
            AttributeNames=["VisibilityTimeout", "ReceiveMessageWaitTimeSeconds"],
        )["Attributes"]
        url = sqs.create_queue(
            QueueName="orca-bench-floor.fifo",
            Attributes={**attributes, "FifoQueue": "true", "ContentBasedDeduplication": "false"},
        )["QueueUrl"]
        self.floor_queue = FifoQueue(sqs, url)
        self.floor_s3, self.floor_bucket = access.client("s3"), access.bucket
        self.floor_dir = self.tmp / "floor"
        self.floor_dir.mkdir()
        self.floor_samples: dict[str, list[float]] = {"latency": [], "head": [], "tail": []}

    def p2_floor(self, n: int) -> tuple[float, int]:
        """n runs of the same bootstrap and AWS calls, sequentially, without database or Prefect."""
        from orca_flows.runners import RunSpec, read_marker, render_bootstrap
        from orca_flows.services.runs import message_body

        queue, s3, bucket = self.floor_queue, self.floor_s3, self.floor_bucket
        script_key, sha256 = self.floor_script
        samples = self.floor_samples
        succeeded = 0
        t0 = time.monotonic()
        for _ in range(n):
            run_id = str(uuid.uuid4())
            before, sent_at = self.stamps.count(), time.time()
            queue.send(message_body(run_id), group_id="floor", dedup_id=run_id)
            (message,) = queue.receive(max_messages=1, wait_seconds=5, visibility_timeout=120)
            spec = RunSpec(
                run_id=run_id,
                pipeline=NOOP,
                script_uri=f"s3://{bucket}/{script_key}",
                script_sha256=sha256,
                script_name="noop.sh",
                output_uri=f"s3://{bucket}/{self.floor_prefix}{run_id}/",
                timeout_seconds=3600,
            )
            launched = time.time()
            with open(self.floor_dir / f"{run_id}.log", "wb") as log:
                subprocess.run(
                    ["bash", "-c", render_bootstrap(spec)],
                    env=self.floor_env,
                    cwd=self.floor_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    check=False,
                )
            exited = time.time()
            stamp = self.stamps.wait_for(before + 1, timeout=5)
            samples["latency"].append(stamp - sent_at)
            samples["head"].append(stamp - launched)
            samples["tail"].append(exited - stamp)
            status = read_marker(s3, spec)  # what the worker reads: the marker and the log
            s3.get_object(Bucket=bucket, Key=f"{self.floor_prefix}{run_id}/log")["Body"].read()
            queue.delete(message.receipt_handle)
            succeeded += status is not None and status.state == "succeeded"
        return time.monotonic() - t0, succeeded

    def aws_cli_call(
        self, env: dict[str, str], bucket: str, prefix: str, reps: int = 5
    ) -> list[float]:
        """Wall time of one `aws s3 cp` of a one-line file, as the bootstrap makes it."""
        times = []
        for i in range(reps):
            t0 = time.monotonic()
            subprocess.run(
                [
                    "aws",
                    "s3",
                    "cp",
                    str(self.noop_path),
                    f"s3://{bucket}/{prefix}cli-{i}",
                    "--only-show-errors",
                ],
                env=env,
                check=True,
                stdin=subprocess.DEVNULL,
            )
            times.append(time.monotonic() - t0)
        return times

    def p2(self) -> None:
        out, n = self.out, self.args.p2_runs
        f = out.figures
        out.say()
        out.say(
            f"P2  {n} no-op runs, one pipeline (one FIFO group), concurrency 1 on both sides; the "
            f"floor runs half before and half after Orca's batch (load drift)  [{_load()}]"
        )
        self.prepare_floor()
        floor_a, ok_a = self.p2_floor(n // 2)
        out.say(
            f"    bare floor, first {n // 2} runs          {floor_a:7.2f} s   {floor_a / max(n // 2, 1):.3f} s/run"
            f"  [{_load()}]"
        )
        orca, ok = self.p2_orca(n)
        out.say(
            f"    orca (submit all + 1 worker)       {orca:7.2f} s   {orca / n:.3f} s/run, "
            f"{ok}/{n} succeeded  [{_load()}]"
        )
        out.say(f"      submitting all {n} took {f['p2_orca_submit_s']:.2f} s")
        if "p2_orca_cycle_s" in f:
            out.say(
                f"      per run (medians): claimed -> script start {f['p2_orca_claim_to_script_s']:.3f} s, "
                f"script start -> final state {f['p2_orca_script_to_final_s']:.3f} s, "
                f"final state -> next claim {f['p2_orca_final_to_next_claim_s']:.3f} s; "
                f"script start -> next script start {f['p2_orca_cycle_s']:.3f} s"
            )
        try:  # it exits by itself after its --max-runs (its last flow run is wrapping up)
            self.orca_worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self.orca_worker.stop()
        floor_b, ok_b = self.p2_floor(n - n // 2)
        out.say(
            f"    bare floor, last {n - n // 2} runs           {floor_b:7.2f} s   "
            f"{floor_b / max(n - n // 2, 1):.3f} s/run  [{_load()}]"
        )
        floor, floor_ok = floor_a + floor_b, ok_a + ok_b
        samples = self.floor_samples
        f.update(
            p2_floor_start_latency_s=_median(samples["latency"]),
            p2_floor_bootstrap_to_script_s=_median(samples["head"]),
            p2_floor_script_to_exit_s=_median(samples["tail"]),
            aws_cli_call_s=self.aws_cli_call(self.floor_env, self.floor_bucket, self.floor_prefix),
        )
        out.say(
            f"    bare floor (plain loop), total     {floor:7.2f} s   {floor / n:.3f} s/run, "
            f"{floor_ok}/{n} succeeded"
        )
        out.say(
            f"      per run (medians): bootstrap launch -> script start "
            f"{f['p2_floor_bootstrap_to_script_s']:.3f} s, script start -> bootstrap exit "
            f"{f['p2_floor_script_to_exit_s']:.3f} s; SQS send -> script start "
            f"{f['p2_floor_start_latency_s']:.3f} s (the bare floor of P1)"
        )
        cli = f["aws_cli_call_s"]
        out.say(
            f"      one `aws s3 cp` (aws CLI v1, one-line file): {_median(cli):.3f} s median {_fmt(cli)}"
        )
        ratio = orca / floor
        f.update(
            p2_orca_s=orca,
            p2_floor_s=floor,
            p2_floor_halves_s=(floor_a, floor_b),
            p2=ratio,
            p2_ok=(ok, floor_ok),
        )
        retries = _retries_503(self.orca_worker.log)
        f["p1_p2_prefect_503_retries"] = retries
        out.say(
            f"    (P1+P2 worker: {retries} Prefect API call(s) answered 503 and retried with backoff)"
        )
        out.say(f"    P2 = {orca:.2f} / {floor:.2f} = {ratio:.3f}   (goal <= {GOAL_P2})")

    # --- P5 -------------------------------------------------------------------------------

    def p5(self) -> None:
        out, n = self.out, self.args.p5_runs
        out.say()
        out.say(
            f"P5  peak memory of `orca worker --concurrency 8`, {n} short runs queued "
            f"({n} pipelines, so {n} FIFO groups; each script sleeps 3 s)  [{_load()}]"
        )
        run_ids = [self.submit(f"short-{i:02d}") for i in range(n)]
        t0 = time.monotonic()
        worker = self.start(
            "orca-worker-c8",
            [str(VENV_BIN / "orca"), "worker", "--concurrency", "8", "--max-runs", str(n)],
            **CLIENT_DEBUG,
        )
        pid = worker.process.pid
        hwm_kb = rss_kb = children_peak_kb = 0
        max_bootstraps = max_descendants = 0
        while worker.process.poll() is None and time.monotonic() - t0 < 180:
            hwm_kb = max(hwm_kb, _status_kb(pid, "VmHWM"))
            rss_kb = max(rss_kb, _status_kb(pid, "VmRSS"))
            descendants = _descendants(pid)
            rss = sum(_status_kb(d, "VmRSS") for d, _ in descendants)
            children_peak_kb = max(children_peak_kb, rss)
            max_descendants = max(max_descendants, len(descendants))
            bootstraps = sum(1 for d, parent in descendants if parent == pid and _is_bootstrap(d))
            max_bootstraps = max(max_bootstraps, bootstraps)
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        worker.stop()
        rows = self.runs(run_ids)
        succeeded = sum(r.state == "succeeded" for r in rows)
        gaps = []
        for row in rows:
            flow_start = self.flow_run_start(row.flow_run_id)
            if flow_start and row.started_at:
                gaps.append(flow_start - row.started_at.timestamp())
        worker_mb, children_mb = hwm_kb / 1024, children_peak_kb / 1024
        out.figures.update(
            p5_worker_mb=worker_mb, p5_children_mb=children_mb, p5_max_bootstraps=max_bootstraps
        )
        out.say(f"    worker process VmHWM               {worker_mb:7.1f} MB")
        out.say(
            f"    descendants, peak of summed RSS    {children_mb:7.1f} MB   "
            f"(up to {max_bootstraps} bootstraps / {max_descendants} processes at once)"
        )
        out.say(
            f"    {succeeded}/{n} succeeded; worker start to exit {elapsed:.1f} s; claimed -> flow run "
            f"Running median {_median(gaps):.3f} s, max {max(gaps, default=float('nan')):.3f} s"
        )
        out.figures["p5_claim_to_flow_s"] = gaps
        retries = out.figures["p5_prefect_503_retries"] = _retries_503(worker.log)
        out.say(
            f"    {retries} Prefect API call(s) answered 503 (server's SQLite locked) and retried "
            "after 2, 4, 8, 16 s backoff"
        )
        if "idle_worker_rss_mb" in out.figures:
            out.say(
                f"    for reference, the concurrency-1 worker after P1's {self.args.p1_reps + 1} runs: "
                f"VmRSS {out.figures['idle_worker_rss_mb']:.1f} MB, "
                f"VmHWM {out.figures['idle_worker_hwm_mb']:.1f} MB"
            )
        out.say(f"    P5 = {worker_mb:.1f} MB   (goal <= {GOAL_P5_MB:.0f} MB)")

    def summary(self) -> None:
        f, say = self.out.figures, self.out.say
        say()
        say(f"Summary  [{_load()}]")
        if "p1" in f:
            say(
                f"  P1 {f['p1']:.3f}  (goal <= {GOAL_P1})  orca {_median(f['p1_orca_s']):.3f} s "
                f"/ prefect process worker {_median(f['p1_prefect_s']):.3f} s"
            )
        if "p2" in f:
            say(
                f"  P2 {f['p2']:.3f}  (goal <= {GOAL_P2})  orca {f['p2_orca_s']:.2f} s "
                f"/ floor {f['p2_floor_s']:.2f} s for {self.args.p2_runs} runs"
            )
        if "p5_worker_mb" in f:
            say(
                f"  P5 {f['p5_worker_mb']:.1f} MB  (goal <= {GOAL_P5_MB:.0f} MB)  worker VmHWM; "
                f"descendants peak {f['p5_children_mb']:.1f} MB"
            )


def _is_bootstrap(pid: int) -> bool:
    try:
        return b"Orca bootstrap" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--p1-reps", type=int, default=5, help="measured submissions per side (P1)")
    parser.add_argument("--p2-runs", type=int, default=50, help="runs per side (P2)")
    parser.add_argument(
        "--p5-runs", type=int, default=16, help="runs queued for the c=8 worker (P5)"
    )
    parser.add_argument(
        "--only", choices=["p1", "p2", "p5"], action="append", help="run only these"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args()
    only = set(args.only or ["p1", "p2", "p5"])
    if "p2" in only:
        only.add("p1")  # P2 reuses P1's warm worker

    tmp = Path(tempfile.mkdtemp(prefix="orca-bench-"))
    _isolate_environment(tmp)
    started = time.monotonic()
    bench = Bench(tmp, args)
    print(f"Orca dispatch benchmark; temporary files in {tmp}; {_load()}", flush=True)
    try:
        bench.setup()
        if "p1" in only:
            bench.p1()
        if "p2" in only:
            bench.p2()
        if "p5" in only:
            bench.p5()
        bench.summary()
    finally:
        bench.close()
        if args.json:
            args.json.write_text(json.dumps(bench.out.figures, indent=2, default=str))
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
