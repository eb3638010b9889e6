"""Fixtures for tests of users' flows: the execution harness (link, pipelines, workers)."""

from tests.execution.conftest import (  # noqa: F401 - re-exported fixtures and hook
    ledger,
    orca,
    pytest_runtest_makereport,
    workers,
)
