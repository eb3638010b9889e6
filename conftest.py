"""Root test configuration: no test can ever reach real AWS, and each test has its own ORCA_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set at import time, before any test module builds a boto3 session, and inherited by
# every subprocess (orca CLI, workers, the emulator). Real keys are never in reach.
_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
os.environ.update(_FAKE_AWS)
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
    os.environ.pop(_name, None)
# Switches of the test suite, not Orca settings (ORCA_TX_GUARD*: tests/support/transaction_guard).
_TEST_SWITCHES = {
    "ORCA_REQUIRE_MYSQL",
    "ORCA_TEST_MYSQL_URL",
    "ORCA_TX_GUARD",
    "ORCA_TX_GUARD_REPORT",
}
for _name in [name for name in os.environ if name.startswith("ORCA_")]:
    if _name not in _TEST_SWITCHES:
        os.environ.pop(_name)


@pytest.fixture(autouse=True)
def orca_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ORCA_HOME (and so a fresh SQLite file and sandbox record) per test."""
    home = tmp_path / "orca-home"
    monkeypatch.setenv("ORCA_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def fresh_client_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients cached by block settings must not carry one test's patches into the next."""
    monkeypatch.setattr("orca_blocks.credentials._FACTORIES", {})
