"""The web app in a real browser: register, log in, link the sandbox, upload, run, watch.

Streamlit is started as `orca ui` starts it (same command line) on a free 127.0.0.1 port,
with a worker beside it; Playwright drives Debian's chromium (no browser download).
Screenshots of every page land in the test's temporary directory.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright  # noqa: E402 - a test dependency (the test extra)
import pytest

from orca_flows.cli.ui import streamlit_command
from orca_flows.local.sandbox import SandboxState
from tests.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
# `make test` and CI set ORCA_REQUIRE_BROWSER=1: there a missing browser fails the run.
_REQUIRE_BROWSER = os.environ.get("ORCA_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCRIPT = b"""#!/bin/bash
echo "hello from the browser test"
echo "rows: 42" > "$ORCA_OUTPUT_DIR/result.txt"
"""
EMAIL = "dora@example.com"
TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.usefixtures("prefect_server"),
    pytest.mark.skipif(
        not CHROMIUM.exists() and not _REQUIRE_BROWSER, reason="apt-get install chromium"
    ),
    pytest.mark.timeout(600),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    # os.environ carries this test's ORCA_HOME and the Prefect server's PREFECT_API_URL.
    with open(log, "wb") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


@pytest.fixture
def web_app(sandbox: SandboxState, tmp_path: Path) -> Iterator[str]:
    """The app's URL, served by `streamlit run` exactly as `orca ui --port N` runs it."""
    port = _free_port()
    log = tmp_path / "streamlit.log"
    process = _start(streamlit_command(port), log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"streamlit did not start; see {log}:\n{log.read_text()[-2000:]}")
        time.sleep(0.25)
    yield url
    _stop(process)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[None]:
    """`orca worker` beside the app; it picks up links as they are created."""
    orca = str(Path(sys.executable).with_name("orca"))
    process = _start([orca, "worker", "--idle-exit", "60"], tmp_path / "worker.log")
    yield
    _stop(process)


def test_register_link_upload_run_and_watch_in_a_browser(
    web_app: str, worker: None, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(TIMEOUT_MS)
        expect = playwright.expect
        expect.set_options(timeout=TIMEOUT_MS)

        def settled() -> None:
            # Streamlit keeps the previous run's elements until a run ends: wait for the end.
            expect(page.get_by_test_id("stApp")).to_have_attribute(
                "data-test-script-state", "notRunning"
            )

        def shot(name: str) -> None:
            settled()
            page.screenshot(
                path=shots / f"{len(list(shots.iterdir())):02d}-{name}.png", full_page=True
            )

        def go(title: str, heading: str | None = None) -> None:
            page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
            expect(page.get_by_role("heading", name=heading or title, exact=True)).to_be_visible()
            settled()

        page.goto(f"{web_app}/task_summary")  # a work page's address, signed out
        expect(page.get_by_role("heading", name="Log in to Orca")).to_be_visible()
        nav = page.get_by_test_id("stSidebarNav").get_by_role("link")
        expect(nav).to_have_text([re.compile("Login$"), re.compile("Register$")])  # after the icon
        expect(page.get_by_role("dialog")).to_contain_text("Page not found")  # Streamlit's notice
        page.keyboard.press("Escape")
        expect(page.get_by_role("dialog")).to_be_hidden()
        shot("login")

        go("Register", "Create an Orca account")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Confirm password").fill(PASSWORD)
        page.get_by_role("button", name="Register").click()
        # The same words whether the email was new or taken (no account enumeration).
        expect(
            page.get_by_text("If this address can be used, your account is ready")
        ).to_be_visible()
        shot("register")

        go("Login", "Log in to Orca")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Task Summary")).to_be_visible()
        expect(page.get_by_text(f"Signed in as {EMAIL}")).to_be_visible()

        go("Cloud Setup")
        page.get_by_role("button", name="Link the local sandbox").click()
        expect(page.get_by_text("Linked 'sandbox' to the local sandbox")).to_be_visible()
        shot("cloud-setup")

        go("Script Upload")
        page.get_by_label("Pipeline name").fill("hello")
        page.locator("input[type=file]").first.set_input_files(
            files=[{"name": "hello.sh", "mimeType": "text/x-sh", "buffer": SCRIPT}]
        )
        expect(page.get_by_text("hello.sh")).to_be_visible()
        page.get_by_role("button", name="Create pipeline").click()
        expect(page.get_by_text("Pipeline 'hello' created: version 1, sha256")).to_be_visible()
        shot("script-upload")

        go("Task Summary")
        page.get_by_role("button", name="Run hello").click()
        expect(page.get_by_text("of 'hello' queued")).to_be_visible()
        succeeded = page.get_by_test_id("stMetric").filter(has_text="succeeded")
        deadline = time.monotonic() + 120
        while succeeded.get_by_test_id("stMetricValue").inner_text() != "1":
            assert time.monotonic() < deadline, "the run did not succeed within 120 s"
            time.sleep(2)
            go("Task Summary")  # the summary is a snapshot: open it again
        shot("task-summary")

        page.get_by_role("link", name="Open in Task Overview").click()
        expect(page.get_by_role("heading").filter(has_text="succeeded · hello")).to_be_visible()
        expect(page.get_by_text("hello from the browser test")).to_be_visible()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download result.txt").click()
        assert Path(download.value.path()).read_bytes() == b"rows: 42\n"
        shot("task-overview")

        go("Task Scheduling")
        shot("task-scheduling")
        browser.close()

    assert sorted(p.name for p in shots.iterdir()) == [
        "00-login.png",
        "01-register.png",
        "02-cloud-setup.png",
        "03-script-upload.png",
        "04-task-summary.png",
        "05-task-overview.png",
        "06-task-scheduling.png",
    ]
