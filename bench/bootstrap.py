"""P2's first half: what the bootstrap costs for a no-op run, launch to exit.

Run it from the repository root::

    .venv/bin/python bench/bootstrap.py             # 10 runs per side (~30 s)
    .venv/bin/python bench/bootstrap.py --runs 20

One in-process moto server on a free 127.0.0.1 port (Orca's emulator serves S3 the same
way), one bucket, one no-op script (`true`). Each sample renders the real bootstrap for a
new attempt and runs it with bash, as the local runner and the SSM agent do: fetch the
script, check its sha256, run it, write the log and the exit-code marker. Two sides,
alternating so a change in load touches both:

- **presigned**: the worker's presigned URLs, sent with curl (what Orca does now);
- **CLI only**: no URLs, every transfer an AWS CLI start (what it did before).

It prints the median wall time of each side, the ratio and the load average, and asserts
nothing. Goal (issue 13): ≤ 0.5 s on this machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orca_flows.runners import RunSpec, render_bootstrap  # noqa: E402
from orca_flows.runners.transfers import presign_transfers  # noqa: E402

BUCKET = "orca-bench-bootstrap"
SCRIPT = b"true\n"


def _sample(s3: object, env: dict[str, str], presigned: bool) -> float:
    run_id = str(uuid.uuid4())
    spec = RunSpec(
        run_id=run_id,
        pipeline="noop",
        script_uri=f"s3://{BUCKET}/scripts/noop.sh",
        script_sha256=hashlib.sha256(SCRIPT).hexdigest(),
        script_name="noop.sh",
        output_uri=f"s3://{BUCKET}/runs/{run_id}/",
        timeout_seconds=60,
    )
    transfers = presign_transfers(s3, spec) if presigned else None
    text = render_bootstrap(spec, transfers=transfers)
    started = time.perf_counter()
    done = subprocess.run(["bash", "-c", text], env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the bootstrap failed: {done.stderr.decode()[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="samples per side (10)")
    args = parser.parse_args()
    print(f"P2 bootstrap: {args.runs} no-op runs per side on a moto server; ~30 s.", flush=True)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=Config(signature_version="s3v4"),
            **keys,
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="scripts/noop.sh", Body=SCRIPT)
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        }
        samples: dict[str, list[float]] = {"presigned": [], "CLI only": []}
        _sample(s3, env, True), _sample(s3, env, False)  # warm-up of both
        for number in range(1, args.runs + 1):
            samples["presigned"].append(_sample(s3, env, True))
            samples["CLI only"].append(_sample(s3, env, False))
            print(f"  sample {number}/{args.runs}", flush=True)
    finally:
        server.stop()
    median = {side: statistics.median(values) for side, values in samples.items()}
    print(f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(f"{'side':<12} {'median s':>9} {'x CLI only':>11} {'goal':>6}")
    for side, value in median.items():
        goal = "0.50 s" if side == "presigned" else ""
        print(f"{side:<12} {value:>9.3f} {value / median['CLI only']:>11.2f} {goal:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
