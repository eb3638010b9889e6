"""The one transaction rule: a use case opens and commits its own unit of work.

No network call (AWS, Prefect, HTTP) happens while the unit is open: a use case that
needs both writes its intent, leaves the unit, makes the call, then records the result in
a second unit, so a crash between the steps leaves a state a retry or the sweeper
finishes. Callers (CLI, web app, flows) never hold a session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from orca_flows.db.engine import session_scope
from orca_flows.db.models import User
from orca_flows.db.repositories import users as users_repo
from orca_flows.domain.actor import Actor
from orca_flows.errors import NotFoundError
from orca_flows.settings import OrcaSettings

__all__ = ["acting_user", "unit_of_work"]


@contextmanager
def unit_of_work(settings: OrcaSettings) -> Iterator[Session]:
    """One transaction on Orca's database: commits at the end, rolls back on error."""
    with session_scope(settings.effective_database_url) as session:
        yield session


def acting_user(session: Session, actor: Actor) -> User:
    """The actor's row inside the current unit of work.

    Raises:
        NotFoundError: The account was removed meanwhile.
    """
    user = users_repo.get_user(session, actor.user_id)
    if user is None:
        raise NotFoundError("user", actor.email, "Sign in again or `orca user add` it.")
    return user
