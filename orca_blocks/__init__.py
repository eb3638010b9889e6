"""Orca's Prefect blocks: a linked AWS account's credentials, the run queue workers poll, and
how workers run scripts on the account's EC2 instances.

``OrcaLinkedCloud`` is the credentials block under a shorter name, for users' own code::

    from orca_blocks import OrcaLinkedCloud

    s3 = OrcaLinkedCloud.load("orca-link-...").get_client("s3")
"""

from typing import TYPE_CHECKING

from orca_blocks.credentials import OrcaLinkedCloudCredentials
from orca_blocks.queue import OrcaRunQueue
from orca_blocks.runner import OrcaEc2Runner

__all__ = ["OrcaEc2Runner", "OrcaLinkedCloud", "OrcaLinkedCloudCredentials", "OrcaRunQueue"]

if TYPE_CHECKING:
    OrcaLinkedCloud = OrcaLinkedCloudCredentials
else:

    def __getattr__(name: str) -> type[OrcaLinkedCloudCredentials]:
        # An alias, not a subclass: a subclass would be a second class with the same block
        # type slug, which Prefect's block registry warns about and resolves to whichever
        # was imported last. The alias is served here rather than bound in the module, so
        # `prefect block register -m orca_blocks` (which walks the module's members) sees
        # the credentials block once, not twice.
        if name == "OrcaLinkedCloud":
            return OrcaLinkedCloudCredentials
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
