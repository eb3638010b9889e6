"""Owner-scoped lookups: an actor's link, pipeline or run, or "does not exist".

Every use case finds what it acts on through here, inside its own unit of work, so
another user's link, pipeline or run reads exactly like one that does not exist.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from orca_flows.db.models import CloudLink, Pipeline, Run
from orca_flows.db.repositories import links as links_repo
from orca_flows.db.repositories import pipelines as pipelines_repo
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.db.repositories import users as users_repo
from orca_flows.domain.actor import Actor
from orca_flows.errors import NotFoundError
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = ["actor_of", "get_link", "get_pipeline", "get_run"]


def get_link(session: Session, actor: Actor, name: str) -> CloudLink:
    """The actor's link ``name``.

    Raises:
        NotFoundError: No such link (or another user's).
    """
    link = links_repo.get_link_by_name(session, actor.user_id, name)
    if link is None:
        raise NotFoundError("link", name, "See `orca link list`.")
    return link


def get_pipeline(session: Session, actor: Actor, name: str) -> Pipeline:
    """The actor's pipeline ``name``.

    Raises:
        NotFoundError: No such pipeline (or another user's).
    """
    pipeline = pipelines_repo.get_pipeline_by_name(session, actor.user_id, name)
    if pipeline is None:
        raise NotFoundError("pipeline", name, "See `orca pipeline list`.")
    return pipeline


def get_run(session: Session, actor: Actor, run_id: str) -> Run:
    """The actor's run ``run_id``.

    Raises:
        NotFoundError: No such run (or another user's).
    """
    run = runs_repo.get_run(session, run_id, owner_id=actor.user_id)
    if run is None:
        raise NotFoundError("run", run_id, "See `orca run list`.")
    return run


def actor_of(settings: OrcaSettings, user_id: int) -> Actor:
    """The actor for a user known only by id (a schedule's firing carries the owner's id).

    Raises:
        NotFoundError: The user was removed.
    """
    with unit_of_work(settings) as session:
        user = users_repo.get_user(session, user_id)
        if user is None:
            raise NotFoundError("user", str(user_id))
        return Actor(user.id, user.email)
