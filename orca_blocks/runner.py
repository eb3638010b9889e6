"""The EC2 runner block: where a pipeline's script runs and where its outputs go."""

import re
from typing import Any, Literal, Self

from prefect.blocks.core import Block
from pydantic import Field, field_validator, model_validator

from orca_blocks._validation import refused_as_value_error
from orca_blocks.credentials import OrcaLinkedCloudCredentials
from orca_flows.domain import rules
from orca_flows.domain.s3_layout import ORCA_PREFIX

__all__ = ["OrcaEc2Runner"]

_OUTPUT_PREFIX = re.compile(r"(?:[^/].*/)?")


class OrcaEc2Runner(Block):
    """Where scripts run (EC2 through SSM Run Command, or this machine) and where outputs go.

    Example:
        Get the clients a runner needs:
        ```python
        from orca_blocks import OrcaEc2Runner

        runner = OrcaEc2Runner.load("BLOCK_NAME")
        ssm = runner.get_ssm_client()
        s3 = runner.get_s3_client()
        ```
    """

    _block_type_name = "Orca EC2 Runner"
    _block_type_slug = "orca-ec2-runner"
    _logo_url = OrcaLinkedCloudCredentials._logo_url
    _documentation_url = OrcaLinkedCloudCredentials._documentation_url
    _description = (
        "Where Orca runs a pipeline's script (EC2 instances through SSM Run Command, or "
        "locally) and the S3 bucket that receives its log and outputs."
    )

    runner: Literal["ssm", "local"] = Field(
        default="ssm",
        description=(
            "ssm runs on EC2 instances through SSM Run Command; "
            "local runs the same bootstrap on this machine."
        ),
    )
    targets: list[str] = Field(
        default_factory=list,
        description=(
            "EC2 instance ids (i-0123456789abcdef0), or one tag:KEY=VALUE selecting "
            "instances; the local runner ignores them."
        ),
    )
    output_bucket: str = Field(
        default=...,
        description="S3 bucket in the linked account for scripts, logs and outputs.",
    )
    output_prefix: str = Field(
        default=ORCA_PREFIX,
        description=(
            "Key prefix under which Orca writes in the bucket, ending with a slash; "
            "the link kit's role may only use keys under orca/."
        ),
    )
    execution_timeout_seconds: int = Field(
        default=3600,
        ge=rules.MIN_TIMEOUT_SECONDS,
        le=rules.MAX_TIMEOUT_SECONDS,
        description="Longest a script may run in seconds, 1 to 172800 (48 hours, SSM's maximum).",
    )
    delivery_timeout_seconds: int = Field(
        default=600,
        ge=30,
        le=2592000,
        description=(
            "Seconds SSM keeps trying to reach an instance before the command "
            "times out, 30 to 2592000."
        ),
    )
    credentials: OrcaLinkedCloudCredentials = Field(
        default=...,
        description="The linked account that owns the instances and the bucket.",
    )

    @field_validator("targets")
    @classmethod
    def _check_targets(cls, value: list[str]) -> list[str]:
        # No targets is the local runner's case; _check_ssm_has_targets refuses it for ssm.
        if not value:
            return value
        return refused_as_value_error(rules.check_targets, value, field="targets")

    @field_validator("output_bucket")
    @classmethod
    def _check_output_bucket(cls, value: str) -> str:
        return refused_as_value_error(rules.check_bucket_name, value, field="output_bucket")

    @field_validator("output_prefix")
    @classmethod
    def _check_output_prefix(cls, value: str) -> str:
        if not _OUTPUT_PREFIX.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a key prefix: it must end with '/' and not start "
                "with one, e.g. orca/."
            )
        return value

    @model_validator(mode="after")
    def _check_ssm_has_targets(self) -> Self:
        if self.runner == "ssm" and not self.targets:
            raise ValueError(
                "The ssm runner needs targets: EC2 instance ids or one tag:KEY=VALUE "
                "(the instances must run the SSM agent); or choose the local runner."
            )
        return self

    def get_ssm_client(self) -> Any:
        """An SSM client acting as the linked role, with the link's region and endpoint."""
        return self.credentials.get_client("ssm")

    def get_s3_client(self) -> Any:
        """An S3 client acting as the linked role, with the link's region and endpoint."""
        return self.credentials.get_client("s3")
