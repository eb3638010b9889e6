"""Users: register with a validated email and an argon2id password hash."""

from __future__ import annotations

from argon2 import PasswordHasher
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orca_flows.db.models import User
from orca_flows.db.repositories import users as users_repo
from orca_flows.domain.actor import Actor
from orca_flows.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.settings import OrcaSettings

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "add_user",
    "normalize_email",
    "password_hasher",
    "resolve_actor",
    "resolve_user",
]

MIN_PASSWORD_LENGTH = 12


def password_hasher() -> PasswordHasher:
    """The argon2id hasher with argon2-cffi's RFC 9106 low-memory defaults."""
    return PasswordHasher()


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


def add_user(session: Session, email: str, password: str) -> User:
    """Create a user with an argon2id hash of ``password``.

    Args:
        session: The caller's session (this function flushes, the caller commits).
        email: Any case; stored case-folded.
        password: At least ``MIN_PASSWORD_LENGTH`` characters and not the email.

    Raises:
        InvalidInputError: Bad email or weak password.
        AlreadyExistsError: A user with this email exists.
    """
    normalized = normalize_email(email)
    _check_password(password, normalized)
    duplicate = AlreadyExistsError(
        "user", normalized, "Sign in with it, or choose another email address."
    )
    if users_repo.get_user_by_email(session, normalized) is not None:
        raise duplicate
    password_hash = password_hasher().hash(password)
    try:
        with session.begin_nested():
            return users_repo.create_user(
                session, email=normalized, password_hash=password_hash
            )
    except IntegrityError as error:  # a concurrent registration won the unique index
        raise duplicate from error


def resolve_actor(settings: OrcaSettings, email: str | None) -> Actor:
    """The acting user named by ``--user`` or ORCA_USER, as an ``Actor``.

    Raises:
        InvalidInputError: No user was named.
        NotFoundError: No user has this email.
    """
    with unit_of_work(settings) as session:
        user = resolve_user(session, email)
        return Actor(user.id, user.email)


def resolve_user(session: Session, email: str | None) -> User:
    """The acting user (from ``--user`` or ORCA_USER).

    Raises:
        InvalidInputError: No user was named.
        NotFoundError: No user has this email.
    """
    if not email:
        raise InvalidInputError(
            "user", "no acting user: pass --user EMAIL or set ORCA_USER."
        )
    user = users_repo.get_user_by_email(session, normalize_email(email))
    if user is None:
        raise NotFoundError("user", email, "Create it with `orca user add EMAIL`.")
    return user
