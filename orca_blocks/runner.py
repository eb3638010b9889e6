"""The EC2 runner block: how Orca's workers send a link's runs to EC2 through SSM Run Command."""

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field

from orca_blocks.credentials import OrcaLinkedCloudCredentials
from orca_flows.settings import OrcaSettings

__all__ = ["MAX_DELIVERY_TIMEOUT_SECONDS", "MIN_DELIVERY_TIMEOUT_SECONDS", "OrcaEc2Runner"]

# AWS's limits for SendCommand's TimeoutSeconds (30 s to 30 days), as the setting's.
MIN_DELIVERY_TIMEOUT_SECONDS = 30
MAX_DELIVERY_TIMEOUT_SECONDS = 2_592_000

# The worker setting is the default of a new block (one copy of the default).
_DELIVERY_TIMEOUT = OrcaSettings.model_fields["ssm_delivery_timeout_seconds"]


class OrcaEc2Runner(Block):
    """How Orca's workers run a linked account's scripts on EC2 through SSM Run Command.

    Every worker serving the link reads this block on each links refresh (every 30 s); a
    run started after that uses the new values, a run already sent to its instance keeps
    the ones it was sent with. Edit it in the Prefect UI to change them, no restart needed.
    A worker started with ``ORCA_SSM_DELIVERY_TIMEOUT_SECONDS`` set uses that for every link
    instead; a link made before this block existed uses the worker settings.

    What a pipeline runs, on which instances and for how long live in Orca's pipeline table
    (``orca pipeline``, the web app), and the output bucket is the link's: this block holds
    only what applies to every SSM run of the link.

    Example:
        Read the delivery timeout the link's runs are sent with:
        ```python
        from orca_blocks import OrcaEc2Runner

        runner = OrcaEc2Runner.load("BLOCK_NAME")
        print(runner.delivery_timeout_seconds)
        ```
    """

    # An assignment is checked as the constructor checks: `block.field = value` then
    # `block.save(...)` cannot store what a worker would refuse to load.
    model_config = ConfigDict(validate_assignment=True)

    _block_type_name = "Orca EC2 Runner"
    _block_type_slug = "orca-ec2-runner"
    _logo_url = OrcaLinkedCloudCredentials._logo_url  # type: ignore[assignment]
    _documentation_url = OrcaLinkedCloudCredentials._documentation_url  # type: ignore[assignment]
    _description = (
        "How Orca's workers send a linked account's runs to EC2 instances through SSM Run "
        "Command; workers pick up an edit at their next links refresh (within 30 seconds)."
    )

    delivery_timeout_seconds: int = Field(
        default=_DELIVERY_TIMEOUT.default,
        ge=MIN_DELIVERY_TIMEOUT_SECONDS,
        le=MAX_DELIVERY_TIMEOUT_SECONDS,
        description=(
            "How long SSM keeps trying to reach an instance whose agent is offline before "
            f"the run fails without having run, in seconds, {MIN_DELIVERY_TIMEOUT_SECONDS} "
            f"to {MAX_DELIVERY_TIMEOUT_SECONDS} (30 days, AWS's limits). It is not the "
            "script's own timeout, which is the pipeline's."
        ),
        title="SSM delivery timeout (seconds)",
    )
