"""moto's SSM API, answering from the emulated instances' agent for AWS-RunShellScript.

Patched into moto's ``SimpleSystemManagerResponse`` in the emulator's own process
(``install``): SendCommand checks the instances as AWS does and hands the command to the
agent; GetCommandInvocation, ListCommands, ListCommandInvocations and CancelCommand answer
from what the agent did; DescribeInstanceInformation lists the managed instances with
their PingStatus. Other documents keep moto's behaviour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.ssm.responses import SimpleSystemManagerResponse

from orca_emulator.agent import Agent, Invocation
from orca_emulator.instances import (
    InstanceCredentials,
    ManagedInstance,
    instance_running,
    managed_instances,
)

__all__ = ["install"]

DOCUMENT = "AWS-RunShellScript"
_DEFAULT_EXECUTION_TIMEOUT = 3600
_MAX_EXECUTION_TIMEOUT = 172_800
_DEFAULT_DELIVERY_TIMEOUT = 3600
_AGENT_VERSION = "3.3.0.0"

_state: dict[str, Any] = {}


def _agent() -> Agent:
    return _state["agent"]


def _credentials() -> InstanceCredentials:
    return _state["credentials"]


def install(home: Path, endpoint_url: str) -> Agent:
    """Patch moto's SSM responses to run AWS-RunShellScript on the emulated instances."""
    credentials = InstanceCredentials(home, endpoint_url)
    agent = Agent(home, credentials.environment, credentials.upload_output, instance_running)
    _state.update(agent=agent, credentials=credentials)
    original = {
        name: getattr(SimpleSystemManagerResponse, name)
        for name in ("send_command", "get_command_invocation", "list_commands")
    }
    _state["original"] = original
    for name, method in _METHODS.items():
        setattr(SimpleSystemManagerResponse, name, method)
    return agent


def _invalid_instances(ids: list[str], account_id: str) -> JsonRESTError:
    return JsonRESTError(
        "InvalidInstanceId",
        f"Instances [{', '.join(ids)}] not in a valid state for account {account_id}",
    )


def _int_parameter(value: Any, default: int, name: str, low: int, high: int) -> int:
    if value in (None, "", []):
        return default
    raw = value[0] if isinstance(value, list) else value
    try:
        number = int(str(raw))
    except ValueError:
        number = -1
    if not low <= number <= high:
        raise JsonRESTError(
            "InvalidParameters", f"{name} must be an integer between {low} and {high}."
        )
    return number


def _targeted(targets: list[dict[str, Any]], instances: list[ManagedInstance]) -> list[str]:
    chosen = []
    for instance in instances:
        for target in targets:
            key, values = target.get("Key", ""), target.get("Values", [])
            if key.startswith("tag:") and instance.tags.get(key[4:]) in values:
                chosen.append(instance.instance_id)
            elif key == "tag-key" and set(values) & set(instance.tags):
                chosen.append(instance.instance_id)
            elif key == "InstanceIds" and instance.instance_id in values:
                chosen.append(instance.instance_id)
    return sorted(set(chosen))


def send_command(self: SimpleSystemManagerResponse) -> Any:
    """SendCommand: AWS-RunShellScript goes to the agent, after AWS's instance checks."""
    if self._get_param("DocumentName") != DOCUMENT:
        return _state["original"]["send_command"](self)
    account, region = self.current_account, self.region
    explicit: list[str] = self._get_param("InstanceIds", [])
    targets: list[dict[str, Any]] = self._get_param("Targets", [])
    if bool(explicit) == bool(targets):
        raise JsonRESTError(
            "InvalidParameters", "Specify either InstanceIds or Targets, and not both."
        )
    managed = managed_instances(account, region)
    known = {instance.instance_id: instance for instance in managed}
    if unknown := [i for i in explicit if i not in known]:
        raise _invalid_instances(unknown, account)
    instance_ids = explicit or _targeted(targets, managed)
    parameters = self._get_param("Parameters", {})
    execution_timeout = _int_parameter(
        parameters.get("executionTimeout"),
        _DEFAULT_EXECUTION_TIMEOUT,
        "executionTimeout",
        1,
        _MAX_EXECUTION_TIMEOUT,
    )
    delivery_timeout = _int_parameter(
        self._get_param("TimeoutSeconds"),
        _DEFAULT_DELIVERY_TIMEOUT,
        "TimeoutSeconds",
        30,
        2_592_000,
    )
    command = self.ssm_backend.send_command(
        comment=self._get_param("Comment", ""),
        document_name=DOCUMENT,
        timeout_seconds=delivery_timeout,
        instance_ids=list(explicit),
        max_concurrency=self._get_param("MaxConcurrency", "50"),
        max_errors=self._get_param("MaxErrors", "0"),
        notification_config=self._get_param("NotificationConfig"),
        output_s3_bucket_name=self._get_param("OutputS3BucketName", ""),
        output_s3_key_prefix=self._get_param("OutputS3KeyPrefix", ""),
        output_s3_region=self._get_param("OutputS3Region", ""),
        parameters=parameters,
        service_role_arn=self._get_param("ServiceRoleArn", ""),
        targets=[],
    )
    command.targets = targets
    command.instance_ids = list(explicit)
    invocations = []
    for instance_id in instance_ids:
        invocation = Invocation(
            command_id=command.command_id,
            instance_id=instance_id,
            comment=command.comment,
            document_name=DOCUMENT,
            commands=[str(line) for line in parameters.get("commands", [])],
            execution_timeout=execution_timeout,
            delivery_timeout=delivery_timeout,
            output_bucket=command.output_s3_bucket_name,
            output_prefix=command.output_s3_key_prefix,
            account_id=account,
            region=region,
        )
        _credentials().register(invocation, known[instance_id])
        invocations.append(invocation)
    _agent().submit(invocations)
    return ActionResult({"Command": _command_entry(command, invocations, fresh=True)})


def _command_status(invocations: list[Invocation]) -> str:
    statuses = [invocation.status for invocation in invocations]
    if "Cancelling" in statuses:
        return "Cancelling"
    if not all(invocation.finished for invocation in invocations):
        return "Pending" if set(statuses) == {"Pending"} else "InProgress"
    for status in ("Cancelled", "TimedOut", "Failed"):
        if status in statuses:
            return status
    return "Success"


def _command_entry(command: Any, invocations: list[Invocation], *, fresh: bool = False) -> dict:
    entry = command.response_object()
    # SendCommand's own answer counts nothing yet; later ones count what the agents did.
    status = "Pending" if fresh else _command_status(invocations)
    finished = [] if fresh else [i for i in invocations if i.finished]
    entry.update(
        Status=status,
        StatusDetails=status,
        TargetCount=len(invocations),
        CompletedCount=len(finished),
        ErrorCount=sum(i.status in ("Failed", "TimedOut") for i in finished),
        DeliveryTimedOutCount=sum(i.details == "DeliveryTimedOut" for i in finished),
    )
    return entry


def _known(command_id: str) -> list[Invocation] | None:
    return _agent().invocations(command_id)


def _recorded(self: SimpleSystemManagerResponse, command_id: str) -> bool:
    """Whether moto recorded the command (one of another document, not the agent's)."""
    return any(command.command_id == command_id for command in self.ssm_backend._commands)


def get_command_invocation(self: SimpleSystemManagerResponse) -> Any:
    """GetCommandInvocation from the agent (InvocationDoesNotExist until SSM has it).

    A command id SSM never issued is InvocationDoesNotExist too, as on AWS (moto would
    say InvalidCommandId).
    """
    command_id = self._get_param("CommandId")
    invocations = _known(command_id)
    if invocations is None and _recorded(self, command_id):
        return _state["original"]["get_command_invocation"](self)
    instance_id = self._get_param("InstanceId")
    found = next((i for i in invocations or [] if i.instance_id == instance_id), None)
    if found is None or not found.registered:
        # AWS says no more than the code.
        raise JsonRESTError("InvocationDoesNotExist", "")
    return ActionResult(found.get_response())


def _filters(self: SimpleSystemManagerResponse) -> dict[str, str]:
    return {f["key"]: f["value"] for f in self._get_param("Filters", []) or []}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _matches(command: Any, status: str, filters: dict[str, str]) -> bool:
    requested = command.requested_date_time.replace(tzinfo=UTC)
    checks = {
        "DocumentName": lambda v: command.document_name == v,
        "InvokedAfter": lambda v: requested >= _when(v),
        "InvokedBefore": lambda v: requested <= _when(v),
        "Status": lambda v: status == v,
    }
    return all(checks.get(key, lambda _v: True)(value) for key, value in filters.items())


def list_commands(self: SimpleSystemManagerResponse) -> Any:
    """ListCommands with the agents' statuses and the DocumentName/Invoked*/Status filters."""
    instance_id = self._get_param("InstanceId")
    commands = self.ssm_backend.list_commands(self._get_param("CommandId"), None)
    filters = _filters(self)
    entries = []
    for command in commands:
        invocations = _known(command.command_id)
        # The agent's invocations say where a command went (one sent by tag names no
        # instance of its own); moto's commands keep their instance ids.
        if instance_id and instance_id not in (
            command.instance_ids
            if invocations is None
            else [i.instance_id for i in invocations if i.registered]
        ):
            continue
        entry = (
            command.response_object()
            if invocations is None
            else _command_entry(command, invocations)
        )
        if _matches(command, entry["Status"], filters):
            entries.append(entry)
    return ActionResult({"Commands": entries})


def list_command_invocations(self: SimpleSystemManagerResponse) -> Any:
    """ListCommandInvocations of the agents' commands (registered invocations only)."""
    command_id = self._get_param("CommandId")
    instance_id = self._get_param("InstanceId")
    details = bool(self._get_param("Details", False))
    commands = (
        [self.ssm_backend.get_command_by_id(command_id)]
        if command_id
        else self.ssm_backend.list_commands(None, None)
    )
    entries = []
    for command in commands:
        for invocation in _known(command.command_id) or []:
            if invocation.registered and instance_id in (None, invocation.instance_id):
                entries.append(invocation.list_entry(details=details))
    return ActionResult({"CommandInvocations": entries})


def cancel_command(self: SimpleSystemManagerResponse) -> Any:
    """CancelCommand: the agents kill the command's process group, then say Cancelled."""
    command_id = self._get_param("CommandId")
    self.ssm_backend.get_command_by_id(command_id)  # InvalidCommandId if unknown
    _agent().cancel(command_id, self._get_param("InstanceIds"))
    return ActionResult({})


def _information(instance: ManagedInstance, agent: Agent) -> dict[str, Any]:
    online = instance.state == "running" and agent.online(instance.instance_id)
    return {
        "InstanceId": instance.instance_id,
        "PingStatus": "Online" if online else "ConnectionLost",
        "LastPingDateTime": datetime.now(UTC),
        "AgentVersion": _AGENT_VERSION,
        "IsLatestVersion": True,
        "PlatformType": "Linux",
        "PlatformName": "Amazon Linux",
        "PlatformVersion": "2023",
        "ResourceType": "EC2Instance",
        "IPAddress": instance.private_ip,
        "ComputerName": f"ip-{instance.private_ip.replace('.', '-')}.ec2.internal",
        "AssociationStatus": "Success",
    }


def _information_matches(
    info: dict[str, Any], tags: dict[str, str], key: str, values: list
) -> bool:
    if key.startswith("tag:"):
        return tags.get(key[4:]) in values
    fields = {
        "InstanceIds": info["InstanceId"],
        "PingStatus": info["PingStatus"],
        "PlatformTypes": info["PlatformType"],
        "ResourceType": info["ResourceType"],
        "AgentVersion": info["AgentVersion"],
    }
    if key == "tag-key":
        return bool(set(values) & set(tags))
    if key not in fields:
        raise JsonRESTError("InvalidInstanceInformationFilterValue", f"unknown filter {key}")
    return fields[key] in values


def describe_instance_information(self: SimpleSystemManagerResponse) -> Any:
    """DescribeInstanceInformation of the managed instances, with their PingStatus."""
    filters = [(f["Key"], f["Values"]) for f in self._get_param("Filters", []) or []]
    filters += [
        (f["key"], f["valueSet"])
        for f in self._get_param("InstanceInformationFilterList", []) or []
    ]
    agent = _agent()
    found = []
    for instance in managed_instances(self.current_account, self.region):
        info = _information(instance, agent)
        if all(_information_matches(info, instance.tags, k, v) for k, v in filters):
            found.append(info)
    return ActionResult({"InstanceInformationList": found})


_METHODS = {
    "send_command": send_command,
    "get_command_invocation": get_command_invocation,
    "list_commands": list_commands,
    "list_command_invocations": list_command_invocations,
    "cancel_command": cancel_command,
    "describe_instance_information": describe_instance_information,
}
