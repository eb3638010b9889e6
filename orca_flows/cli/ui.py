"""`orca ui`: the web app, served by Streamlit on 127.0.0.1 with the CLI's settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from orca_flows.cli.common import console

__all__ = ["streamlit_app_path", "streamlit_command", "ui"]


def streamlit_app_path() -> Path:
    """The router script; ``ui`` is installed beside ``orca_flows`` (source tree or wheel)."""
    return Path(__file__).resolve().parents[2] / "ui" / "streamlit_app.py"


def streamlit_command(port: int) -> list[str]:
    """The ``streamlit run`` command line of the web app on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(streamlit_app_path()),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # A served app, not a development session: no reloading, no developer menu.
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]


def ui(
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")
    ] = 8501,
) -> None:
    """Start the web app (Login, Cloud Setup, Script Upload, Task Summary, ...)."""
    console.print(f"Orca web app on http://127.0.0.1:{port} (Ctrl-C stops it).")
    sys.stdout.flush()
    command = streamlit_command(port)
    # Streamlit becomes this process: Ctrl-C and signals reach it directly. The
    # environment (ORCA_*, PREFECT_API_URL) passes through, so the app sees the CLI's settings.
    os.execv(command[0], command)
