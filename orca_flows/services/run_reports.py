"""STUB by the lead until helper "report" writes this module (overwrite freely)."""

from __future__ import annotations

from orca_flows.settings import OrcaSettings

__all__ = ["publish_run_artifacts", "report_run"]


def report_run(settings: OrcaSettings, run_id: str) -> None:
    """Stub: emits nothing yet."""


async def publish_run_artifacts(settings: OrcaSettings, run_id: str, flow_run_id: str) -> None:
    """Stub: publishes nothing yet."""
