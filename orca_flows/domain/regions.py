"""AWS partitions and their regions, offline: region → partition, DNS suffix, console host.

The table is kept here, not read from botocore, so the rule works without boto3 and for
every partition; ``tests/domain`` checks it against the region data bundled with botocore,
so a botocore upgrade that brings a new region fails that test until the region is added
here. A region missing from the table is refused (the message says an upgrade brings it).
"""

from __future__ import annotations

from dataclasses import dataclass

from orca_flows.errors import InvalidInputError

__all__ = [
    "PARTITIONS",
    "PARTITION_NAMES",
    "Partition",
    "console_host",
    "partition_of",
    "sqs_queue_url",
]


@dataclass(frozen=True)
class Partition:
    """An AWS partition: its regions and the hosts Orca builds URLs with.

    Attributes:
        name: ``aws``, ``aws-cn``, ``aws-us-gov``, ...
        dns_suffix: Domain of its service endpoints, e.g. ``amazonaws.com.cn``.
        console_host: The AWS console's host (``{region}`` is filled in), ``None`` when the
            partition has no public console.
        regions: Its region codes.
    """

    name: str
    dns_suffix: str
    console_host: str | None
    regions: frozenset[str]


PARTITIONS: tuple[Partition, ...] = (
    Partition(
        "aws",
        "amazonaws.com",
        "{region}.console.aws.amazon.com",
        frozenset(
            {
                "af-south-1",
                "ap-east-1",
                "ap-east-2",
                "ap-northeast-1",
                "ap-northeast-2",
                "ap-northeast-3",
                "ap-south-1",
                "ap-south-2",
                "ap-southeast-1",
                "ap-southeast-2",
                "ap-southeast-3",
                "ap-southeast-4",
                "ap-southeast-5",
                "ap-southeast-6",
                "ap-southeast-7",
                "ca-central-1",
                "ca-west-1",
                "eu-central-1",
                "eu-central-2",
                "eu-north-1",
                "eu-south-1",
                "eu-south-2",
                "eu-west-1",
                "eu-west-2",
                "eu-west-3",
                "il-central-1",
                "me-central-1",
                "me-south-1",
                "mx-central-1",
                "sa-east-1",
                "us-east-1",
                "us-east-2",
                "us-west-1",
                "us-west-2",
            }
        ),
    ),
    Partition(
        "aws-cn",
        "amazonaws.com.cn",
        "console.amazonaws.cn",
        frozenset({"cn-north-1", "cn-northwest-1"}),
    ),
    Partition(
        "aws-us-gov",
        "amazonaws.com",
        "console.amazonaws-us-gov.com",
        frozenset({"us-gov-east-1", "us-gov-west-1"}),
    ),
    Partition("aws-iso", "c2s.ic.gov", None, frozenset({"us-iso-east-1", "us-iso-west-1"})),
    Partition("aws-iso-b", "sc2s.sgov.gov", None, frozenset({"us-isob-east-1", "us-isob-west-1"})),
    Partition("aws-iso-e", "cloud.adc-e.uk", None, frozenset({"eu-isoe-west-1"})),
    Partition(
        "aws-iso-f", "csp.hci.ic.gov", None, frozenset({"us-isof-east-1", "us-isof-south-1"})
    ),
    Partition("aws-eusc", "amazonaws.eu", None, frozenset({"eusc-de-east-1"})),
)
_PARTITION_OF_REGION = {region: p for p in PARTITIONS for region in p.regions}
PARTITION_NAMES = tuple(p.name for p in PARTITIONS)


def partition_of(region: str) -> Partition:
    """The partition of a region code, e.g. ``cn-north-1`` → ``aws-cn``.

    Raises:
        InvalidInputError: On field ``region`` when the region is not in :data:`PARTITIONS`.
    """
    partition = _PARTITION_OF_REGION.get(region)
    if partition is None:
        raise InvalidInputError(
            "region",
            f"{region!r} is not an AWS region Orca knows; use a region code such as us-east-1 "
            "(list them with `aws ec2 describe-regions --query 'Regions[].RegionName'`; a "
            "region newer than this Orca needs an Orca upgrade).",
        )
    return partition


def console_host(region: str) -> str | None:
    """The AWS console's host for ``region``; ``None`` where the partition has none."""
    host = partition_of(region).console_host
    return host.format(region=region) if host else None


def sqs_queue_url(region: str, account_id: str, queue_name: str) -> str:
    """The URL SQS gives queue ``queue_name`` of ``account_id`` in ``region``."""
    return f"https://sqs.{region}.{partition_of(region).dns_suffix}/{account_id}/{queue_name}"
