"""Orca's Prefect blocks: a linked AWS account's credentials, its run queue and its EC2 runner."""

from orca_blocks.credentials import OrcaLinkedCloudCredentials
from orca_blocks.queue import OrcaRunQueue
from orca_blocks.runner import OrcaEc2Runner

__all__ = ["OrcaEc2Runner", "OrcaLinkedCloudCredentials", "OrcaRunQueue"]
