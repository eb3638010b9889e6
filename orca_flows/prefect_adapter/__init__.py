"""Orca's side of Prefect: which API, block documents, deployments, schedule timing, link access."""
