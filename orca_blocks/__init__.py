"""Orca's Prefect blocks: a linked AWS account's credentials and the run queue workers poll."""

from orca_blocks.credentials import OrcaLinkedCloudCredentials
from orca_blocks.queue import OrcaRunQueue

__all__ = ["OrcaLinkedCloudCredentials", "OrcaRunQueue"]
