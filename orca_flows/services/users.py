"""Users: register with a validated email and an argon2id password hash.

Every argon2 computation goes through a bounded pool of slots (``hash_password``,
``verify_password``): each takes tens of MiB, so a burst of sign-ins must queue, briefly,
rather than exhaust the process's memory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError

from orca_flows.db.repositories import users as users_repo
from orca_flows.domain.actor import Actor
from orca_flows.errors import AlreadyExistsError, BusyError, InvalidInputError, NotFoundError
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "add_user",
    "checked_credentials",
    "hash_password",
    "hashing_slot",
    "insert_user",
    "normalize_email",
    "password_hasher",
    "resolve_actor",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 12

# One pool per size (ORCA_MAX_CONCURRENT_HASHES is read per call like every setting; a
# process normally sees one size, so one pool).
_HASH_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_HASH_SLOTS_LOCK = threading.Lock()


def password_hasher() -> PasswordHasher:
    """The argon2id hasher with argon2-cffi's RFC 9106 low-memory defaults."""
    return PasswordHasher()


@contextmanager
def hashing_slot(settings: OrcaSettings) -> Iterator[None]:
    """Hold one of the ``ORCA_MAX_CONCURRENT_HASHES`` slots for an argon2 computation.

    Raises:
        BusyError: No slot freed up within ``ORCA_HASH_WAIT_SECONDS``.
    """
    size = settings.max_concurrent_hashes
    with _HASH_SLOTS_LOCK:
        slots = _HASH_SLOTS.setdefault(size, threading.BoundedSemaphore(size))
    if not slots.acquire(timeout=settings.hash_wait_seconds):
        raise BusyError(
            "Orca is busy checking other passwords right now: wait a few seconds and try again."
        )
    try:
        yield
    finally:
        slots.release()


def hash_password(settings: OrcaSettings, password: str) -> str:
    """The argon2id hash of ``password``, computed in a hashing slot.

    Raises:
        BusyError: No slot freed up in time.
    """
    with hashing_slot(settings):
        return password_hasher().hash(password)


def verify_password(settings: OrcaSettings, password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (checked in a hashing slot).

    Raises:
        BusyError: No slot freed up in time.
    """
    with hashing_slot(settings):
        try:
            return password_hasher().verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def normalize_email(email: str) -> str:
    """Validate ``email``'s syntax and return it case-folded (the form stored and looked up).

    Raises:
        InvalidInputError: The address is not a valid email address.
    """
    try:
        # No DNS lookup: Orca must work offline and on private domains.
        valid = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidInputError(
            "email", f"{email!r} is not a valid email address: {error}"
        ) from error
    return valid.normalized.casefold()


def _check_password(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            "password",
            f"the password has {len(password)} characters; use at least {MIN_PASSWORD_LENGTH}.",
        )
    if password.strip().casefold() == email:
        raise InvalidInputError("password", "the password must not be the email address.")


def add_user(settings: OrcaSettings, email: str, password: str, *, operator: bool = False) -> Actor:
    """Create a user with an argon2id hash of ``password``; returns them as an ``Actor``.

    The input is checked and the password hashed (tens of milliseconds) before the unit of
    work opens, so the database is held only for the insert.

    Args:
        settings: Orca's settings (the database).
        email: Any case; stored case-folded.
        password: At least ``MIN_PASSWORD_LENGTH`` characters and not the email.
        operator: The user runs this Orca and may see Prefect (`--operator`).

    Raises:
        InvalidInputError: Bad email or weak password.
        AlreadyExistsError: A user with this email exists.
        BusyError: Too many passwords are being hashed at once.
    """
    normalized = checked_credentials(email, password)
    return insert_user(settings, normalized, hash_password(settings, password), operator=operator)


def checked_credentials(email: str, password: str) -> str:
    """The normalised email, once ``email`` and ``password`` meet the rules.

    Raises:
        InvalidInputError: Bad email (``field="email"``) or weak password (``"password"``).
    """
    normalized = normalize_email(email)
    _check_password(password, normalized)
    return normalized


def insert_user(
    settings: OrcaSettings, email: str, password_hash: str, *, operator: bool = False
) -> Actor:
    """Insert a user whose email is normalised and password already hashed (one unit).

    Raises:
        AlreadyExistsError: A user with this email exists.
    """
    duplicate = AlreadyExistsError(
        "user", email, "Sign in with it, or choose another email address."
    )
    try:
        with unit_of_work(settings) as session:
            if users_repo.get_user_by_email(session, email) is not None:
                raise duplicate
            user = users_repo.create_user(
                session, email=email, password_hash=password_hash, is_operator=operator
            )
            return Actor(user.id, user.email, user.is_operator)
    except IntegrityError as error:  # a concurrent registration won the unique index
        raise duplicate from error


def resolve_actor(settings: OrcaSettings, email: str | None) -> Actor:
    """The acting user named by ``--user`` or ORCA_USER, as an ``Actor``.

    Raises:
        InvalidInputError: No user was named.
        NotFoundError: No user has this email.
    """
    if not email:
        raise InvalidInputError("user", "no acting user: pass --user EMAIL or set ORCA_USER.")
    normalized = normalize_email(email)
    with unit_of_work(settings) as session:
        user = users_repo.get_user_by_email(session, normalized)
        if user is None:
            raise NotFoundError("user", email, "Create it with `orca user add EMAIL`.")
        return Actor(user.id, user.email, user.is_operator)
