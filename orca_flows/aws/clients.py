"""Building boto3 clients the one way Orca does: standard retries, explicit endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

__all__ = ["ClientFactory", "retry_config"]


def retry_config(max_attempts: int = 5, **overrides: Any) -> Config:
    """A botocore config with standard-mode retries (throttling, 5xx, transient network errors).

    Args:
        max_attempts: Total attempts per call, first try included.
        **overrides: Further ``botocore.config.Config`` options (timeouts, signature version).
    """
    # "total_max_attempts" counts the first try; botocore's "max_attempts" key counts retries.
    return Config(retries={"mode": "standard", "total_max_attempts": max_attempts}, **overrides)


@dataclass(frozen=True)
class ClientFactory:
    """Makes clients for one AWS account: a boto3 session, a region and an optional endpoint.

    The endpoint is the only difference between the local sandbox and real AWS.
    """

    session: boto3.Session = field(default_factory=boto3.Session)
    region: str = "us-east-1"
    endpoint_url: str | None = None
    max_attempts: int = 5

    def client(self, service: str, **config_overrides: Any) -> Any:
        """A new client for ``service`` (``s3``, ``sqs``, ``sts``, ``ssm``...)."""
        return self.session.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=retry_config(self.max_attempts, **config_overrides),
        )
