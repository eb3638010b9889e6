"""Orca's Prefect flows (importable by `orca serve`, `prefect deploy` and workers)."""

from orca_flows.flows.submit import FLOW_NAME, submit_pipeline_run

__all__ = ["FLOW_NAME", "submit_pipeline_run"]
