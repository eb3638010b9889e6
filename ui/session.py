"""The signed-in user of a browser session, as the ``Actor`` every use case takes."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from orca_flows.domain.actor import Actor
from orca_flows.settings import OrcaSettings, get_settings

__all__ = [
    "SignedIn",
    "client_address",
    "current_actor",
    "orca_settings",
    "require_user",
    "sign_in",
    "sign_out",
    "signed_in",
]

USER_KEY = "orca_user"


@dataclass(frozen=True)
class SignedIn:
    """Who this browser session signed in as (ids only: ORM rows do not outlive a session)."""

    user_id: int
    email: str
    is_operator: bool = False


def signed_in() -> SignedIn | None:
    """The signed-in user of this browser session, if any."""
    value = st.session_state.get(USER_KEY)
    return value if isinstance(value, SignedIn) else None


def sign_in(actor: Actor) -> None:
    """Remember ``actor`` for this browser session (it ends when the tab closes)."""
    st.session_state[USER_KEY] = SignedIn(actor.user_id, actor.email, actor.is_operator)


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


def current_actor() -> Actor:
    """The signed-in user as the ``Actor`` every use case takes.

    No database read: every use case scopes what it reads to this user id, so a removed
    account sees nothing (those that write check it and say "Sign in again"); a page run
    outside the router stops here.
    """
    signed = require_user()
    return Actor(signed.user_id, signed.email, signed.is_operator)


def client_address(settings: OrcaSettings) -> str | None:
    """The visitor's network address, for the sign-in and sign-up limits (``None``: local).

    Streamlit gives the connection's peer (``None`` for a loopback one). Behind the
    documented reverse proxy (``ORCA_UI_TRUST_FORWARDED_FOR=true``) the peer is the proxy,
    and the client is the last X-Forwarded-For entry: the one the proxy itself appended
    (entries before it are whatever the client sent, and may be forged).
    """
    if settings.ui_trust_forwarded_for:
        forwarded = st.context.headers.get("X-Forwarded-For")
        hops = [h.strip() for h in forwarded.split(",")] if isinstance(forwarded, str) else []
        if hops and hops[-1]:
            return hops[-1]
    address = st.context.ip_address
    # Only a real connection has an address (a string); a test harness has none.
    return address if isinstance(address, str) else None
