"""Adding users: email validated and case-folded, argon2id hashes, clear refusals."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from orca_flows.db.engine import session_scope
from orca_flows.db.models import User
from orca_flows.domain.actor import Actor
from orca_flows.errors import AlreadyExistsError, InvalidInputError
from orca_flows.services.users import add_user, resolve_actor
from orca_flows.settings import OrcaSettings

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(db_url: str) -> OrcaSettings:
    """Settings on the database under test (SQLite, and MariaDB when required)."""
    return OrcaSettings(database_url=db_url)


def _users(settings: OrcaSettings) -> list[User]:
    with session_scope(settings.effective_database_url) as session:
        return list(session.scalars(select(User)))


def test_add_user_stores_case_folded_email_and_argon2id_hash(settings: OrcaSettings) -> None:
    actor = add_user(settings, "  Ann.Lee@Example.COM ", PASSWORD)

    [user] = _users(settings)
    assert actor == Actor(user.id, "ann.lee@example.com")
    assert user.email == "ann.lee@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(user.password_hash, PASSWORD)


def test_an_operator_is_an_operator_wherever_the_user_is_resolved(settings: OrcaSettings) -> None:
    added = add_user(settings, "ops@example.com", PASSWORD, operator=True)
    add_user(settings, "ann@example.com", PASSWORD)

    assert added.is_operator
    assert resolve_actor(settings, "OPS@example.com").is_operator
    assert not resolve_actor(settings, "ann@example.com").is_operator
    assert [u.is_operator for u in _users(settings)] == [True, False]


def test_duplicate_email_in_other_case_is_refused(settings: OrcaSettings) -> None:
    add_user(settings, "ann@example.com", PASSWORD)

    with pytest.raises(AlreadyExistsError, match="ann@example.com.*already exists"):
        add_user(settings, "ANN@example.com", PASSWORD)
    with session_scope(settings.effective_database_url) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [
        pytest.param("no-at-sign", PASSWORD, "email", id="no-at"),
        pytest.param("ann@", PASSWORD, "email", id="no-domain"),
        pytest.param("", PASSWORD, "email", id="empty-email"),
        pytest.param("ann@example.com", "short", "password", id="short-password"),
        pytest.param(
            "ann.long.name@example.com",
            "ann.long.name@example.com",
            "password",
            id="password-is-email",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    settings: OrcaSettings, email: str, password: str, field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        add_user(settings, email, password)

    assert caught.value.field == field
    assert _users(settings) == []
