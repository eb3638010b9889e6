"""Which Prefect API Orca talks to: the one configured for Prefect, else the sandbox's server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from orca_flows.sandbox_record import running_sandbox
from orca_flows.settings import OrcaSettings

__all__ = ["configured_prefect_api_url", "prefect_api"]


def configured_prefect_api_url() -> str | None:
    """PREFECT_API_URL as Prefect itself resolves it (environment, then active profile)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


@contextmanager
def prefect_api(settings: OrcaSettings) -> Iterator[str | None]:
    """Run the block in the Prefect API Orca should use; yields its URL (None = ephemeral).

    A user's own PREFECT_API_URL (server or Cloud) always wins. Otherwise the Prefect server
    that `orca local up` started for this ORCA_HOME is used, so commands do not each pay
    for Prefect's ephemeral server. With neither, Prefect's ephemeral mode applies.
    """
    configured = configured_prefect_api_url()
    if configured:
        yield configured
        return
    state = running_sandbox(settings)
    if state is None or state.prefect_api_url is None:
        yield None
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: state.prefect_api_url}):
        yield state.prefect_api_url
