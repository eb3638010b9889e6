"""A run's Prefect artifacts: its outputs and result as a markdown table, and its log link.

Both are attached to the execution's flow run by id, so they can be published from any
process (not only from inside the flow run). Keys are per run (``orca-run-<id8>`` and
``orca-run-<id8>-log``): Prefect versions artifacts by key, so a resumed execution's
artifacts become the latest version of the same run's artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate

from orca_flows.prefect_adapter.api import prefect_errors

__all__ = ["OutputLink", "RunArtifactFacts", "artifact_keys", "publish_artifacts"]


@dataclass(frozen=True)
class OutputLink:
    """One output file: its ``s3://`` URI and, where the link allows, a presigned URL."""

    name: str
    uri: str
    url: str | None


@dataclass(frozen=True)
class RunArtifactFacts:
    """What a run's artifacts show (read from Orca's tables and its bucket)."""

    run_id: str
    pipeline: str
    state: str
    exit_code: int | None
    duration_seconds: float | None
    attempt: int
    script_version: int
    script_sha256: str
    error: str | None
    outputs: tuple[OutputLink, ...]
    log_uri: str
    log_url: str | None


def artifact_keys(run_id: str) -> tuple[str, str]:
    """The keys of a run's outputs artifact and log-link artifact (lowercase, dashes)."""
    key = f"orca-run-{run_id[:8].lower()}"
    return key, f"{key}-log"


def _cell(text: object) -> str:
    # A markdown table cell: a pipe or a newline would break the row.
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(facts: RunArtifactFacts) -> str:
    duration = "-" if facts.duration_seconds is None else f"{facts.duration_seconds:.1f} s"
    exit_code = "-" if facts.exit_code is None else str(facts.exit_code)
    lines = [
        f"# Orca run {facts.pipeline}-{facts.run_id[:8]}",
        "",
        "| field | value |",
        "|---|---|",
        f"| run id | `{facts.run_id}` |",
        f"| state | {facts.state} |",
        f"| exit code | {exit_code} |",
        f"| duration | {duration} |",
        f"| attempt | {facts.attempt} |",
        f"| script version | {facts.script_version} |",
        f"| script sha256 | `{facts.script_sha256}` |",
    ]
    if facts.error:
        lines.append(f"| error | {_cell(facts.error)} |")
    lines += ["", "## Outputs", ""]
    if not facts.outputs:
        lines.append("The run left no outputs.")
    else:
        lines += ["| output | S3 URI | download (1 h) |", "|---|---|---|"]
        for out in facts.outputs:
            link = f"[download]({out.url})" if out.url else "-"
            lines.append(f"| {_cell(out.name)} | `{out.uri}` | {link} |")
    log = f"[{facts.log_uri}]({facts.log_url})" if facts.log_url else f"`{facts.log_uri}`"
    lines += ["", f"Log: {log}"]
    return "\n".join(lines)


async def publish_artifacts(facts: RunArtifactFacts, flow_run_id: str) -> None:
    """Create the run's outputs artifact and log-link artifact on flow run ``flow_run_id``.

    Raises:
        PrefectUnavailableError: The Prefect API did not answer.
    """
    key, log_key = artifact_keys(facts.run_id)
    flow_run = UUID(flow_run_id)
    log_link = facts.log_url or facts.log_uri
    with prefect_errors(f"publish the artifacts of run {facts.run_id}"):
        async with get_client() as client:
            await client.create_artifact(
                ArtifactCreate(
                    flow_run_id=flow_run,
                    key=key,
                    type="markdown",
                    data=_markdown(facts),
                    description=f"Orca run {facts.run_id}: {facts.state}, outputs and result",
                )
            )
            # Prefect's own link artifacts are markdown links (prefect.artifacts.LinkArtifact).
            await client.create_artifact(
                ArtifactCreate(
                    flow_run_id=flow_run,
                    key=log_key,
                    type="markdown",
                    data=f"[Full log of Orca run {facts.run_id[:8]}]({log_link})",
                    description=f"The full log of Orca run {facts.run_id} ({facts.log_uri})",
                )
            )
