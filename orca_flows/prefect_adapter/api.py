"""Which Prefect API Orca talks to, and the one translation of its outages into Orca errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client

from orca_flows.errors import PrefectUnavailableError
from orca_flows.sandbox_record import running_sandbox, sandbox_prefect_auth_string
from orca_flows.settings import OrcaSettings

__all__ = [
    "configured_prefect_api_url",
    "prefect_api",
    "prefect_client",
    "prefect_errors",
    "prefect_unavailable",
]


def configured_prefect_api_url() -> str | None:
    """PREFECT_API_URL as Prefect itself resolves it (environment, then active profile)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


@contextmanager
def prefect_api(settings: OrcaSettings) -> Iterator[str | None]:
    """Run the block in the Prefect API Orca should use; yields its URL (None = ephemeral).

    A user's own PREFECT_API_URL (server or Cloud) always wins, with its own credentials
    (PREFECT_API_AUTH_STRING or PREFECT_API_KEY). Otherwise the Prefect server that `orca
    local up` started for this ORCA_HOME is used, with the auth string recorded for it, so
    commands do not each pay for Prefect's ephemeral server. With neither, Prefect's
    ephemeral mode applies. Prefect carries both settings into the subprocesses it starts
    (flow runs of `orca serve`).
    """
    configured = configured_prefect_api_url()
    if configured:
        yield configured
        return
    state = running_sandbox(settings)
    if state is None or state.prefect_api_url is None:
        yield None
        return
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    updates: dict[Any, str] = {PREFECT_API_URL: state.prefect_api_url}
    auth_string = sandbox_prefect_auth_string(settings)
    if auth_string:
        updates[PREFECT_API_AUTH_STRING] = auth_string
    with temporary_settings(updates=updates):
        yield state.prefect_api_url


def prefect_unavailable(action: str, detail: object) -> PrefectUnavailableError:
    """The error for a Prefect API that does not answer ``action``, saying what to do.

    Args:
        action: What Orca was doing, as a verb phrase (``save block 'x'``).
        detail: What Prefect's client said (an exception, ``HTTP 503``).
    """
    url = configured_prefect_api_url()
    where = f"at {url}" if url else "(Prefect's ephemeral mode)"
    return PrefectUnavailableError(
        f"could not {action}: the Prefect API {where} cannot be reached ({detail}). Start a "
        "Prefect server (`orca local up` or `prefect server start`) or fix PREFECT_API_URL, "
        "then try again."
    )


def _refused(action: str, status: int) -> PrefectUnavailableError:
    return PrefectUnavailableError(
        f"could not {action}: the Prefect API at {configured_prefect_api_url()} refused Orca's "
        f"credentials (HTTP {status}). Set PREFECT_API_AUTH_STRING (a server with auth) or "
        "PREFECT_API_KEY (Prefect Cloud), then try again."
    )


@contextmanager
def prefect_errors(action: str) -> Iterator[None]:
    """Turn a Prefect outage inside the block into ``PrefectUnavailableError``.

    An outage is a connection that fails, a 5xx answer, or refused credentials; any other
    error (a 4xx for a request Orca built wrong, ``ObjectNotFound``) passes unchanged.

    Raises:
        PrefectUnavailableError: The Prefect API did not answer ``action``.
    """
    try:
        yield
    except httpx.TransportError as error:
        raise prefect_unavailable(action, error) from error
    except httpx.HTTPStatusError as error:  # PrefectHTTPStatusError is one
        status = error.response.status_code
        if status in (401, 403):
            raise _refused(action, status) from error
        if status < 500:
            raise
        raise prefect_unavailable(action, f"HTTP {status}") from error
    except RuntimeError as error:
        # Prefect wraps an unreachable server in RuntimeError("Failed to reach API at ...")
        # when a client context checks the server's version (blocks go through one), and
        # an ephemeral server that does not start in "... ephemeral Prefect API server.".
        if "API" not in str(error):
            raise
        raise prefect_unavailable(action, error) from error


@contextmanager
def prefect_client(action: str) -> Iterator[SyncPrefectClient]:
    """A synchronous client of the current Prefect API, its outages made Orca errors.

    Raises:
        PrefectUnavailableError: The Prefect API did not answer ``action``.
    """
    with prefect_errors(action), get_client(sync_client=True) as client:
        yield client
