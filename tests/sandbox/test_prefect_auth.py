"""The sandbox's Prefect server is the operator's: its API answers only with the auth string
recorded for the sandbox, which Orca's own processes use (issue 10, point 3)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ORCA = str(Path(sys.executable).with_name("orca"))
PASSWORD = "correct horse battery"
pytestmark = pytest.mark.sandbox


def _orca(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORCA, *args], capture_output=True, text=True, timeout=180, env=env, input=stdin
    )


def _status(url: str, auth_string: str | None, body: dict | None = None) -> int:
    """The HTTP status of a POST to ``url`` (with Basic credentials when given)."""
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if auth_string is not None:
        token = base64.b64encode(auth_string.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _block_names(api_url: str, auth_string: str) -> list[str]:
    request = urllib.request.Request(f"{api_url}/block_documents/filter", data=b"{}", method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Basic {base64.b64encode(auth_string.encode()).decode()}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return [document["name"] for document in json.load(response)]


def test_the_sandboxs_prefect_refuses_requests_without_its_credentials(
    orca_home: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect-profile"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "ORCA_USER": "ann@example.com",
    }
    try:
        up = _orca("local", "up", env=env)
        assert up.returncode == 0, up.stderr
        api_url = json.loads((orca_home / "sandbox.json").read_text())["prefect_api_url"]
        identity_file = orca_home / "sandbox-identity.json"
        auth_string = json.loads(identity_file.read_text())["prefect_auth_string"]

        assert stat.S_IMODE(identity_file.stat().st_mode) == 0o600
        assert auth_string not in up.stdout + up.stderr
        assert _status(f"{api_url}/flows/filter", None) == 401
        assert _status(f"{api_url}/flows/filter", "orca:a guess") == 401
        assert _status(f"{api_url}/flows/filter", auth_string) == 200

        # Orca's own commands find the credentials where they find the URL: saving a link
        # writes its block documents into the sandbox's Prefect.
        added = _orca("user", "add", "ann@example.com", "--password-stdin", env=env, stdin=PASSWORD)
        linked = _orca("link", "create", "sandbox", "--local", env=env)
        assert added.returncode == 0, added.stderr
        assert linked.returncode == 0, linked.stderr
        assert any(name.startswith("orca-") for name in _block_names(api_url, auth_string))
    finally:
        down = _orca("local", "down", env=env)
    assert down.returncode == 0, down.stderr
