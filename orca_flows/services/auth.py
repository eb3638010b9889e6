"""Signing up and signing in to the web app: throttling, argon2id verify, lockout.

Both are rate-limited per client address (``ORCA_AUTH_ATTEMPTS_PER_ADDRESS`` attempts per
``ORCA_AUTH_WINDOW_SECONDS``, counted in ``auth_throttles``) and per account (the lockout);
their password work goes through the bounded hashing pool of ``services.users``.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from orca_flows.db.base import utcnow
from orca_flows.db.repositories import auth_throttles as throttles_repo
from orca_flows.db.repositories import users as users_repo
from orca_flows.domain.actor import Actor
from orca_flows.errors import (
    AlreadyExistsError,
    BusyError,
    InvalidInputError,
    LoginError,
    RateLimitedError,
)
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.services.users import (
    checked_credentials,
    hash_password,
    insert_user,
    normalize_email,
    password_hasher,
    verify_password,
)
from orca_flows.settings import OrcaSettings

__all__ = [
    "LOCKOUT",
    "LOGIN_FAILED_MESSAGE",
    "MAX_FAILED_LOGINS",
    "REGISTERED_MESSAGE",
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
# What a sign-up shows whether the email was new or had an account already: any other
# answer would tell a stranger which addresses have accounts here.
REGISTERED_MESSAGE = (
    "If this address can be used, your account is ready: sign in with it. (If it already "
    "had an account, sign in with that account's password.)"
)
_UNKNOWN_ADDRESS = "unknown"
# Sign-ups of one email per window (a person retrying a typo needs a few, a flood more).
SIGNUPS_PER_ACCOUNT = 5
_DECOY_HASHES: list[str] = []


def _throttle(
    settings: OrcaSettings, scope: str, limit: int, what: str = "from your network address"
) -> None:
    """Count an attempt in ``scope``; refuse it past ``limit`` attempts in the window.

    The count is committed before the refusal, and before any password work, so a flood
    costs a row update per request, never an argon2 hash.

    Raises:
        RateLimitedError: The scope had ``limit`` attempts in the current window already.
    """
    window = timedelta(seconds=settings.auth_window_seconds)
    with unit_of_work(settings) as session:
        attempts = throttles_repo.count_attempt(session, scope[:255], utcnow(), window)
    if attempts > limit:
        minutes = max(1, -(-settings.auth_window_seconds // 60))
        raise RateLimitedError(
            f"Too many sign-in and sign-up attempts {what}: wait up to {minutes} minutes, "
            "then try again."
        )


def _throttle_address(settings: OrcaSettings, client_address: str | None) -> None:
    """The per-address limit (``ORCA_AUTH_ATTEMPTS_PER_ADDRESS`` per window)."""
    scope = f"addr:{client_address or _UNKNOWN_ADDRESS}"
    _throttle(settings, scope, settings.auth_attempts_per_address)


def register(
    settings: OrcaSettings,
    email: str,
    password: str,
    confirmation: str,
    *,
    client_address: str | None = None,
) -> None:
    """Create an account from the sign-up form, unless the email has one already.

    Returns nothing in both cases, and takes as long (the password is hashed either way):
    the caller shows ``REGISTERED_MESSAGE``, so the form cannot be used to learn which
    addresses have accounts. Every rule is checked and the password hashed before the one
    unit of work that inserts the user, so a refusal stores nothing.

    Args:
        settings: Orca's settings (the database).
        email: Any case; stored case-folded.
        password: At least 12 characters and not the email.
        confirmation: The password typed a second time.
        client_address: The visitor's address, for the per-address limit (``None``:
            unknown, all such attempts share one limit).

    Raises:
        RateLimitedError: Too many attempts from ``client_address``.
        InvalidInputError: Bad email (``field="email"``), weak password (``"password"``)
            or a confirmation that differs (``"confirmation"``).
        BusyError: Too many passwords are being hashed at once.
    """
    _throttle_address(settings, client_address)
    normalized = checked_credentials(email, password)
    # Per account as well (from any number of addresses); counted for every email alike,
    # so the refusal says nothing about whether the address has an account.
    _throttle(settings, f"signup:{normalized}", SIGNUPS_PER_ACCOUNT, "for this email address")
    if not hmac.compare_digest(password.encode(), confirmation.encode()):
        raise InvalidInputError(
            "confirmation", "the two passwords differ; type the same password twice."
        )
    try:
        insert_user(settings, normalized, hash_password(settings, password))
    except AlreadyExistsError:
        return  # the same answer as a new account (see REGISTERED_MESSAGE)


def _decoy_hash(settings: OrcaSettings) -> str:
    # Computed once per process (two threads may both compute it: harmless).
    if not _DECOY_HASHES:
        _DECOY_HASHES.append(hash_password(settings, "orca decoy password, never a real one"))
    return _DECOY_HASHES[0]


def authenticate(
    settings: OrcaSettings, email: str, password: str, *, client_address: str | None = None
) -> Actor:
    """Check an email and password; returns the user as an ``Actor`` or refuses.

    Every refusal looks the same to the caller and takes about as long (an unknown email
    is verified against a decoy hash). After ``MAX_FAILED_LOGINS`` wrong passwords in a
    row the account is locked for ``LOCKOUT``; during the lock even the right password is
    refused. A success resets the counter. The password is verified between two short
    transactions, never while one holds the database (SQLite's write lock), and the
    outcome is committed before ``LoginError`` is raised - which is why this function
    owns its transactions. Before all that, the attempt counts against
    ``client_address``'s limit (``None``: unknown, all such attempts share one limit).

    Raises:
        RateLimitedError: Too many attempts from ``client_address``.
        LoginError: Wrong email, wrong password or a locked account.
        BusyError: Too many passwords are being checked at once.
    """
    _throttle_address(settings, client_address)
    try:
        normalized: str | None = normalize_email(email)
    except InvalidInputError:
        normalized = None
    with unit_of_work(settings) as session:
        user = users_repo.get_user_by_email(session, normalized) if normalized else None
    matches = verify_password(
        settings, user.password_hash if user else _decoy_hash(settings), password
    )
    if user is None:
        raise LoginError(LOGIN_FAILED_MESSAGE)
    new_hash = None  # hashed before the unit of work: it holds the database
    if matches and password_hasher().check_needs_rehash(user.password_hash):
        try:
            new_hash = hash_password(settings, password)
        except BusyError:
            pass  # the old hash still verifies: rehash at a quieter sign-in

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
    return Actor(user.id, user.email, user.is_operator)
