"""Test guard for issue 9's rule: no network call (AWS, Prefect, HTTP) while a database transaction is open.

How it works, in this process only:

* Every SQLAlchemy ``Connection`` ``begin`` / ``commit`` / ``rollback`` (events on the
  ``Engine`` class, so every engine, SQLite's ``BEGIN IMMEDIATE`` and MariaDB alike) and
  every pool check-in (a connection dropped without either) keeps a registry of the open
  database transactions. The transaction really starts at the connection's ``begin``: a
  ``Session`` that has begun but not yet run SQL holds no lock and no connection.
* The open transactions are attributed to the *logical caller* through a ``ContextVar``:
  plain threads do not inherit it (a call in another thread is not flagged), while
  Prefect's sync-to-async bridge and ``asyncio``/``anyio`` copy it, so a Prefect API call
  made on Prefect's event-loop thread on behalf of a caller inside a transaction is.
* A root ``Session`` transaction that has not touched the database yet is tracked the same
  way: a network call inside it is a *latent* violation (the ``with unit_of_work`` block is
  open, but no lock is held yet). Latent ones are reported, never failed.
* The network boundaries are patched: ``botocore.client.BaseClient._make_api_call`` (every
  boto3 client and paginator, real endpoints, moto's server and moto's in-process
  ``mock_aws`` alike), ``httpx.Client.send`` / ``httpx.AsyncClient.send`` (Prefect's
  client) and ``urllib.request.OpenerDirector.open`` (``urlopen``).

Modes (environment variable ``ORCA_TX_GUARD``): ``fail`` (default) fails a test at teardown
listing each violation; ``report`` only collects them and prints a deduplicated list at
the end of the session (and appends JSON lines to ``ORCA_TX_GUARD_REPORT`` when set);
``off`` does nothing. A test that asserts old behaviour on purpose opts out with
``@pytest.mark.network_in_transaction_allowed(reason=...)``.

Subprocesses (the CLI run as a process, workers, ``orca serve``) are covered too: the
autouse fixture puts ``tests/support/subprocess_guard`` (a ``sitecustomize``) and the
repository root on ``PYTHONPATH`` and names a per-test log in
``ORCA_TX_GUARD_SUBPROCESS_LOG``; every Python process a test starts installs the guard
and appends its violations there at once, and the fixture fails the test on them like on
its own.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

__all__ = [
    "ENV_MODE",
    "ENV_REPORT",
    "MARKER",
    "Frame",
    "OpenTransaction",
    "Violation",
    "check_network_call",
    "guard_mode",
    "install",
    "open_transactions",
    "pytest_terminal_summary",
    "recording",
    "transaction_guard",
]

ENV_MODE = "ORCA_TX_GUARD"
ENV_REPORT = "ORCA_TX_GUARD_REPORT"
MARKER = "network_in_transaction_allowed"
_MODES = ("fail", "report", "off")
# Fail: a network call inside a transaction is a defect (issue 9).
_DEFAULT_MODE = "fail"

_ROOT = Path(__file__).resolve().parents[2]
_THIS_FILE = str(Path(__file__).resolve())
# Layers whose frame names "who did it": the use case, not the wrapper it went through.
_OWNER_PREFIXES = (
    "orca_flows/services/",
    "orca_flows/worker/",
    "orca_flows/flows/",
    "orca_flows/cli/",
    "orca_flows/local/",
    "ui/",
    "deployments/",
)
_PRODUCT_PREFIXES = ("orca_flows/", "orca_blocks/", "ui/", "deployments/")
# Frames that only relay a transaction (the scope helpers) say nothing about its owner.
_RELAY_FILES = ("orca_flows/db/engine.py", "orca_flows/services/unit_of_work.py")
_MAX_FRAMES = 12


def guard_mode() -> str:
    """``fail``, ``report`` or ``off``, from ``ORCA_TX_GUARD`` (read on every test, so a
    test may switch it with ``monkeypatch.setenv``)."""
    mode = os.environ.get(ENV_MODE, _DEFAULT_MODE).strip().lower() or _DEFAULT_MODE
    if mode not in _MODES:
        raise pytest.UsageError(f"{ENV_MODE}={mode!r}; use one of {', '.join(_MODES)}.")
    return mode


@dataclass(frozen=True)
class Frame:
    """One stack frame inside the repository (path relative to its root)."""

    path: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.function}"

    @property
    def short(self) -> str:
        """``services/links.py:create_link`` (no line, no ``orca_flows/``)."""
        return f"{self.path.removeprefix('orca_flows/')}:{self.function}"


@dataclass(frozen=True)
class OpenTransaction:
    """A database (or latent Session) transaction that has begun and not ended."""

    token: int
    kind: str  # "database" (a connection began) or "session" (no SQL yet)
    thread_id: int
    thread_name: str
    frames: tuple[Frame, ...]
    connection_id: int = 0
    dbapi_id: int = 0


@dataclass(frozen=True)
class Violation:
    """A network call made while the caller had a transaction open."""

    operation: str
    latent: bool
    call_frames: tuple[Frame, ...]
    begin_frames: tuple[Frame, ...]
    call_thread: str
    begin_thread: str
    test: str = ""
    allowed: bool = False
    key: tuple[str, str, str] = field(default=("", "", ""), compare=False)

    @property
    def call_owner(self) -> Frame | None:
        """The use-case frame that made the call."""
        return _owner(self.call_frames)

    @property
    def begin_owner(self) -> Frame | None:
        """The use-case frame in which the transaction began (its first SQL)."""
        return _owner(self.begin_frames)

    def summary(self) -> str:
        """``services/links.py:create_link -> prefect POST /api/block_documents/``."""
        owner = self.call_owner
        where = owner.short if owner else "?"
        return f"{where} -> {self.operation}" + (" (latent: no SQL yet)" if self.latent else "")

    def describe(self) -> str:
        """Several lines: the operation, the calling chain and where the transaction began."""
        kind = "a Session transaction (no SQL yet)" if self.latent else "a database transaction"
        lines = [f"{self.operation} while {kind} was open"]
        lines.append(f"    called from      {_chain(self.call_frames)}")
        if self.call_thread != self.begin_thread:
            lines.append(f"    (call ran on thread {self.call_thread!r} for {self.begin_thread!r})")
        lines.append(f"    transaction from {_chain(self.begin_frames)}")
        return "\n".join(lines)


# --- state -----------------------------------------------------------------------------

_lock = threading.Lock()
_tokens = itertools.count(1)
_open: dict[int, OpenTransaction] = {}
# Tokens of the transactions the current logical caller began (tuples: copies stay apart).
_context_tokens: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar(
    "orca_tx_guard_tokens", default=()
)
_session_tokens: dict[int, int] = {}  # id(SessionTransaction) -> token
_recorders: list[list[Violation]] = []
_installed = False
_reported: list[Violation] = []  # report mode: every violation of the session


@functools.lru_cache(maxsize=4096)
def _relative(filename: str) -> str | None:
    # Frames of the repository only: not the virtualenv, not this guard.
    # Generated code ("<string>", SQLAlchemy's state-change wrappers) has no real file.
    if not os.path.isabs(filename) or filename == _THIS_FILE:
        return None
    if "/.venv/" in filename or "site-packages" in filename:
        return None
    try:
        return Path(filename).resolve().relative_to(_ROOT).as_posix()
    except (ValueError, OSError):
        return None


def _frames(start: FrameType | None) -> tuple[Frame, ...]:
    """The repository frames of a stack, innermost first (cheap: no source lines read)."""
    found: list[Frame] = []
    frame = start
    while frame is not None and len(found) < _MAX_FRAMES:
        path = _relative(frame.f_code.co_filename)
        if path is not None:
            found.append(Frame(path, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    return tuple(found)


def _owner(frames: tuple[Frame, ...]) -> Frame | None:
    # The use case, else any product frame, else the test itself (a test-held session).
    for prefix_set in (_OWNER_PREFIXES, _PRODUCT_PREFIXES, ("",)):
        for frame in frames:
            if frame.path.startswith(prefix_set) and frame.path not in _RELAY_FILES:
                return frame
    return frames[0] if frames else None


def _chain(frames: tuple[Frame, ...]) -> str:
    shown = [f for f in frames if f.path not in _RELAY_FILES] or list(frames)
    if not shown:
        return "(no repository frame)"
    if len(shown) > 5:
        shown = [*shown[:4], shown[-1]]
    return "\n                     <- ".join(str(f) for f in shown)


def _begin(kind: str, *, connection_id: int = 0, dbapi_id: int = 0) -> int:
    thread = threading.current_thread()
    token = next(_tokens)
    entry = OpenTransaction(
        token,
        kind,
        thread.ident or 0,
        thread.name,
        _frames(sys._getframe(2)),
        connection_id,
        dbapi_id,
    )
    with _lock:
        _open[token] = entry
    _context_tokens.set((*_context_tokens.get(), token))
    return token


def _end(predicate: Callable[[OpenTransaction], bool]) -> None:
    with _lock:
        ended = [token for token, entry in _open.items() if predicate(entry)]
        for token in ended:
            del _open[token]
    if ended:
        current = _context_tokens.get()
        if any(token in current for token in ended):
            _context_tokens.set(tuple(t for t in current if t not in ended))


def open_transactions() -> tuple[OpenTransaction, ...]:
    """The transactions the current caller (thread or copied context) has open, oldest first."""
    with _lock:
        return tuple(_open[t] for t in _context_tokens.get() if t in _open)


# --- SQLAlchemy events -----------------------------------------------------------------


def _dbapi_id(connection: Any) -> int:
    try:
        return id(connection.connection.dbapi_connection)
    except Exception:  # noqa: BLE001 - an invalidated connection has none; never break SQL
        return 0


def _on_begin(connection: Any) -> None:
    _begin("database", connection_id=id(connection), dbapi_id=_dbapi_id(connection))


def _on_end(connection: Any) -> None:
    _end(lambda e: e.kind == "database" and e.connection_id == id(connection))


def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
    # A connection returned to the pool has no transaction, whatever events were missed.
    if dbapi_connection is not None:
        _end(lambda e: e.kind == "database" and e.dbapi_id == id(dbapi_connection))


def _on_session_tx_create(_session: Any, transaction: Any) -> None:
    if transaction.parent is None:
        _session_tokens[id(transaction)] = _begin("session")


def _on_session_tx_end(_session: Any, transaction: Any) -> None:
    token = _session_tokens.pop(id(transaction), None)
    if token is not None:
        _end(lambda e: e.token == token)


# --- network boundaries ----------------------------------------------------------------

_ID_SEGMENT = re.compile(
    r"/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+)(?=/|$)", re.I
)


def _http_operation(method: str, url: Any) -> str:
    text = str(url)
    path = re.sub(r"^[a-z]+://[^/]+", "", text, flags=re.I).split("?", 1)[0]
    path = _ID_SEGMENT.sub("/{id}", path)
    kind = "prefect" if "/api/" in path else "http"
    return f"{kind} {method.upper()} {path or '/'}"


def check_network_call(operation: str) -> None:
    """Record ``operation`` as a violation if the caller has a transaction open.

    Called by the patched network boundaries; callable directly to test the detector.
    """
    if not _recorders:
        return
    open_now = open_transactions()
    if not open_now:
        return
    database = [entry for entry in open_now if entry.kind == "database"]
    latent = not database
    entry = (database or list(open_now))[-1]
    call_frames = _frames(sys._getframe(1))
    thread = threading.current_thread()
    if thread.ident != entry.thread_id:
        # Prefect runs its client on its own loop thread: the caller's frames are in the
        # thread that began the transaction, blocked waiting for this call.
        waiting = sys._current_frames().get(entry.thread_id)
        call_frames = call_frames + _frames(waiting)
    violation = Violation(
        operation=operation,
        latent=latent,
        call_frames=call_frames,
        begin_frames=entry.frames,
        call_thread=thread.name,
        begin_thread=entry.thread_name,
    )
    owner = violation.call_owner
    begin_owner = violation.begin_owner
    key = (operation, owner.short if owner else "?", begin_owner.short if begin_owner else "?")
    violation = replace(violation, key=key)
    with _lock:
        # The innermost recorder claims it: a self-test's recording() keeps its own
        # violations away from the autouse fixture around it.
        if _recorders:
            _recorders[-1].append(violation)


def _patch_botocore() -> None:
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    @functools.wraps(original)
    def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        service = self.meta.service_model.service_name
        check_network_call(f"aws {service}:{operation_name}")
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]


def _patch_httpx() -> None:
    import httpx

    sync_send = httpx.Client.send
    async_send = httpx.AsyncClient.send

    @functools.wraps(sync_send)
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        check_network_call(_http_operation(request.method, request.url))
        return sync_send(self, request, *args, **kwargs)

    @functools.wraps(async_send)
    async def asend(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        check_network_call(_http_operation(request.method, request.url))
        return await async_send(self, request, *args, **kwargs)

    httpx.Client.send = send  # type: ignore[method-assign]
    httpx.AsyncClient.send = asend  # type: ignore[method-assign]


def _patch_urllib() -> None:
    import urllib.request

    original = urllib.request.OpenerDirector.open

    @functools.wraps(original)
    def open_(self: Any, fullurl: Any, *args: Any, **kwargs: Any) -> Any:
        url = fullurl if isinstance(fullurl, str) else fullurl.full_url
        method = "GET" if isinstance(fullurl, str) else fullurl.get_method()
        check_network_call(_http_operation(method, url))
        return original(self, fullurl, *args, **kwargs)

    urllib.request.OpenerDirector.open = open_  # type: ignore[method-assign]


def install() -> None:
    """Listen to SQLAlchemy and patch the network boundaries, once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    from sqlalchemy import Engine, event
    from sqlalchemy.orm import Session
    from sqlalchemy.pool import Pool

    event.listen(Engine, "begin", _on_begin)
    event.listen(Engine, "commit", _on_end)
    event.listen(Engine, "rollback", _on_end)
    event.listen(Pool, "checkin", _on_checkin)
    event.listen(Session, "after_transaction_create", _on_session_tx_create)
    event.listen(Session, "after_transaction_end", _on_session_tx_end)
    _patch_botocore()
    _patch_httpx()
    _patch_urllib()


@contextmanager
def recording() -> Iterator[list[Violation]]:
    """Collect the violations made inside the block (installs the guard if needed)."""
    install()
    violations: list[Violation] = []
    with _lock:
        _recorders.append(violations)
    try:
        yield violations
    finally:
        with _lock:
            _recorders.remove(violations)


class _FileRecorder(list):  # type: ignore[type-arg]
    """A recorder that writes each violation to a file the moment it is found."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def append(self, violation: Violation) -> None:  # type: ignore[override]
        # Only Orca's own code: a Prefect server or a moto server the tests start runs this
        # sitecustomize too, and its internals are not Orca's to judge.
        if not any(frame.path.startswith(_ORCA_SOURCES) for frame in violation.call_frames):
            return
        record = asdict(violation)
        record["summary"] = violation.summary()
        record["pid"] = os.getpid()
        with open(self._path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")


def record_to_file(path: str) -> None:
    """Install the guard for this whole process, appending violations to ``path``."""
    install()
    with _lock:
        _recorders.insert(0, _FileRecorder(path))


ENV_SUBPROCESS_LOG = "ORCA_TX_GUARD_SUBPROCESS_LOG"
_ORCA_SOURCES = ("orca_flows/", "orca_blocks/", "ui/", "deployments/")
_SUBPROCESS_PATH = Path(__file__).resolve().parent / "subprocess_guard"
_REPOSITORY = Path(__file__).resolve().parents[2]


def _subprocess_violations(path: Path) -> list[Violation]:
    if not path.exists():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record.pop("summary", None)
        pid = record.pop("pid", "?")
        record["call_frames"] = tuple(Frame(**f) for f in record["call_frames"])
        record["begin_frames"] = tuple(Frame(**f) for f in record["begin_frames"])
        record["key"] = tuple(record["key"])
        record["call_thread"] = f"pid {pid} {record['call_thread']}"
        found.append(Violation(**record))
    return found


# --- pytest wiring ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def transaction_guard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Fail (or, in report mode, record) each network call made inside a transaction."""
    mode = guard_mode()
    if mode == "off":
        yield
        return
    marker = request.node.get_closest_marker(MARKER)
    # Transactions a previous test leaked (a Session never closed) are not this test's.
    _context_tokens.set(())
    log = tmp_path_factory.mktemp("txguard") / "subprocesses.jsonl"
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv(ENV_SUBPROCESS_LOG, str(log))
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(
            p for p in (str(_SUBPROCESS_PATH), str(_REPOSITORY), os.environ.get("PYTHONPATH")) if p
        ),
    )
    try:
        with recording() as violations:
            yield
    finally:
        monkeypatch.undo()
    violations = violations + _subprocess_violations(log)
    if not violations:
        return
    found = [replace(v, test=request.node.nodeid, allowed=marker is not None) for v in violations]
    _append_report(found)
    if mode == "report" or marker is not None:
        _reported.extend(found)
        return
    # Latent ones (no SQL yet, so no lock held) are listed at the end, never failed.
    _reported.extend(v for v in found if v.latent)
    unique = {v.key: v for v in found if not v.latent}
    if not unique:
        return
    details = "\n".join(f"- {v.describe()}" for v in unique.values())
    pytest.fail(
        f"{len(unique)} network call(s) inside a database transaction (issue 9: write the "
        f"intent, leave the unit of work, call, then record the result):\n{details}\n"
        f"Set {ENV_MODE}=report to only list them, or mark a test that asserts the old "
        f"behaviour with @pytest.mark.{MARKER}(reason=...).",
        pytrace=False,
    )


def _append_report(violations: list[Violation]) -> None:
    path = os.environ.get(ENV_REPORT)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for violation in violations:
            record = asdict(violation)
            record["summary"] = violation.summary()
            out.write(json.dumps(record) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The session's deduplicated violations by use case (report mode, latent, allowed)."""
    if not _reported:
        return
    groups: dict[tuple[str, str, str], list[Violation]] = {}
    for violation in _reported:
        groups.setdefault(violation.key, []).append(violation)
    terminalreporter.section("network calls inside a transaction (issue 9)")
    for latent in (False, True):
        keys = sorted(
            (k for k in groups if groups[k][0].latent is latent), key=lambda k: (k[1], k[0])
        )
        if keys:
            title = (
                "latent (Session begun, no SQL yet)" if latent else "inside a database transaction"
            )
            terminalreporter.write_line(f"{title}:")
        for key in keys:
            first = groups[key][0]
            tests = sorted({v.test for v in groups[key]})
            flags = " [allowed]" if all(v.allowed for v in groups[key]) else ""
            terminalreporter.write_line(f"  {first.summary()}{flags}  ({len(tests)} test(s))")
            terminalreporter.write_line(f"      transaction began in {key[2]}; e.g. {tests[0]}")
