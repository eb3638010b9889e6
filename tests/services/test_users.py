"""Adding users: email validated and case-folded, argon2id hashes, clear refusals."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orca_flows.db.models import User
from orca_flows.errors import AlreadyExistsError, InvalidInputError
from orca_flows.services.users import add_user

PASSWORD = "correct horse battery"


def test_add_user_stores_case_folded_email_and_argon2id_hash(session: Session) -> None:
    user = add_user(session, "  Ann.Lee@Example.COM ", PASSWORD)

    assert user.email == "ann.lee@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(user.password_hash, PASSWORD)


def test_duplicate_email_in_other_case_is_refused(session: Session) -> None:
    add_user(session, "ann@example.com", PASSWORD)

    with pytest.raises(AlreadyExistsError, match="ann@example.com.*already exists"):
        add_user(session, "ANN@example.com", PASSWORD)
    assert session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [
        pytest.param("no-at-sign", PASSWORD, "email", id="no-at"),
        pytest.param("ann@", PASSWORD, "email", id="no-domain"),
        pytest.param("", PASSWORD, "email", id="empty-email"),
        pytest.param("ann@example.com", "short", "password", id="short-password"),
        pytest.param("ann.long.name@example.com", "ann.long.name@example.com", "password", id="password-is-email"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    session: Session, email: str, password: str, field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        add_user(session, email, password)

    assert caught.value.field == field
    assert session.scalar(select(func.count()).select_from(User)) == 0
