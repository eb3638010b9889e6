"""Building boto3 clients the one way Orca does: standard retries, explicit endpoint."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    # The boto3 stubs are a test-only dependency: types for mypy, nothing at run time.
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

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

    The endpoint is the only difference between the local sandbox and real AWS. Clients
    are cached per factory (one session, so one set of credentials), as prefect-aws caches
    them per credentials block: building one costs milliseconds and a loaded service model,
    and boto3 clients are safe to share between threads while sessions are not, hence the
    lock around building.
    """

    session: boto3.Session = field(default_factory=boto3.Session)
    region: str = "us-east-1"
    endpoint_url: str | None = None
    max_attempts: int = 5
    _clients: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @overload
    def client(self, service: Literal["s3"], **config_overrides: Any) -> S3Client: ...
    @overload
    def client(self, service: Literal["sqs"], **config_overrides: Any) -> SQSClient: ...
    @overload
    def client(self, service: Literal["sts"], **config_overrides: Any) -> STSClient: ...
    @overload
    def client(self, service: str, **config_overrides: Any) -> Any: ...

    def client(self, service: str, **config_overrides: Any) -> Any:
        """The client for ``service`` (``s3``, ``sqs``, ``sts``, ``ssm``...) with these options.

        Args:
            service: The boto3 service name.
            **config_overrides: Further ``botocore.config.Config`` options for this client.

        Returns:
            The client; the same service and options give the same client object.
        """
        if service == "s3":
            # SigV4 everywhere: SigV2 (botocore's default for some presigned URLs) is
            # refused by regions opened since 2014 and deprecated in the others.
            config_overrides.setdefault("signature_version", "s3v4")
        key = (service, tuple(sorted(config_overrides.items())))
        # The stubs type Session.client per service-name literal; here the name is any str.
        make_client: Callable[..., Any] = self.session.client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = make_client(
                    service,
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    config=retry_config(self.max_attempts, **config_overrides),
                )
            return client
