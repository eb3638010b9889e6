"""`orca link check`: verify a link step by step, each failure with its fix."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict

from botocore.exceptions import BotoCoreError, ClientError

from orca_flows.aws.link_defaults import DEFAULT_TAG_KEY, DEFAULT_TAG_VALUE
from orca_flows.aws.sqs import FifoQueue
from orca_flows.aws.sts import caller_identity
from orca_flows.db.base import utcnow
from orca_flows.db.models import CloudLink
from orca_flows.db.repositories import links as links_repo
from orca_flows.domain.actor import Actor
from orca_flows.domain.s3_layout import probe_relative_key
from orca_flows.domain.states import CheckStatus
from orca_flows.domain.views import CheckStep, LinkCheck
from orca_flows.errors import OrcaError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services import lookup
from orca_flows.services.links import link_access
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["check_link"]

logger = get_logger(__name__)

_PROBE_GROUP = "orca-link-check"
_PROBE_RECEIVES = 3  # receives of 1 s each while looking for the probe


class _StepFailed(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def _aws_reason(error: Exception) -> str:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Error')}: {info.get('Message', '')}".strip()
    return str(error)


def _assume(access: LinkAccess, link: CloudLink) -> str:
    try:
        identity = caller_identity(access.client("sts"))
    except (OrcaError, BotoCoreError, ClientError) as error:
        raise _StepFailed(
            f"cannot assume {link.role_arn}: {_aws_reason(error)}",
            "The role's trust policy must allow Orca's account with this link's ExternalId: "
            f"run `orca link update {link.name}`, which issues a new ExternalId for this "
            "link and prints the stack update to deploy, then check again.",
        ) from error
    return identity.arn


def _account(access: LinkAccess, link: CloudLink) -> str:
    try:
        account = caller_identity(access.client("sts")).account
    except (OrcaError, BotoCoreError, ClientError) as error:
        raise _StepFailed(
            f"sts:GetCallerIdentity: {_aws_reason(error)}",
            "The role worked a moment ago: check AWS's status and the network, then run "
            "`orca link check` again.",
        ) from error
    if account != link.account_id:
        raise _StepFailed(
            f"the credentials belong to account {account}, the role ARN to {link.account_id}",
            "Re-create the link with the RoleArn output of the stack in the right account.",
        )
    return f"account {account}"


def _bucket(access: LinkAccess, link: CloudLink, user_id: int) -> str:
    bucket = access.user_bucket(user_id)
    key = probe_relative_key(str(uuid.uuid4()))
    try:
        bucket.put(key, b"orca link check probe")
        if bucket.get(key) != b"orca link check probe":
            raise _StepFailed(
                "the probe object read back differently", "Check the bucket's policies."
            )
        bucket.delete(key)
    except (BotoCoreError, ClientError) as error:
        raise _StepFailed(
            f"{bucket.uri(key)}: {_aws_reason(error)}",
            f"The bucket {link.bucket} must exist in account {link.account_id} and the role "
            "needs s3:PutObject, s3:GetObject and s3:DeleteObject on orca/*; re-deploy the "
            "kit's stack or pass --bucket to `orca link create`.",
        ) from error
    return f"wrote, read and deleted {bucket.uri(key)}"


def _queue(access: LinkAccess, link: CloudLink) -> str | tuple[CheckStatus, str]:
    """Probe the queue without touching any run's message.

    Every ReceiveMessage counts a receive against each message it returns, and enough of
    them send a run's message to the dead-letter queue: so the check receives only when no
    message waits (it can then get only its own probe, or nothing when a worker took it
    first). Its probe is in a group of its own and carries ``PROBE_ATTRIBUTE``: a worker
    deletes a probe and never takes it for a run.
    """
    queue = access.queue()
    probe_id = str(uuid.uuid4())
    try:
        waiting = queue.waiting_messages()
        queue.send(
            json.dumps({"probe": probe_id}),
            group_id=f"{_PROBE_GROUP}-{probe_id}",
            dedup_id=probe_id,
            probe=probe_id,
        )
        if waiting:
            # Sending is proven; receiving is not, and only a worker's receive will prove
            # it: the step says so rather than passing on half the evidence.
            return CheckStatus.UNVERIFIED, (
                f"sent a probe to {link.queue_url}; receive not tried: {waiting} message(s) "
                "wait there and a receive would count against their runs (a worker serving "
                "the queue proves receiving, and deletes the probe)"
            )
        return _receive_probe(queue, link, probe_id)
    except (BotoCoreError, ClientError) as error:
        raise _StepFailed(
            f"{link.queue_url}: {_aws_reason(error)}",
            "The FIFO queue must exist in the linked account and the role needs "
            "sqs:GetQueueAttributes, SendMessage, ReceiveMessage, DeleteMessage and "
            "ChangeMessageVisibility on it (the kit grants them).",
        ) from error


def _receive_probe(queue: FifoQueue, link: CloudLink, probe_id: str) -> str:
    """Receive the probe just sent (to an otherwise empty queue) and delete it."""
    found = False
    for _ in range(_PROBE_RECEIVES):
        runs_seen = False
        for message in queue.receive(max_messages=10, wait_seconds=1, visibility_timeout=30):
            if message.probe is None:
                # A run submitted since the count: hand it back at once (every one of the
                # batch, never left hidden), then stop receiving.
                queue.change_visibility(message.receipt_handle, 0)
                runs_seen = True
                continue
            queue.delete(message.receipt_handle)  # ours, or one an earlier check left
            found = found or message.probe == probe_id
        if found:
            return f"sent, received and deleted a probe on {link.queue_url}"
        if runs_seen:
            return f"sent a probe to {link.queue_url} and received from it"
    return (
        f"sent a probe to {link.queue_url} and received from it (a worker serving the queue "
        "took the probe first; workers delete probes)"
    )


def _ssm(access: LinkAccess, link: CloudLink) -> str:
    """The linked account's SSM-managed instances tagged for Orca: at least one online.

    The same call on AWS and on the sandbox, whose emulator answers it from its fleet.
    """
    ssm = access.client("ssm")
    tag_filter = [{"Key": f"tag:{DEFAULT_TAG_KEY}", "Values": [DEFAULT_TAG_VALUE]}]
    try:
        instances = ssm.describe_instance_information(Filters=tag_filter)["InstanceInformationList"]
    except (BotoCoreError, ClientError) as error:
        raise _StepFailed(
            f"ssm:DescribeInstanceInformation: {_aws_reason(error)}",
            "The role needs ssm:DescribeInstanceInformation (the kit grants it).",
        ) from error
    online = [i["InstanceId"] for i in instances if i.get("PingStatus") == "Online"]
    if not online:
        offline = f" ({len(instances)} tagged, none online)" if instances else ""
        fix = (
            "Start the sandbox's instances' agents (`orca local agent start INSTANCE`; "
            "`orca local status` lists them) or add instances with `orca local up --instances N`."
            if link.local
            else "Tag the instances Orca may use, give them an instance profile with "
            "AmazonSSMManagedInstanceCore and read/write on the bucket's orca/ prefix, and "
            "make sure the SSM agent runs."
        )
        raise _StepFailed(
            f"no SSM-managed instance tagged {DEFAULT_TAG_KEY}={DEFAULT_TAG_VALUE} is "
            f"online{offline}",
            fix,
        )
    return f"{len(online)} instance(s) online: {', '.join(online[:5])}"


def _run(name: str, step: Callable[[], str | tuple[CheckStatus, str]]) -> CheckStep:
    try:
        result = step()
    except _StepFailed as failure:
        return CheckStep(name, CheckStatus.FAILED, failure.detail, failure.fix)
    if isinstance(result, tuple):
        return CheckStep(name, *result)
    return CheckStep(name, CheckStatus.PASSED, result)


def check_link(settings: OrcaSettings, actor: Actor, name: str) -> LinkCheck:
    """Run every step against the linked account and store the outcome on the link.

    Three steps, so no transaction is open while AWS is polled (the queue step alone may
    take seconds): read the link (a unit of work), load its credentials block and run the
    checks (Prefect, STS, S3, SQS, SSM; no unit), then store the outcome (a second unit).
    A link removed or re-created while it was checked keeps no outcome: the check is
    returned all the same. Steps after a failed role assumption are skipped (nothing else
    can work without it).

    Raises:
        NotFoundError: No such link (or its block document is gone).
        PrefectUnavailableError: Prefect cannot be reached.
    """
    with unit_of_work(settings) as session:
        link = lookup.get_link(session, actor, name)
    with prefect_api(settings):
        access = link_access(link)
        result = LinkCheck(link.name, tuple(_steps(access, link, actor.user_id)))
    with unit_of_work(settings) as session:
        stored = links_repo.record_check(
            session,
            link.id,
            link.block_document_name,
            status=CheckStatus.PASSED if result.passed else CheckStatus.FAILED,
            at=utcnow(),
            detail=json.dumps([asdict(step) for step in result.steps]),
        )
    if not stored:
        logger.info("link %r changed while it was checked; its outcome is not stored", name)
    return result


def _steps(access: LinkAccess, link: CloudLink, user_id: int) -> list[CheckStep]:
    steps = [_run("assume role", lambda: _assume(access, link))]
    later: list[tuple[str, Callable[[], str | tuple[CheckStatus, str]]]] = [
        ("account", lambda: _account(access, link)),
        ("bucket", lambda: _bucket(access, link, user_id)),
        ("queue", lambda: _queue(access, link)),
        ("ssm targets", lambda: _ssm(access, link)),
    ]
    if steps[0].status == CheckStatus.FAILED:
        return steps + [CheckStep(n, CheckStatus.SKIPPED, "needs the role") for n, _ in later]
    return steps + [_run(n, step) for n, step in later]
