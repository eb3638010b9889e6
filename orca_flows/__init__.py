"""Orca: cloud data orchestration on the user's own AWS account, as a Prefect 3 plugin."""

__version__ = "0.1.0"
