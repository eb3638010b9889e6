"""Runners: start Orca's bootstrap on EC2 through SSM (``SsmRunner``) or here (``LocalRunner``)."""

from orca_flows.runners.base import Backoff, Runner, wait_for_execution
from orca_flows.runners.bootstrap import render_bootstrap, render_kill
from orca_flows.runners.local import LocalRunner
from orca_flows.runners.spec import (
    EXIT_CODE_KEY,
    LOG_KEY,
    OUTPUTS_PREFIX,
    Execution,
    ExecutionStatus,
    RunSpec,
    parse_marker,
    read_marker,
)
from orca_flows.runners.ssm import NoInstanceAvailableError, SsmRunner

__all__ = [
    "EXIT_CODE_KEY",
    "LOG_KEY",
    "OUTPUTS_PREFIX",
    "Backoff",
    "Execution",
    "ExecutionStatus",
    "LocalRunner",
    "NoInstanceAvailableError",
    "RunSpec",
    "Runner",
    "SsmRunner",
    "parse_marker",
    "read_marker",
    "render_bootstrap",
    "render_kill",
    "wait_for_execution",
]
