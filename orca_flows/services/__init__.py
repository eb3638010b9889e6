"""Orca's use cases, shared by the CLI, the flows and the web app."""
