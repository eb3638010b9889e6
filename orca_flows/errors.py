"""Orca's errors: one flat hierarchy under ``OrcaError``; each message says what to do."""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "AwsError",
    "BusyError",
    "DatabaseError",
    "ExternalIdNotIssuedError",
    "InUseError",
    "InvalidInputError",
    "InvalidStateError",
    "LoginError",
    "NoInstanceAvailableError",
    "NotFoundError",
    "NotInFleetError",
    "OrcaError",
    "PrefectUnavailableError",
    "RateLimitedError",
    "RunNotSucceededError",
    "SandboxError",
    "SandboxNotRunningError",
]


class OrcaError(Exception):
    """Root of Orca's errors. ``str(error)`` is a sentence a user can act on."""


class InvalidInputError(OrcaError, ValueError):
    """A value given by the user is not acceptable.

    Attributes:
        field: Name of the offending input (``email``, ``password``, ...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ExternalIdNotIssuedError(InvalidInputError):
    """An ExternalId Orca did not issue to this user, or one another link uses already.

    The message names `orca link kit`; the web app words its own (``no_kit`` tells "no
    ExternalId was given and none is waiting" from "this one is refused").
    """

    def __init__(self, message: str, *, no_kit: bool = False) -> None:
        super().__init__("external_id", message)
        self.no_kit = no_kit


class NotFoundError(OrcaError, LookupError):
    """A named thing does not exist (or belongs to another user, which looks the same)."""

    def __init__(self, kind: str, name: str, hint: str = "") -> None:
        message = f"{kind} {name!r} does not exist."
        super().__init__(f"{message} {hint}".strip())
        self.kind = kind
        self.name = name


class AlreadyExistsError(OrcaError):
    """A thing with that name exists already."""

    def __init__(self, kind: str, name: str, hint: str = "") -> None:
        message = f"{kind} {name!r} already exists."
        super().__init__(f"{message} {hint}".strip())
        self.kind = kind
        self.name = name


class DatabaseError(OrcaError):
    """Orca's database cannot be reached or migrated."""


class SandboxError(OrcaError):
    """The local AWS emulator could not be started, reached or provisioned."""


class NotInFleetError(NotFoundError):
    """`orca local agent` named an instance that is not one of the sandbox's fleet.

    Attributes:
        fleet: The ids of the sandbox's instances.
    """

    def __init__(self, instance_id: str, fleet: list[str]) -> None:
        known = (
            f"its instances are {', '.join(fleet)}"
            if fleet
            else "it has none: start some with `orca local up --instances N`"
        )
        super().__init__(
            "sandbox instance",
            instance_id,
            f"Name one of the local sandbox's instances; {known} (`orca local status`).",
        )
        self.fleet = fleet


class SandboxNotRunningError(SandboxError):
    """A command needs the local sandbox and it is not running."""

    def __init__(self) -> None:
        super().__init__("The local sandbox is not running; start it with `orca local up`.")


class AwsError(OrcaError):
    """An AWS call failed for a reason retries cannot fix.

    Attributes:
        operation: The API operation, e.g. ``s3:PutObject``.
        code: The AWS error code, when there is one.
    """

    def __init__(self, operation: str, code: str | None, message: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code


class InUseError(OrcaError):
    """A thing cannot be removed or changed while something else depends on it."""


class PrefectUnavailableError(OrcaError):
    """The Prefect API (server or Cloud) cannot be reached."""


class InvalidStateError(OrcaError):
    """The thing is not in a state that allows this (e.g. stopping a finished run)."""


class RunNotSucceededError(InvalidStateError):
    """A run a flow waited for (``orca_flows.tasks.run_pipeline``) ended ``failed``,
    ``timed_out`` or ``cancelled``; ``run_id`` and ``state`` say which and how.

    The keyword arguments have defaults so the error pickles (Prefect may carry it).
    """

    def __init__(self, message: str, *, run_id: str = "", state: str = "") -> None:
        super().__init__(message)
        self.run_id = run_id
        self.state = state


class NoInstanceAvailableError(OrcaError):
    """None of a runner's target instances is online in SSM, so nothing was sent.

    Attributes:
        targets: The runner's targets (instance ids or one ``tag:KEY=VALUE``).
    """

    def __init__(self, targets: list[str]) -> None:
        super().__init__(
            f"No SSM-managed instance among {', '.join(targets)} is online: start one, check "
            "that its SSM agent runs and its instance profile allows SSM, or change the "
            "runner's targets."
        )
        self.targets = targets


class LoginError(OrcaError):
    """A sign-in was refused; the message never says why (one message for every cause)."""


class RateLimitedError(OrcaError):
    """Too many sign-in or sign-up attempts came from one client address in the window."""


class BusyError(OrcaError):
    """The server is at its limit of concurrent password checks; the request may be retried."""
