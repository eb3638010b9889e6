"""The signed-in user of a browser session, and the scope in which pages call services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import streamlit as st
from sqlalchemy.orm import Session

from orca_flows.db.engine import session_scope
from orca_flows.db.models import User
from orca_flows.errors import NotFoundError
from orca_flows.services.auth import signed_in_user
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.services.runs import Submitted, submit_run
from orca_flows.settings import OrcaSettings, get_settings

__all__ = [
    "Scope",
    "SignedIn",
    "database_session",
    "orca_settings",
    "prefect_settings",
    "require_user",
    "sign_in",
    "sign_out",
    "signed_in",
    "submit_as_user",
    "user_scope",
]

USER_KEY = "orca_user"


@dataclass(frozen=True)
class SignedIn:
    """Who this browser session signed in as (ids only: ORM rows do not outlive a session)."""

    user_id: int
    email: str


@dataclass(frozen=True)
class Scope:
    """What a page needs to call a service: a transaction, the user, the settings."""

    session: Session
    user: User
    settings: OrcaSettings


def signed_in() -> SignedIn | None:
    """The signed-in user of this browser session, if any."""
    value = st.session_state.get(USER_KEY)
    return value if isinstance(value, SignedIn) else None


def sign_in(user: User) -> None:
    """Remember ``user`` for this browser session (it ends when the tab closes)."""
    st.session_state[USER_KEY] = SignedIn(user.id, user.email)


def sign_out() -> None:
    """Forget the signed-in user and everything pages kept for them."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def orca_settings() -> OrcaSettings:
    """Orca's settings, read afresh like the CLI does."""
    return get_settings()


def require_user() -> SignedIn:
    """The signed-in user; a page run outside the router stops here."""
    user = signed_in()
    if user is None:  # only reachable if a page is run outside the router
        st.warning("Sign in first.")
        st.stop()
    return user


@contextmanager
def database_session() -> Iterator[Session]:
    """A transaction before anyone signed in (registering)."""
    with session_scope(orca_settings().effective_database_url) as session:
        yield session


@contextmanager
def prefect_settings() -> Iterator[OrcaSettings]:
    """Settings inside Orca's Prefect API, without a database transaction.

    For services that own their transactions (``submit_run``): on SQLite an open
    transaction holds the write lock, and a nested one would wait for it.
    """
    settings = orca_settings()
    with prefect_api(settings):
        yield settings


def submit_as_user(pipeline: str) -> Submitted:
    """Queue a run of the signed-in user's pipeline, requested by them."""
    signed = require_user()
    with prefect_settings() as settings:
        return submit_run(settings, signed.user_id, pipeline, requested_by=f"user:{signed.user_id}")


@contextmanager
def user_scope(*, prefect: bool = False) -> Iterator[Scope]:
    """One transaction as the signed-in user; ``prefect`` also enters Orca's Prefect API.

    Use ``prefect=True`` for anything that loads a link's credentials block (S3, SQS,
    checks). A user deleted meanwhile is signed out.
    """
    signed = require_user()
    settings = orca_settings()
    with ExitStack() as stack:
        if prefect:
            stack.enter_context(prefect_api(settings))
        session = stack.enter_context(session_scope(settings.effective_database_url))
        try:
            user = signed_in_user(session, signed.user_id)
        except NotFoundError:
            sign_out()
            st.rerun()
        yield Scope(session, user, settings)
