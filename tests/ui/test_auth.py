"""Login gate, Register, Login, lockout and Logout, as a visitor of the web app sees them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from orca_flows.db.models import User
from orca_flows.services import auth
from orca_flows.services.users import add_user
from orca_flows.settings import get_settings
from tests.conftest import PASSWORD
from tests.ui.conftest import WORK_PAGES, app_as, button, field_errors, open_page, widget
from ui.session import USER_KEY

FAILED = auth.LOGIN_FAILED_MESSAGE
# Issue 10: one answer to every sign-up that passes the form's rules, new email or not.
READY = "If this address can be used, your account is ready: sign in"
# The contract (issue 6), not the service's constants: a test that reads them cannot fail.
FAILURES_TO_LOCK = 5
LOCKOUT = timedelta(minutes=15)


def log_in(app: AppTest, email: str, password: str) -> AppTest:
    widget(app, "text_input", "Email").input(email)
    widget(app, "text_input", "Password").input(password)
    button(app, "Log in").click()
    return app.run()


def register(email: str, password: str, confirmation: str) -> AppTest:
    app = open_page(None, "register")
    widget(app, "text_input", "Email").input(email)
    widget(app, "text_input", "Password").input(password)
    widget(app, "text_input", "Confirm password").input(confirmation)
    button(app, "Register").click()
    return app.run()


def signed_in_as(app: AppTest) -> str:
    return " ".join(c.value for c in app.sidebar.caption if "Signed in as" in c.value)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The time the auth service sees; move it with ``clock[0] += timedelta(...)``."""
    now = [datetime(2030, 1, 1, 12, 0, tzinfo=UTC)]
    monkeypatch.setattr(auth, "utcnow", lambda: now[0])
    return now


def test_a_visitor_sees_only_login_and_register() -> None:
    app = app_as(None).run()

    assert app.title[0].value == "Log in to Orca"
    assert not signed_in_as(app)
    for page in WORK_PAGES:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            app.switch_page(f"app_pages/{page}.py")
    app.switch_page("app_pages/register.py")
    assert app.run().title[0].value == "Create an Orca account"


def test_register_then_log_in_opens_the_work_pages() -> None:
    registered = register("Carl@Example.com", PASSWORD, PASSWORD)
    app = log_in(app_as(None).run(), "carl@example.com", PASSWORD)

    assert READY in registered.success[0].value
    assert app.title[0].value == "Task Summary"
    assert "carl@example.com" in signed_in_as(app)
    for page in WORK_PAGES:
        app.switch_page(f"app_pages/{page}.py")  # registered now: no ValueError


@pytest.mark.parametrize(
    ("email", "password", "confirmation", "field", "message"),
    [
        pytest.param("carl", PASSWORD, PASSWORD, "email", "not a valid email", id="bad-email"),
        pytest.param(
            "carl@example.com", "short", "short", "password", "use at least 12", id="short"
        ),
        pytest.param(
            "carl@example.com",
            "carl@example.com",
            "carl@example.com",
            "password",
            "must not be the email",
            id="password-is-email",
        ),
        pytest.param(
            "carl@example.com",
            PASSWORD,
            PASSWORD + "!",
            "confirmation",
            "the two passwords differ",
            id="confirmation-differs",
        ),
    ],
)
def test_a_refused_registration_says_why_under_the_field(
    ann: User, email: str, password: str, confirmation: str, field: str, message: str
) -> None:
    app = register(email, password, confirmation)

    [shown] = field_errors(app, "register", field)
    assert message in shown
    assert not app.success
    if email != ann.email:  # nothing was stored: the account cannot sign in
        assert log_in(app_as(None).run(), email, password).error[0].value == FAILED


def test_registering_a_taken_email_reads_like_a_new_one(ann: User) -> None:
    taken = register("ANN@example.com", "another long password", "another long password")
    new = register("dora@example.com", PASSWORD, PASSWORD)

    assert [s.value for s in taken.success] == [s.value for s in new.success]
    assert READY in taken.success[0].value
    assert not taken.error and not field_errors(taken, "register", "email")
    # Ann's account is untouched: her password still works, the new one does not.
    assert log_in(app_as(None).run(), ann.email, PASSWORD).title[0].value == "Task Summary"
    refused = log_in(app_as(None).run(), ann.email, "another long password")
    assert [e.value for e in refused.error] == [FAILED]


def test_too_many_attempts_from_one_address_are_refused(
    ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCA_AUTH_ATTEMPTS_PER_ADDRESS", "3")
    for email in ("x@example.com", "y@example.com", "z@example.com"):
        log_in(app_as(None).run(), email, "not the password")

    refused = log_in(app_as(None).run(), ann.email, PASSWORD)  # right password, 4th attempt

    [shown] = [e.value for e in refused.error]
    assert "Too many sign-in and sign-up attempts" in shown and "try again" in shown
    assert refused.title[0].value == "Log in to Orca"


def test_wrong_email_and_wrong_password_read_the_same(ann: User) -> None:
    wrong_password = log_in(app_as(None).run(), ann.email, "not the password")
    wrong_email = log_in(app_as(None).run(), "nobody@example.com", PASSWORD)
    not_an_email = log_in(app_as(None).run(), "nobody", PASSWORD)

    assert [e.value for e in wrong_password.error] == [FAILED]
    assert [e.value for e in wrong_email.error] == [FAILED]
    assert [e.value for e in not_an_email.error] == [FAILED]
    assert wrong_password.title[0].value == "Log in to Orca"


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    ann: User, clock: list[datetime]
) -> None:
    app = app_as(None).run()
    for _ in range(FAILURES_TO_LOCK):
        log_in(app, ann.email, "not the password")

    refused = log_in(app, ann.email, PASSWORD)
    assert [e.value for e in refused.error] == [FAILED]  # locked: the same words as any refusal
    clock[0] += LOCKOUT - timedelta(seconds=1)
    assert log_in(app, ann.email, PASSWORD).title[0].value == "Log in to Orca"

    clock[0] += timedelta(seconds=2)
    assert log_in(app, ann.email, PASSWORD).title[0].value == "Task Summary"


def test_a_success_resets_the_count_of_failures(ann: User, clock: list[datetime]) -> None:
    for _ in range(FAILURES_TO_LOCK - 1):
        log_in(app_as(None).run(), ann.email, "not the password")
    assert log_in(app_as(None).run(), ann.email, PASSWORD).title[0].value == "Task Summary"
    for _ in range(FAILURES_TO_LOCK - 1):
        log_in(app_as(None).run(), ann.email, "not the password")

    assert log_in(app_as(None).run(), ann.email, PASSWORD).title[0].value == "Task Summary"


def test_an_operator_signs_in_as_an_operator_and_a_tenant_does_not(ann: User) -> None:
    add_user(get_settings(), "ops@example.com", PASSWORD, operator=True)

    tenant = log_in(app_as(None).run(), ann.email, PASSWORD)
    operator = log_in(app_as(None).run(), "ops@example.com", PASSWORD)

    assert tenant.session_state[USER_KEY].is_operator is False
    assert operator.session_state[USER_KEY].is_operator is True


def test_logout_returns_to_the_login_gate(ann: User) -> None:
    app = open_page(ann, "logout")

    assert app.title[0].value == "Log in to Orca"
    assert not signed_in_as(app)
    with pytest.raises(ValueError):
        app.switch_page("app_pages/task_summary.py")
