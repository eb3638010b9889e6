"""Signing up and signing in to the web app: confirmation, argon2id verify, lockout."""

from __future__ import annotations

import hmac
from datetime import timedelta
from functools import lru_cache

from argon2.exceptions import InvalidHashError, VerificationError

from orca_flows.db.base import utcnow
from orca_flows.db.repositories import users as users_repo
from orca_flows.domain.actor import Actor
from orca_flows.errors import InvalidInputError, LoginError
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.services.users import (
    checked_credentials,
    insert_user,
    normalize_email,
    password_hasher,
)
from orca_flows.settings import OrcaSettings

__all__ = [
    "LOCKOUT",
    "LOGIN_FAILED_MESSAGE",
    "MAX_FAILED_LOGINS",
    "LoginError",
    "authenticate",
    "register",
]

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# One sentence for every refusal: a different answer for an unknown email or a locked
# account would tell a stranger which addresses have accounts here.
LOGIN_FAILED_MESSAGE = (
    "Sign-in failed: the email or the password is wrong, or the account is locked for "
    f"{LOCKOUT.seconds // 60} minutes after {MAX_FAILED_LOGINS} failed attempts."
)


def register(settings: OrcaSettings, email: str, password: str, confirmation: str) -> Actor:
    """Create an account from the sign-up form; returns it as an ``Actor``.

    Every rule is checked and the password hashed before the one unit of work that
    inserts the user, so a refusal stores nothing.

    Args:
        settings: Orca's settings (the database).
        email: Any case; stored case-folded.
        password: At least 12 characters and not the email.
        confirmation: The password typed a second time.

    Raises:
        InvalidInputError: Bad email (``field="email"``), weak password (``"password"``)
            or a confirmation that differs (``"confirmation"``).
        AlreadyExistsError: An account with this email exists.
    """
    normalized = checked_credentials(email, password)
    if not hmac.compare_digest(password.encode(), confirmation.encode()):
        raise InvalidInputError(
            "confirmation", "the two passwords differ; type the same password twice."
        )
    return insert_user(settings, normalized, password_hasher().hash(password))


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return password_hasher().hash("orca decoy password, never a real one")


def _verifies(password_hash: str, password: str) -> bool:
    try:
        return password_hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(settings: OrcaSettings, email: str, password: str) -> Actor:
    """Check an email and password; returns the user as an ``Actor`` or refuses.

    Every refusal looks the same to the caller and takes about as long (an unknown email
    is verified against a decoy hash). After ``MAX_FAILED_LOGINS`` wrong passwords in a
    row the account is locked for ``LOCKOUT``; during the lock even the right password is
    refused. A success resets the counter. The password is verified between two short
    transactions, never while one holds the database (SQLite's write lock), and the
    outcome is committed before ``LoginError`` is raised - which is why this function
    owns its transactions.

    Raises:
        LoginError: Wrong email, wrong password or a locked account.
    """
    try:
        normalized: str | None = normalize_email(email)
    except InvalidInputError:
        normalized = None
    with unit_of_work(settings) as session:
        user = users_repo.get_user_by_email(session, normalized) if normalized else None
    matches = _verifies(user.password_hash if user else _decoy_hash(), password)
    if user is None:
        raise LoginError(LOGIN_FAILED_MESSAGE)
    new_hash = None  # hashed before the unit of work: it holds the database
    if matches and password_hasher().check_needs_rehash(user.password_hash):
        new_hash = password_hasher().hash(password)
    now = utcnow()
    with unit_of_work(settings) as session:
        if matches:
            accepted = users_repo.accept_login(session, user.id, now, new_hash=new_hash)
        else:
            users_repo.count_failed_login(
                session, user.id, now, max_failures=MAX_FAILED_LOGINS, lockout=LOCKOUT
            )
            accepted = False
    if not accepted:
        raise LoginError(LOGIN_FAILED_MESSAGE)
    return Actor(user.id, user.email)
