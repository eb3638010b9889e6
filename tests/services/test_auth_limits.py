"""Sign-up and sign-in under abuse: no account enumeration, per-address and per-account
limits, and a bounded pool of argon2 computations (issue 10, point 4)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from orca_flows.db.engine import session_scope
from orca_flows.db.models import AuthThrottle, User
from orca_flows.db.repositories import auth_throttles as throttles_repo
from orca_flows.errors import BusyError, LoginError, RateLimitedError
from orca_flows.services import auth, users
from orca_flows.settings import OrcaSettings
from tests.conftest import PASSWORD

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ADDRESS = "203.0.113.9"


@pytest.fixture
def settings(db_url: str) -> OrcaSettings:
    """Settings on the database under test, with a small per-address limit."""
    return OrcaSettings(database_url=db_url, auth_attempts_per_address=4, auth_window_seconds=600)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The time the auth service sees; move it with ``clock[0] += timedelta(...)``."""
    now = [T0]
    monkeypatch.setattr(auth, "utcnow", lambda: now[0])
    return now


def _user_rows(settings: OrcaSettings) -> list[User]:
    with session_scope(settings.effective_database_url) as session:
        return list(session.scalars(select(User).order_by(User.id)))


def _signs_in(settings: OrcaSettings, email: str, password: str, address: str) -> bool:
    try:
        auth.authenticate(settings, email, password, client_address=address)
    except LoginError:
        return False
    return True


def test_registering_a_taken_email_answers_like_a_new_one(settings: OrcaSettings) -> None:
    new = auth.register(settings, "ann@example.com", PASSWORD, PASSWORD)
    [ann] = _user_rows(settings)

    taken = auth.register(
        settings, "ANN@example.com", "another long password", "another long password"
    )

    assert new is None and taken is None  # the caller shows REGISTERED_MESSAGE either way
    assert [u.password_hash for u in _user_rows(settings)] == [ann.password_hash]
    assert _signs_in(settings, "ann@example.com", PASSWORD, "198.51.100.1")
    assert not _signs_in(settings, "ann@example.com", "another long password", "198.51.100.1")


def test_one_address_is_limited_across_accounts_and_sign_up(
    settings: OrcaSettings, clock: list[datetime]
) -> None:
    users.add_user(settings, "ann@example.com", PASSWORD)
    assert not _signs_in(settings, "bob@example.com", "wrong password!", ADDRESS)
    assert not _signs_in(settings, "carl@example.com", "wrong password!", ADDRESS)
    auth.register(settings, "dora@example.com", PASSWORD, PASSWORD, client_address=ADDRESS)
    assert _signs_in(settings, "ann@example.com", PASSWORD, ADDRESS)  # the 4th: allowed

    with pytest.raises(RateLimitedError, match="wait up to 10 minutes, then try again"):
        auth.authenticate(settings, "ann@example.com", PASSWORD, client_address=ADDRESS)
    with pytest.raises(RateLimitedError):
        auth.register(settings, "eve@example.com", PASSWORD, PASSWORD, client_address=ADDRESS)
    assert [u.email for u in _user_rows(settings)] == ["ann@example.com", "dora@example.com"]
    assert _signs_in(settings, "ann@example.com", PASSWORD, "198.51.100.1")  # another address

    clock[0] += timedelta(minutes=10)  # a new window
    assert _signs_in(settings, "ann@example.com", PASSWORD, ADDRESS)


def test_sign_ups_of_one_email_are_limited_across_addresses(
    db_url: str, clock: list[datetime]
) -> None:
    # A generous per-address limit: only the per-account one can refuse here.
    settings = OrcaSettings(database_url=db_url, auth_attempts_per_address=100)
    for n in range(auth.SIGNUPS_PER_ACCOUNT):
        auth.register(settings, "ann@example.com", PASSWORD, PASSWORD, client_address=f"10.1.0.{n}")

    with pytest.raises(RateLimitedError, match="for this email address"):
        auth.register(settings, "ann@example.com", PASSWORD, PASSWORD, client_address="10.1.9.9")
    auth.register(settings, "bob@example.com", PASSWORD, PASSWORD, client_address="10.1.9.9")
    clock[0] += timedelta(seconds=settings.auth_window_seconds + 1)
    auth.register(settings, "ann@example.com", PASSWORD, PASSWORD, client_address="10.1.9.9")


def test_an_account_still_locks_when_the_failures_come_from_many_addresses(
    settings: OrcaSettings, clock: list[datetime]
) -> None:
    users.add_user(settings, "ann@example.com", PASSWORD)
    for n in range(5):  # the contract: five failures lock the account
        assert not _signs_in(settings, "ann@example.com", "wrong password!", f"192.0.2.{n}")

    assert not _signs_in(settings, "ann@example.com", PASSWORD, "192.0.2.99")
    clock[0] += timedelta(minutes=15)
    assert _signs_in(settings, "ann@example.com", PASSWORD, "192.0.2.99")


def test_concurrent_attempts_are_all_counted(settings: OrcaSettings) -> None:
    def attempt() -> None:
        with session_scope(settings.effective_database_url) as session:
            throttles_repo.count_attempt(session, "addr:x", T0, timedelta(minutes=10))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with session_scope(settings.effective_database_url) as session:
        assert session.get_one(AuthThrottle, "addr:x").attempts == 8
        later = T0 + timedelta(minutes=10)
        assert throttles_repo.count_attempt(session, "addr:x", later, timedelta(minutes=10)) == 1
        assert session.scalar(select(func.count()).select_from(AuthThrottle)) == 1


class _RecordingHasher:
    """Stands in for argon2: each call takes a while and records how many run at once."""

    def __init__(self, real_hash: str, gate: threading.Event | None = None) -> None:
        self.real_hash = real_hash
        self.gate = gate
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.calls = 0

    def _work(self) -> None:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        if self.gate is not None:
            self.gate.wait(30)
        else:
            time.sleep(0.05)
        with self.lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._work()
        return self.real_hash

    def verify(self, password_hash: str, password: str) -> bool:
        self._work()
        return False

    def check_needs_rehash(self, password_hash: str) -> bool:
        return False


@pytest.fixture
def real_hash() -> str:
    return users.password_hasher().hash(PASSWORD)


def _install(monkeypatch: pytest.MonkeyPatch, hasher: _RecordingHasher) -> None:
    monkeypatch.setattr(users, "password_hasher", lambda: hasher)
    monkeypatch.setattr(auth, "password_hasher", lambda: hasher)


def test_twenty_sign_ups_at_once_hash_at_most_the_limit_at_a_time(
    db_url: str, monkeypatch: pytest.MonkeyPatch, real_hash: str
) -> None:
    settings = OrcaSettings(database_url=db_url, max_concurrent_hashes=2, hash_wait_seconds=60)
    hasher = _RecordingHasher(real_hash)
    _install(monkeypatch, hasher)
    failures: list[BaseException] = []

    def sign_up(n: int) -> None:
        try:
            auth.register(
                settings, f"user{n}@example.com", PASSWORD, PASSWORD, client_address=f"10.0.0.{n}"
            )
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert hasher.calls == 20 and len(_user_rows(settings)) == 20
    assert hasher.most <= 2


def test_a_sign_in_that_gets_no_hashing_slot_is_refused_as_busy(
    db_url: str, monkeypatch: pytest.MonkeyPatch, real_hash: str
) -> None:
    settings = OrcaSettings(database_url=db_url, max_concurrent_hashes=2, hash_wait_seconds=0.2)
    users.add_user(settings, "ann@example.com", PASSWORD)
    gate = threading.Event()
    hasher = _RecordingHasher(real_hash, gate)
    _install(monkeypatch, hasher)
    holders = [
        threading.Thread(
            target=_signs_in, args=(settings, "ann@example.com", "x" * 12, f"10.1.0.{n}")
        )
        for n in range(2)
    ]
    for thread in holders:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while hasher.running < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hasher.running == 2

        with pytest.raises(BusyError, match="try again"):
            auth.authenticate(settings, "ann@example.com", PASSWORD, client_address="10.1.0.9")
        assert hasher.calls == 2  # the refused request computed nothing
    finally:
        gate.set()
        for thread in holders:
            thread.join()


def test_the_web_app_takes_the_client_from_the_proxy_only_when_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ui import session

    context = SimpleNamespace(
        ip_address="198.51.100.7",
        headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.5"},  # forged hop, then the proxy's
    )
    monkeypatch.setattr(session, "st", SimpleNamespace(context=context))

    assert session.client_address(OrcaSettings()) == "198.51.100.7"
    assert session.client_address(OrcaSettings(ui_trust_forwarded_for=True)) == "203.0.113.5"
    context.ip_address = None  # a loopback peer, as the proxy is
    context.headers = {}
    assert session.client_address(OrcaSettings(ui_trust_forwarded_for=True)) is None
