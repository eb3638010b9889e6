"""Removing a pipeline: its Prefect deployment and runs stopped first, then its rows."""

from __future__ import annotations

import time
from dataclasses import dataclass

from orca_flows.db.repositories import pipelines as pipelines_repo
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.db.repositories.schedules import get_schedule_of_pipeline
from orca_flows.domain.actor import Actor
from orca_flows.domain.s3_layout import pipeline_prefix, s3_uri
from orca_flows.domain.states import LEASED_RUN_STATES
from orca_flows.errors import InUseError, InvalidStateError
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.prefect_adapter.deployments import delete_deployment
from orca_flows.services.lookup import get_pipeline
from orca_flows.services.run_stop import stop_run
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["remove_pipeline"]


@dataclass(frozen=True)
class _Removal:
    pipeline_id: int
    name: str
    kept: str
    deployment_id: str | None
    active: tuple[str, ...]


def _plan_removal(settings: OrcaSettings, actor: Actor, name: str, force: bool) -> _Removal:
    with unit_of_work(settings) as session:
        pipeline = get_pipeline(session, actor, name)
        active = runs_repo.active_runs(session, pipeline.id)
        if active and not force:
            raise InUseError(
                f"pipeline {name!r} has {len(active)} queued or running run(s); stop them "
                f"(`orca run stop RUN_ID`) or use --force to stop them and remove."
            )
        schedule = get_schedule_of_pipeline(session, pipeline.id)
        if schedule is not None:
            # The intent, as `remove_schedule` writes it: should the removal stop half-way
            # (a run started meanwhile, a crash), the schedule reads paused, which is what
            # its deleted deployment does; `orca schedule resume` re-creates it.
            schedule.active = False
        return _Removal(
            pipeline.id,
            pipeline.name,
            s3_uri(pipeline.link.bucket or "", pipeline_prefix(actor.user_id, pipeline.name)),
            schedule.deployment_id if schedule is not None else None,
            tuple(run.id for run in active),
        )


def _wait_until_stopped(settings: OrcaSettings, removal: _Removal, run_ids: set[str]) -> None:
    """Wait (bounded by ``stop_confirm_seconds``) until the stopped runs have ended: each
    stays ``cancelling`` until its worker has confirmed its process dead."""
    deadline = time.monotonic() + settings.stop_confirm_seconds
    while time.monotonic() < deadline:
        with unit_of_work(settings) as session:
            active = runs_repo.active_runs(session, removal.pipeline_id)
            if not any(run.id in run_ids and run.state in LEASED_RUN_STATES for run in active):
                return
        time.sleep(0.5)


def remove_pipeline(settings: OrcaSettings, actor: Actor, name: str, *, force: bool = False) -> str:
    """Remove a pipeline, its versions, schedule and run history; returns where its files stay.

    Check, calls, record: one unit checks the runs (refusing queued or running ones
    unless ``force``); with no transaction open, the schedule's Prefect deployment is
    deleted (no more firings; the first unit already marked the schedule paused) and each
    active run is stopped (`stop_run`, its own units) and waited for until its process is
    confirmed dead; a last unit deletes the rows. A run that started in between, or one
    still ``cancelling`` after ``stop_confirm_seconds``, makes it refuse and nothing more
    is deleted. A crash
    between the steps leaves the pipeline in place with its schedule paused (perhaps
    without its deployment, its runs cancelled): removing it again finishes.

    Raises:
        InUseError: Runs are queued or running and ``force`` is not set.
        NotFoundError: No such pipeline.
        PrefectUnavailableError: Its schedule's deployment could not be deleted.
    """
    removal = _plan_removal(settings, actor, name, force)
    if removal.deployment_id:
        with prefect_api(settings):
            delete_deployment(removal.deployment_id, removal.name)
    for run_id in removal.active:
        try:
            stop_run(settings, actor, run_id)
        except InvalidStateError:
            pass  # it finished meanwhile
    if removal.active:
        _wait_until_stopped(settings, removal, set(removal.active))
    with unit_of_work(settings) as session:
        leased = [
            run
            for run in runs_repo.active_runs(session, removal.pipeline_id)
            if run.state in LEASED_RUN_STATES
        ]
        if started := [run.id for run in leased if run.id not in removal.active]:
            raise InUseError(
                f"run(s) {', '.join(started)} of pipeline {name!r} started while it was being "
                "removed; remove it again (with --force to stop them)."
            )
        if leased:
            # Deleting them would release their keys while their processes may live.
            raise InUseError(
                f"run(s) {', '.join(run.id for run in leased)} of pipeline {name!r} are "
                "still being stopped (cancelling) until their processes are confirmed "
                "dead; see `orca run show RUN_ID`, and remove the pipeline again then."
            )
        # A run queued meanwhile (a schedule's last firing) goes with the history.
        pipelines_repo.delete_pipeline(session, removal.pipeline_id)
    return removal.kept
