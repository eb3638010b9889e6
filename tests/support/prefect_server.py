"""A real `prefect server start` process for tests (SQLite, 127.0.0.1, a free port)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PrefectServer", "start_prefect_server"]


@dataclass
class PrefectServer:
    """A running server; ``api_url`` ends in ``/api``."""

    process: subprocess.Popen[bytes]
    api_url: str

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_prefect_server(api_url: str, home: Path) -> PrefectServer:
    """Start a server answering at ``api_url`` with its database under ``home``."""
    port = api_url.rsplit(":", 1)[1].split("/")[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    prefect = str(Path(sys.executable).with_name("prefect"))
    log = open(home / "server.log", "wb")
    process = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", port],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2):
                return PrefectServer(process, api_url)
        except (urllib.error.URLError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"Prefect server did not start; see {home / 'server.log'}"
                ) from None
            time.sleep(0.25)
