"""From a run's rows to a runner and a RunSpec: where and what the bootstrap executes."""

from __future__ import annotations

import sys
from pathlib import Path

from orca_flows.db.models import Pipeline, Run, ScriptVersion
from orca_flows.domain.rules import check_local_runner_allowed, parse_targets
from orca_flows.domain.s3_layout import s3_uri, ssm_output_prefix
from orca_flows.errors import InvalidStateError
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.runners import LocalRunner, Runner, RunSpec, SsmRunner
from orca_flows.settings import OrcaSettings

__all__ = [
    "check_can_start",
    "delivery_timeout_seconds",
    "output_uri",
    "runner_for",
    "spec_for",
]


def output_uri(run: Run, bucket: str) -> str:
    """The run's S3 prefix: each attempt's log, outputs/ and exit-code live in its
    ``attempts/<n>/`` folder under it."""
    return s3_uri(bucket, run.s3_prefix or "")


def spec_for(run: Run, pipeline: Pipeline, version: ScriptVersion, bucket: str) -> RunSpec:
    """What the bootstrap is to run for ``run``."""
    return RunSpec(
        run_id=run.id,
        pipeline=pipeline.name,
        script_uri=s3_uri(bucket, version.s3_key),
        script_sha256=version.sha256,
        script_name=version.s3_key.rsplit("/", 1)[1],
        output_uri=output_uri(run, bucket),
        timeout_seconds=pipeline.timeout_seconds,
        environment={k: str(v) for k, v in (pipeline.environment or {}).items()},
        attempt=max(run.attempt, 1),
    )


def _local_env(access: LinkAccess) -> dict[str, str]:
    """The bootstrap's whole environment on this machine: the aws CLI pointed at the link.

    Nothing of the worker's own environment: no ``ORCA_*`` setting, no database URL, no
    Prefect URL, key or auth string, no instance credentials; a PATH of the venv (the
    aws CLI installed with Orca, python3) and the system's directories. No HOME either:
    the local runner gives each execution a fresh temporary one, never ``ORCA_HOME``.
    The bootstrap adds the script contract's ``ORCA_RUN_ID``, ``ORCA_PIPELINE`` and
    ``ORCA_OUTPUT_DIR`` and the pipeline's own environment.

    On EC2 the instance profile supplies credentials; here the link's assumed-role keys
    do (they expire with the role session, so a local run is bounded by it: one hour).
    """
    session_credentials = access.factory.session.get_credentials()
    credentials = session_credentials.get_frozen_credentials() if session_credentials else None
    if credentials is None or not credentials.access_key or not credentials.secret_key:
        # The link's block always gives a refreshing session; this is a broken link.
        raise InvalidStateError("the link's session has no credentials; run `orca link check`.")
    env: dict[str, str] = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
        "AWS_DEFAULT_REGION": str(access.credentials.region_name),
        "LANG": "C.UTF-8",
    }
    if credentials.token:
        env["AWS_SESSION_TOKEN"] = credentials.token
    if access.factory.endpoint_url:
        env["AWS_ENDPOINT_URL"] = access.factory.endpoint_url
    return env


def check_can_start(pipeline: Pipeline, settings: OrcaSettings) -> None:
    """Refuse to start ``pipeline``'s script where its runner may not run it.

    Checked again at each start, not only when the pipeline is saved: the row may be older
    than the rule, and starting is the step that runs code on Orca's host.

    Raises:
        InvalidInputError: On field ``runner``: the pipeline is ``local`` on a link that
            may not run scripts on this host.
    """
    if pipeline.runner == "local":
        check_local_runner_allowed(
            pipeline.runner,
            link_name=pipeline.link.name,
            sandbox_link=bool(pipeline.link.local),
            allow_local_runner=settings.allow_local_runner,
        )


def delivery_timeout_seconds(access: LinkAccess, settings: OrcaSettings) -> int:
    """SSM's delivery timeout for the link's runs: its EC2 runner block's, as last read.

    The worker setting ``ssm_delivery_timeout_seconds`` applies to a link without the block
    (made before it existed), and to every link on a worker where it is set explicitly
    (``ORCA_SSM_DELIVERY_TIMEOUT_SECONDS``: a test, or an operator overriding all links,
    as the queue block's worker settings do).
    """
    if access.runner is None or "ssm_delivery_timeout_seconds" in settings.model_fields_set:
        return settings.ssm_delivery_timeout_seconds
    return access.runner.delivery_timeout_seconds


def runner_for(
    pipeline: Pipeline, access: LinkAccess, settings: OrcaSettings, *, stopping: bool = False
) -> Runner:
    """The runner of ``pipeline``: SSM on the user's instances, or this machine.

    Args:
        pipeline: The pipeline, its ``link`` loaded.
        access: The link's clients and EC2 runner block (the worker's: read again at each
            links refresh, so an edit of the block applies to the runs started after it).
        settings: Orca's settings.
        stopping: The runner only kills an execution already running (a stop), which is
            never refused.

    Raises:
        InvalidInputError: On field ``runner``: the pipeline is ``local`` on a link that
            may not run scripts on this host (a pipeline saved before that rule, or since
            ``ORCA_ALLOW_LOCAL_RUNNER`` was turned off). Nothing is started.
    """
    if not stopping:
        check_can_start(pipeline, settings)
    s3 = access.client("s3")
    if pipeline.runner == "local":
        return LocalRunner(_local_env(access), state_dir=settings.home / "runs", s3_client=s3)
    return SsmRunner(
        access.client("ssm"),
        targets=parse_targets(pipeline.target or "", field="targets"),
        output_bucket=access.bucket,
        output_key_prefix=ssm_output_prefix(pipeline.owner_id, pipeline.name),
        s3_client=s3,
        delivery_timeout_seconds=delivery_timeout_seconds(access, settings),
    )
