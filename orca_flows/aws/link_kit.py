"""The kit a user gets to link an AWS account: ExternalId, template, console link, CLI commands."""

from __future__ import annotations

import json
import re
import secrets
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from orca_flows.aws.link_defaults import DEFAULT_STACK_NAME
from orca_flows.aws.link_template import build_template
from orca_flows.domain import rules
from orca_flows.domain.regions import console_host, partition_of
from orca_flows.errors import InvalidInputError

__all__ = [
    "LinkKit",
    "cli_commands",
    "make_link_kit",
    "new_external_id",
    "quick_create_url",
    "validate_external_id",
]

# CloudFormation's rule for stack names.
_STACK_PATTERN = r"[A-Za-z][A-Za-z0-9-]{0,127}"


@dataclass(frozen=True)
class LinkKit:
    """Everything a user needs to link one AWS account to Orca.

    Attributes:
        external_id: The ExternalId the role's trust policy requires.
        template: The CloudFormation template, with the ExternalId as its default.
        template_json: ``template`` as the JSON text to save as ``orca-link.json``.
        quick_create_url: The console link that opens the stack with its parameters filled in.
        cli_commands: The AWS CLI commands that deploy the same stack and show its outputs.
        orca_account_id: Orca's AWS account, the only principal the role trusts.
        region: Where the stack, bucket and queue are created.
        stack_name: The CloudFormation stack's name.
    """

    external_id: str = field(repr=False)
    template: dict[str, Any] = field(repr=False)
    template_json: str = field(repr=False)
    quick_create_url: str = field(repr=False)
    cli_commands: tuple[str, ...] = field(repr=False)
    orca_account_id: str
    region: str
    stack_name: str


def new_external_id() -> str:
    """A fresh random ExternalId: 43 URL-safe characters, all allowed by ``sts:ExternalId``."""
    return secrets.token_urlsafe(32)


def validate_external_id(value: str) -> str:
    """Check an ExternalId against IAM's rules for ``sts:ExternalId`` and Orca's minimum length.

    Args:
        value: The ExternalId given by the user.

    Returns:
        The value, unchanged.

    Raises:
        InvalidInputError: On field ``external_id`` when the value is empty, shorter than
            32 or longer than 1224 characters, or holds a character IAM does not allow.
    """
    return rules.check_external_id(value)


def quick_create_url(
    *, region: str, template_url: str, stack_name: str, parameters: dict[str, str]
) -> str:
    """The CloudFormation console link that opens a new stack with everything filled in.

    The console loads a quick-create template only from an HTTPS URL in S3, so the link
    points to the template Orca publishes in its own public bucket (``build_template``
    without an ExternalId); the caller passes that URL, and the link's parameters carry
    this link's values.

    Args:
        region: Where the stack is created.
        template_url: The HTTPS S3 URL of the published template.
        stack_name: The stack's name.
        parameters: Template parameters by name, e.g. ``{"ExternalId": "..."}``.

    Returns:
        The URL, every value in it percent-encoded.

    Raises:
        InvalidInputError: On ``region`` when the region is unknown or its partition has no
            public console, on ``template_url`` when it is not HTTPS.
    """
    host = console_host(region)
    if host is None:
        raise InvalidInputError(
            "region",
            f"Region {region!r} is in partition {partition_of(region).name!r}, which has no "
            "public console; "
            "deploy the template with the AWS CLI commands instead.",
        )
    if not template_url.startswith("https://"):
        raise InvalidInputError(
            "template_url", f"The template URL {template_url!r} must be an https:// S3 URL."
        )
    query = {"templateURL": template_url, "stackName": stack_name}
    query.update({f"param_{name}": value for name, value in parameters.items()})
    fragment = "/stacks/quickcreate?" + urlencode(query, quote_via=quote, safe="")
    console = f"https://{host}/cloudformation/home"
    return f"{console}?{urlencode({'region': region})}#{fragment}"


def cli_commands(
    *,
    region: str,
    stack_name: str,
    external_id: str,
    orca_account_id: str,
    template_file: str = "orca-link.json",
) -> list[str]:
    """The AWS CLI commands that deploy the link stack and then show its outputs.

    Args:
        region: Where the stack is created.
        stack_name: The stack's name.
        external_id: The link's ExternalId.
        orca_account_id: Orca's AWS account.
        template_file: Where the user saved the template.

    Returns:
        Two shell-quoted command lines: ``deploy`` (which also updates an existing stack,
        e.g. to rotate the ExternalId) and ``describe-stacks`` for the role ARN.
    """
    where = ["--region", region, "--stack-name", stack_name]
    deploy = [
        *("aws", "cloudformation", "deploy", *where, "--template-file", template_file),
        *("--capabilities", "CAPABILITY_NAMED_IAM", "--no-fail-on-empty-changeset"),
        "--parameter-overrides",
        f"OrcaAccountId={orca_account_id}",
        f"ExternalId={external_id}",
    ]
    describe = ["aws", "cloudformation", "describe-stacks", *where, "--query", "Stacks[0].Outputs"]
    return [shlex.join(deploy), shlex.join(describe)]


def make_link_kit(
    *,
    orca_account_id: str,
    region: str,
    template_url: str,
    external_id: str | None = None,
    stack_name: str = DEFAULT_STACK_NAME,
) -> LinkKit:
    """Build the whole kit for one link.

    Args:
        orca_account_id: Orca's AWS account, 12 digits.
        region: The user's AWS region.
        template_url: The HTTPS S3 URL of Orca's published template (for the console link).
        external_id: Reuse this ExternalId; ``None`` makes a new one.
        stack_name: The CloudFormation stack's name.

    Returns:
        The kit.

    Raises:
        InvalidInputError: On ``account``, ``region``, ``external_id``, ``stack_name`` or
            ``template_url`` when that value cannot work.
    """
    rules.check_account_id(orca_account_id, what="Orca's account")
    partition_of(region)
    if not re.fullmatch(_STACK_PATTERN, stack_name, flags=re.ASCII):
        raise InvalidInputError(
            "stack_name",
            f"Stack name {stack_name!r} must start with a letter and hold only letters, "
            "digits and -.",
        )
    if external_id is None:
        external_id = new_external_id()
    template = build_template(orca_account_id=orca_account_id, external_id=external_id)
    parameters = {"OrcaAccountId": orca_account_id, "ExternalId": external_id}
    commands = cli_commands(
        region=region,
        stack_name=stack_name,
        external_id=external_id,
        orca_account_id=orca_account_id,
    )
    return LinkKit(
        external_id=external_id,
        template=template,
        template_json=json.dumps(template, indent=2),
        quick_create_url=quick_create_url(
            region=region, template_url=template_url, stack_name=stack_name, parameters=parameters
        ),
        cli_commands=tuple(commands),
        orca_account_id=orca_account_id,
        region=region,
        stack_name=stack_name,
    )
