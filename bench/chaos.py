"""Chaos benchmark (issue 10, point 15): SIGKILLed workers and faulty AWS, at scale.

Run it from the repository root::

    .venv/bin/python bench/chaos.py                       # 500 runs, 20 keys, 3 workers
    .venv/bin/python bench/chaos.py --runs 40 --keys 4    # a quick look (~2 min)
    .venv/bin/python bench/chaos.py --help

It is self-contained like ``bench/dispatch.py``: a temporary ORCA_HOME and PREFECT_HOME, the
local sandbox (moto on a free 127.0.0.1 port) with its own Prefect server, a user, a local
link, pipelines made through Orca's services; everything it started is stopped at the end.

Between Orca and the emulator sits a small HTTP proxy (in this process): the link's
credentials block names the proxy as its endpoint, so every AWS call of the workers, of the
bootstraps' aws CLI and of the submissions passes through it. During the chaos phase the
proxy answers ``--fault-rate`` of the requests itself, without forwarding them: half with
a throttling error in the protocol of the call (``ThrottlingException`` for SQS's JSON,
``Throttling`` for the query protocol of STS, ``SlowDown`` 503 for S3), half with a bare
``503 Service Unavailable``. Meanwhile one of ``--workers`` `orca worker` processes is
SIGKILLed every ``--kill-every`` seconds (uniformly 0.5-1.5 times that) and replaced: the
one that has served longest, and only once every worker serves the queue (so a kill always
hits a worker that may be in the middle of runs, never one still importing Prefect).

Two phases of the same size, each on its own pipelines and ordering keys:

1. **baseline**: no kill, no fault (through the same proxy);
2. **chaos**: kills and faults.

It prints, for each phase, runs, kills, faults injected, wall time (first submit to last
run finished) and the four counts that must be zero: runs lost (not ``succeeded``), runs
executed twice (more than one start in the ledger), runs started out of sequence within
their key, runs overlapping the previous run of their key. The chaos phase's wall time is
also given as a ratio against the baseline's, with the load average (the machine is shared:
read it before comparing). It asserts nothing; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

VENV_BIN = Path(sys.executable).parent
EMAIL = "chaos@orca.example"
LINK = "chaos"
# A killed worker's runs are taken over within seconds (the same as tests/execution).
WORKER_TIMINGS = {
    "ORCA_WORKER_POLL_SECONDS": "1",
    "ORCA_WORKER_HEARTBEAT_SECONDS": "1",
    "ORCA_WORKER_LEASE_SECONDS": "5",
    "ORCA_WORKER_VISIBILITY_SECONDS": "5",
}


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def _isolate_environment(tmp: Path) -> None:
    """Point Orca and Prefect at the temporary directory before either is imported."""
    for name in list(os.environ):
        if name.startswith(("ORCA_", "PREFECT_", "AWS_")):
            del os.environ[name]
    os.environ.update(
        ORCA_HOME=str(tmp / "orca-home"),
        PREFECT_HOME=str(tmp / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # Never a real credential: no config files, no instance metadata.
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    (tmp / "prefect-home").mkdir(parents=True, exist_ok=True)


# --- the faulty proxy ---------------------------------------------------------------------


class FaultyProxy(ThreadingHTTPServer):
    """Forwards every request to ``upstream``; answers ``fault_rate`` of them with an error.

    Headers go through unchanged (the signature covers the Host header). A faulted request
    never reaches the emulator: the call did not happen, as with a throttled call on AWS.
    """

    daemon_threads = True

    def __init__(self, upstream: str, seed: int) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.fault_rate = 0.0
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.requests = 0
        self.faults: Counter[str] = Counter()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that went away (a SIGKILLed worker); loud about the rest."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def choose_fault(self) -> str | None:
        with self.lock:
            self.requests += 1
            if self.random.random() >= self.fault_rate:
                return None
            kind = self.random.choice(("throttle", "503"))
            self.faults[kind] += 1
            return kind


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultyProxy

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        length = str(len(body))
        for name, value in headers:
            if name.lower() == "content-length" and self.command == "HEAD":
                length = value  # the size of what a GET would return
            elif name.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _fault(self, kind: str, body: bytes) -> None:
        json_protocol = "X-Amz-Target" in self.headers
        query_protocol = b"Action=" in body or "Action=" in self.path
        if kind == "503":
            self._reply(503, [("Content-Type", "text/plain")], b"Service Unavailable")
        elif json_protocol:  # SQS
            self._reply(
                400,
                [
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("x-amzn-query-error", "ThrottlingException;Sender"),
                ],
                json.dumps(
                    {"__type": "com.amazonaws.sqs#ThrottlingException", "message": "Rate exceeded"}
                ).encode(),
            )
        elif query_protocol:  # STS, SQS's query protocol
            self._reply(
                400,
                [("Content-Type", "text/xml")],
                b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                b"<Message>Rate exceeded</Message></Error><RequestId>chaos</RequestId>"
                b"</ErrorResponse>",
            )
        else:  # S3's REST protocol
            self._reply(
                503,
                [("Content-Type", "application/xml")],
                b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                b"</Message><RequestId>chaos</RequestId></Error>",
            )

    def _forward(self) -> None:
        body = self._body()
        if not self.path.startswith("/moto-api"):
            kind = self.server.choose_fault()
            if kind is not None:
                self._fault(kind, body)
                return
        headers = {
            name: value
            for name, value in self.headers.items()
            # The body was read whole (and "100 Continue" answered): forward it plainly.
            if name.lower() not in ("transfer-encoding", "content-length", "connection", "expect")
        }
        headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(*self.server.upstream, timeout=120)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            status, answer, data = response.status, response.getheaders(), response.read()
        except OSError:
            status, answer, data = 502, [("Content-Type", "text/plain")], b"Bad Gateway"
        finally:
            connection.close()
        self._reply(status, answer, data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815 - http.server's names


# --- the ledger and the four counts -------------------------------------------------------


class Ledger:
    """The file each script appends ``start|end KEY RUN_ID EPOCH`` to (one short write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def script(self, key: str, work: float) -> bytes:
        stamp = 'printf "%s %s %s %s\\n" {event} ' + key + ' "$ORCA_RUN_ID" "$(date +%s.%N)"'
        start, end = (stamp.format(event=event) + f" >>{self.path}" for event in ("start", "end"))
        return f"#!/bin/bash\nset -u\n{start}\nsleep {work}\n{end}\n".encode()

    def stamps(self) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        starts: dict[str, list[float]] = {}
        ends: dict[str, list[float]] = {}
        for line in self.path.read_text().splitlines():
            fields = line.split()
            if len(fields) == 4:
                (starts if fields[0] == "start" else ends).setdefault(fields[2], []).append(
                    float(fields[3])
                )
        return starts, ends


def chaos_counts(ledger: Ledger, runs: list[dict[str, Any]]) -> dict[str, int]:
    """Lost, executed twice, out of order and overlapping runs (the same rules as
    tests/execution/test_chaos_small.py)."""
    starts, ends = ledger.stamps()
    counts = {"lost": 0, "executed_twice": 0, "out_of_order": 0, "overlapping": 0}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        if run["state"] != "succeeded" or not starts.get(run["id"]) or not ends.get(run["id"]):
            counts["lost"] += 1
        if len(starts.get(run["id"], [])) > 1:
            counts["executed_twice"] += 1
        by_key.setdefault(run["ordering_key"], []).append(run)
    for key_runs in by_key.values():
        in_sequence = sorted(
            (run for run in key_runs if starts.get(run["id"])), key=lambda run: run["sequence"]
        )
        first_starts = [min(starts[run["id"]]) for run in in_sequence]
        counts["out_of_order"] += sum(1 for a, b in itertools.pairwise(first_starts) if b < a)
        for earlier, later in itertools.pairwise(in_sequence):
            if min(starts[later["id"]]) < max(ends.get(earlier["id"], [float("inf")])):
                counts["overlapping"] += 1
    return counts


# --- the benchmark ------------------------------------------------------------------------


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    runs: int
    kills: int
    faults: int
    requests: int
    wall_seconds: float
    counts: dict[str, int]
    states: dict[str, int]
    attempts_over_one: int
    load: str
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Bench:
    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        self.tmp = tmp
        self.args = args
        self.random = random.Random(args.seed)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}  # worker pid -> its log

    def setup(self) -> None:
        from orca_blocks import OrcaLinkedCloudCredentials
        from orca_flows.local.sandbox import start_sandbox
        from orca_flows.prefect_adapter.api import prefect_api
        from orca_flows.services.link_creation import create_local_link
        from orca_flows.services.users import add_user
        from orca_flows.settings import get_settings

        self.settings = get_settings()
        started = time.monotonic()
        status = start_sandbox(self.settings, with_prefect=True)
        assert status.state is not None and status.state.prefect_api_url
        self.api_url = status.state.prefect_api_url
        # No PREFECT_API_URL in the environment: Orca (and so each worker) then finds the
        # sandbox's Prefect server and its auth string in the sandbox record of ORCA_HOME.
        self.proxy = FaultyProxy(status.state.endpoint_url, self.args.seed)
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        self.actor = add_user(self.settings, EMAIL, "chaos-password-" + uuid.uuid4().hex)
        with prefect_api(self.settings):
            link = create_local_link(self.settings, self.actor, LINK)
            # Every AWS call of the link (workers, bootstraps, submissions) via the proxy.
            block = OrcaLinkedCloudCredentials.load(link.block_document)
            block.endpoint_url = self.proxy.url
            block.save(link.block_document, overwrite=True)
        print(
            f"setup: sandbox {status.state.endpoint_url} behind proxy {self.proxy.url}, "
            f"Prefect {self.api_url}, ORCA_HOME {self.settings.home} "
            f"({time.monotonic() - started:.1f} s)",
            flush=True,
        )

    def close(self) -> None:
        from orca_flows.local.sandbox import stop_sandbox

        self.stop_workers()
        self.proxy.shutdown()
        stop_sandbox(self.settings)

    # --- workers --------------------------------------------------------------------------

    def start_worker(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ) | WORKER_TIMINGS
        env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
        log = self.tmp / f"worker-{len(self.logs)}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(VENV_BIN / "orca"), "worker", "--concurrency", str(self.args.concurrency)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.workers.append(process)
        self.logs[process.pid] = log
        return process

    def serving(self, process: subprocess.Popen[bytes]) -> bool:
        """Whether the worker has started serving the queue (its log says so)."""
        return "serving queue" in self.logs[process.pid].read_text(errors="replace")

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.workers = []

    # --- one phase ------------------------------------------------------------------------

    def run_phase(self, name: str, *, chaos: bool) -> Phase:
        from orca_flows.db.engine import session_scope
        from orca_flows.db.models import Run
        from orca_flows.domain.states import FINISHED_RUN_STATES
        from orca_flows.prefect_adapter.api import prefect_api
        from orca_flows.services.pipelines import ScriptFile, add_pipeline
        from orca_flows.services.runs import submit_run

        args = self.args
        ledger = Ledger(self.tmp / f"ledger-{name}.txt")
        keys = [f"{name}-{index:02d}" for index in range(args.keys)]
        with prefect_api(self.settings):
            for key in keys:
                script = ScriptFile("job.sh", ledger.script(key, args.work))
                add_pipeline(
                    self.settings, self.actor, key, script, link_name=LINK, ordering_key=key
                )
        pool = [self.start_worker() for _ in range(args.workers)]
        self.proxy.fault_rate = args.fault_rate if chaos else 0.0
        requests_before, faults_before = self.proxy.requests, sum(self.proxy.faults.values())
        kills = 0
        started = time.monotonic()
        next_kill = started + args.kill_every
        run_ids: list[str] = []
        order = [keys[index % len(keys)] for index in range(args.runs)]

        def maybe_kill() -> None:
            nonlocal kills, next_kill, pool
            if not chaos or time.monotonic() < next_kill:
                return
            # The worker that has served longest, once every worker serves: a worker takes
            # seconds to start on a loaded machine, and one killed before it serves proves
            # nothing about runs in the middle of their lives.
            if not all(self.serving(worker) for worker in pool):
                return
            victim = pool.pop(0)
            victim.kill()  # SIGKILL to the worker's pid alone: its bootstraps live on
            victim.wait()
            kills += 1
            pool.append(self.start_worker())
            next_kill = time.monotonic() + args.kill_every * self.random.uniform(0.5, 1.5)

        with prefect_api(self.settings):
            for pipeline in order:  # interleaved across keys, as many users' clicks arrive
                run_ids.append(
                    submit_run(self.settings, self.actor, pipeline, requested_by="api").run_id
                )
                maybe_kill()
        deadline = started + args.timeout
        timed_out = False
        while True:
            with session_scope(self.settings.effective_database_url) as session:
                states = [
                    state for (state,) in session.query(Run.state).filter(Run.id.in_(run_ids))
                ]
            if len(states) == len(run_ids) and all(s in FINISHED_RUN_STATES for s in states):
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
            maybe_kill()
            time.sleep(0.5)
        wall = time.monotonic() - started
        load = _load()
        self.proxy.fault_rate = 0.0
        self.stop_workers()
        with session_scope(self.settings.effective_database_url) as session:
            runs = [
                {
                    "id": run.id,
                    "state": str(run.state),
                    "ordering_key": run.ordering_key,
                    "sequence": run.sequence,
                    "attempt": run.attempt,
                }
                for run in session.query(Run).filter(Run.id.in_(run_ids))
            ]
        return Phase(
            name=name,
            runs=len(run_ids),
            kills=kills,
            faults=sum(self.proxy.faults.values()) - faults_before,
            requests=self.proxy.requests - requests_before,
            wall_seconds=wall,
            counts=chaos_counts(ledger, runs),
            states=dict(Counter(run["state"] for run in runs)),
            attempts_over_one=sum(1 for run in runs if (run["attempt"] or 1) > 1),
            load=load,
            timed_out=timed_out,
        )


def _say(phase: Phase) -> None:
    late = " (TIMED OUT: unfinished runs count as lost)" if phase.timed_out else ""
    rate = f"{phase.faults / phase.requests:.1%}" if phase.requests else "n/a"
    print(
        f"{phase.name}: {phase.runs} runs, {phase.kills} kills, {phase.faults} faults in "
        f"{phase.requests} AWS requests ({rate}), wall {phase.wall_seconds:.1f} s{late}; "
        f"{phase.load}",
        flush=True,
    )
    print(
        f"  lost {phase.counts['lost']}, executed twice {phase.counts['executed_twice']}, "
        f"out of order {phase.counts['out_of_order']}, overlapping "
        f"{phase.counts['overlapping']}; states {phase.states}; runs with attempt > 1: "
        f"{phase.attempts_over_one}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="runs per phase (500)")
    parser.add_argument("--keys", type=int, default=20, help="ordering keys (20)")
    parser.add_argument("--workers", type=int, default=3, help="orca worker processes (3)")
    parser.add_argument("--concurrency", type=int, default=4, help="per worker (4)")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds (5)")
    parser.add_argument("--fault-rate", type=float, default=0.10, help="of AWS calls (0.10)")
    parser.add_argument("--work", type=float, default=0.2, help="seconds each script sleeps")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per phase")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--no-baseline", action="store_true", help="the chaos phase only")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="orca-chaos-"))
    _isolate_environment(tmp)
    bench = Bench(tmp, args)
    print(
        f"chaos bench: {args.runs} runs over {args.keys} keys, {args.workers} workers x "
        f"{args.concurrency}, a SIGKILL every ~{args.kill_every:g} s, {args.fault_rate:.0%} of "
        f"AWS calls throttled or 503; {_load()}",
        flush=True,
    )
    phases: list[Phase] = []
    try:
        bench.setup()
        if not args.no_baseline:
            phases.append(bench.run_phase("baseline", chaos=False))
            _say(phases[-1])
        phases.append(bench.run_phase("chaos", chaos=True))
        _say(phases[-1])
    finally:
        bench.close()
        if args.keep:
            print(f"kept {tmp} (worker logs, ledgers, ORCA_HOME)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if len(phases) == 2:
        base, chaos = phases
        print(
            f"chaos wall time / baseline wall time: {chaos.wall_seconds / base.wall_seconds:.2f} "
            f"({chaos.wall_seconds:.1f} s / {base.wall_seconds:.1f} s, same size, same machine)"
        )
    if args.json:
        args.json.write_text(json.dumps([phase.__dict__ for phase in phases], indent=2))


if __name__ == "__main__":
    main()
