"""Orca's Prefect deployment definitions (no logic: they call orca_flows flows)."""
