"""The bad input catalogue (issue 10, point 16): every refusal of the `orca` CLI, one table.

Each case runs the real CLI (typer's runner, in this process) with bad input against one
shared world (the sandbox, a real Prefect server, two users with links, pipelines, runs)
and asserts what a user would notice:

- a non-zero exit;
- a message that says what to do: the case's own fragment, written as sentences on the
  terminal, never a traceback;
- nothing left behind: the same rows (every column) in Orca's tables, the same objects in
  the bucket, the same messages in the queue, the same Prefect block documents and
  deployments before and after (a snapshot of everything a command could write).

The world is built once for the module (a sandbox per case would cost seconds each); a
case that should be refused but is not (an ``xfail`` one) uses names of its own, so what
it leaves cannot change another case's outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import create_engine, text
from typer.testing import CliRunner, Result

from orca_flows.cli.main import app
from orca_flows.db.engine import session_scope
from orca_flows.db.repositories.links import get_link_by_name
from orca_flows.db.repositories.pipelines import create_pipeline
from orca_flows.domain.actor import Actor
from orca_flows.local.sandbox import start_sandbox, stop_sandbox
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.link_creation import create_local_link
from orca_flows.services.links import access_link
from orca_flows.services.users import add_user
from orca_flows.settings import get_settings
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.sandbox]

ROLE = "arn:aws:iam::210987654321:role/OrcaAccess"
HAND_TYPED_ID = "h" * 40  # an ExternalId of the user's own making
MISSING_RUN = "00000000-0000-0000-0000-000000000000"
TABLES = (
    "users",
    "cloud_links",
    "external_ids",
    "pipelines",
    "script_versions",
    "runs",
    "schedules",
)


def orca(*args: str, input: str | None = None) -> Result:
    """`orca ARGS` in this process."""
    return CliRunner().invoke(app, list(args), input=input)


def _ok(*args: str, input: str | None = None) -> str:
    result = orca(*args, input=input)
    assert result.exit_code == 0, f"orca {' '.join(args)}: {result.output}"
    return result.stdout.strip()


# --- the world ----------------------------------------------------------------------------


@dataclass
class World:
    """Everything the cases refer to: ``{name}`` in a case's arguments is ``values[name]``."""

    home: Path
    access: LinkAccess
    bucket: str
    values: dict[str, str] = field(default_factory=dict)


def _write(directory: Path, name: str, content: bytes) -> str:
    path = directory / name
    path.write_bytes(content)
    return str(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, prefect_server: Any) -> Iterator[World]:
    """Ann (the acting user) and Bob, each with a sandbox link `dev` and a pipeline with runs;
    Ann also has a link `prod` to a role in another account, and a pipeline with no script."""
    root = tmp_path_factory.mktemp("catalogue")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCA_HOME", str(root / "orca-home"))
        patch.setenv("ORCA_ACCOUNT_ID", "123456789012")
        patch.setenv("ORCA_MAX_SCRIPT_BYTES", "1000")
        settings = get_settings()
        status = start_sandbox(settings, with_prefect=False)
        assert status.state is not None
        try:
            ann = add_user(settings, "ann@example.com", PASSWORD)
            bob = add_user(settings, "bob@example.com", PASSWORD)
            patch.setenv("ORCA_USER", ann.email)
            create_local_link(settings, ann, "dev")
            create_local_link(settings, bob, "dev")
            # A link to a real (non-sandbox) account, with the ExternalId `link kit` issued.
            _ok("link", "kit", "--account", "210987654321")
            _ok("link", "create", "prod", "--role-arn", ROLE, "--region", "us-east-1")
            # And one issued for her next link: a refused `link create` must not use it up.
            _ok("link", "kit", "--account", "210987654321")

            files = root / "files"
            files.mkdir()
            script = _write(files, "job.sh", b"echo hello\n")
            _ok("pipeline", "add", "etl", script, "--link", "dev")
            _ok("pipeline", "add", "payroll", script, "--link", "dev", "--user", bob.email)
            queued = _ok("run", "start", "etl")
            finished = _ok("run", "start", "etl")
            bobs_run = _ok("run", "start", "payroll", "--user", bob.email)
            engine = create_engine(settings.effective_database_url)
            with engine.begin() as connection:
                # A run a worker finished (no worker runs here: the row says so).
                connection.execute(
                    text(
                        "UPDATE runs SET state = 'succeeded', exit_code = 0, "
                        "started_at = requested_at, finished_at = requested_at WHERE id = :id"
                    ),
                    {"id": finished},
                )
            engine.dispose()
            # A pipeline whose script never made it (as a crashed upload would leave it).
            with session_scope(settings.effective_database_url) as session:
                link = get_link_by_name(session, ann.user_id, "dev")
                assert link is not None
                create_pipeline(
                    session, owner_id=ann.user_id, name="bare", link_id=link.id, runner="local"
                )
            yield World(
                home=root / "orca-home",
                access=access_link(settings, Actor(ann.user_id, ann.email), "dev"),
                bucket=status.state.bucket,
                values={
                    "script": script,
                    "missing": str(files / "nope.sh"),
                    "empty": _write(files, "empty.sh", b""),
                    "binary": _write(files, "binary.sh", b"\x7fELF\x00\x01\x02"),
                    "exe": _write(files, "job.exe", b"echo hi\n"),
                    "large": _write(files, "large.sh", b"#" * 1001),
                    "directory": str(files),
                    "queued": queued,
                    "finished": finished,
                    "bobs_run": bobs_run,
                },
            )
        finally:
            stop_sandbox(get_settings())


@pytest.fixture(autouse=True)
def orca_home(world: World, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every case acts in the world's ORCA_HOME, as Ann (overrides the root fixture)."""
    monkeypatch.setenv("ORCA_HOME", str(world.home))
    monkeypatch.setenv("ORCA_USER", "ann@example.com")
    monkeypatch.setenv("ORCA_ACCOUNT_ID", "123456789012")
    monkeypatch.setenv("ORCA_MAX_SCRIPT_BYTES", "1000")
    # Wide enough that typer's usage box never breaks a sentence over two lines.
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setenv("TERMINAL_WIDTH", "400")
    return world.home


# --- what a command could leave behind ----------------------------------------------------


def snapshot(world: World) -> dict[str, Any]:
    """Rows of Orca's tables, objects in the bucket, messages in the queue, Prefect's block
    documents and deployments."""
    engine = create_engine(get_settings().effective_database_url)
    with engine.connect() as connection:
        # Every row in full, not a count: a refusal must not change a row either.
        rows = {
            table: sorted(
                repr(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table}"))
            )
            for table in TABLES
        }
    engine.dispose()
    s3 = world.access.client("s3")
    objects = sorted(
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=world.bucket)
        for item in page.get("Contents", [])
    )
    attributes = world.access.client("sqs").get_queue_attributes(
        QueueUrl=world.access.queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    with get_client(sync_client=True) as client:
        blocks = sorted(document.name or "" for document in client.read_block_documents())
        deployments = sorted(str(deployment.id) for deployment in client.read_deployments())
    return {
        "rows": rows,
        "objects": objects,
        "messages": sum(int(value) for value in attributes.values()),
        "blocks": blocks,
        "deployments": deployments,
    }


# --- the catalogue ------------------------------------------------------------------------


def case(
    case_id: str,
    *args: str,
    says: str,
    input: str | None = None,
    in_progress: int | None = None,
    wording: str | None = None,
) -> Any:
    """One bad input: the command line, a fragment its message must contain, and, when the
    refusal is being added right now, the point of issue 10 that adds it (or the module
    whose message does not read as a sentence yet)."""
    marks = []
    if in_progress is not None:
        marks.append(
            pytest.mark.xfail(strict=False, reason=f"issue 10 point {in_progress}, in progress")
        )
    if wording is not None:
        marks.append(
            pytest.mark.xfail(strict=False, reason=f"message is not a sentence yet ({wording})")
        )
    return pytest.param(list(args), says, input, id=case_id, marks=marks)


CASES = [
    # users
    case("user-bad-email", "user", "add", "not-an-email", "--password-stdin",
         input=PASSWORD, says="not a valid email address"),
    case("user-short-password", "user", "add", "cat@example.com", "--password-stdin",
         input="short", says="at least 12"),
    case("user-empty-password", "user", "add", "cat@example.com", "--password-stdin",
         input="\n", says="at least 12"),
    case("user-duplicate", "user", "add", "ANN@example.com", "--password-stdin",
         input=PASSWORD, says="already exists"),
    case("user-unknown-acting-user", "pipeline", "list", "--user", "zed@example.com",
         says="zed@example.com"),
    # links
    case("link-bad-name", "link", "create", "Prod Account", "--role-arn", ROLE,
         says="link name 'Prod Account' must be"),
    # A refused `--local` create issues no ExternalId (it is issued in the reservation).
    case("link-duplicate-name", "link", "create", "dev", "--local",
         says="link 'dev' already exists"),
    case("link-malformed-arn", "link", "create", "l-arn", "--role-arn", "arn:aws:iam:123:role/x",
         says="is not an IAM role ARN"),
    case("link-user-arn", "link", "create", "l-user", "--role-arn",
         "arn:aws:iam::210987654321:user/bob", says="Orca needs a role"),
    case("link-bad-region", "link", "create", "l-region", "--role-arn", ROLE, "--region",
         "mars-north-1", says="is not an AWS region"),
    case("link-short-external-id", "link", "create", "l-short", "--role-arn", ROLE,
         "--external-id", "short", says="orca link kit"),
    case("link-hand-typed-external-id", "link", "create", "l-hand", "--role-arn", ROLE,
         "--external-id", HAND_TYPED_ID, says="orca link kit"),
    case("link-update-hand-typed-external-id", "link", "update", "prod", "--external-id",
         HAND_TYPED_ID, says="orca link kit"),
    case("link-both-arn-and-local", "link", "create", "l-both", "--role-arn", ROLE, "--local",
         says="either --role-arn ARN or --local"),
    case("link-check-unknown", "link", "check", "nope", says="orca link list"),
    case("link-remove-unknown", "link", "remove", "nope", says="orca link list"),
    case("link-update-unknown", "link", "update", "nope", "--external-id", HAND_TYPED_ID,
         says="does not exist"),
    case("link-remove-in-use", "link", "remove", "dev", says="orca pipeline remove"),
    case("link-kit-bad-account", "link", "kit", "--account", "12345", says="12-digit AWS account id"),
    # pipelines
    case("pipeline-missing-script", "pipeline", "add", "p-missing", "{missing}", "--link", "dev",
         says="cannot read"),
    case("pipeline-script-is-a-directory", "pipeline", "add", "p-dir", "{directory}", "--link",
         "dev", says="cannot read"),
    case("pipeline-empty-script", "pipeline", "add", "p-empty", "{empty}", "--link", "dev",
         says="is empty"),
    case("pipeline-binary-script", "pipeline", "add", "p-binary", "{binary}", "--link", "dev",
         says="NUL bytes"),
    case("pipeline-bad-extension", "pipeline", "add", "p-exe", "{exe}", "--link", "dev",
         says="must be a .sh (bash) or .py (python3) file"),
    case("pipeline-too-large", "pipeline", "add", "p-large", "{large}", "--link", "dev",
         says="the limit is 1,000"),
    case("pipeline-bad-name", "pipeline", "add", "ETL", "{script}", "--link", "dev",
         says="pipeline name 'ETL' must be"),
    case("pipeline-unknown-link", "pipeline", "add", "p-link", "{script}", "--link", "nope",
         says="link 'nope' does not exist"),
    case("pipeline-bad-runner", "pipeline", "add", "p-runner", "{script}", "--link", "dev",
         "--runner", "lambda", says="runner 'lambda' must be one of"),
    case("pipeline-local-runner-on-real-account", "pipeline", "add", "p-local", "{script}",
         "--link", "prod", "--runner", "local", says="ORCA_ALLOW_LOCAL_RUNNER"),
    case("pipeline-ssm-without-target", "pipeline", "add", "p-ssm", "{script}", "--link", "prod",
         "--runner", "ssm", says="the ssm runner needs --target"),
    case("pipeline-bad-target", "pipeline", "add", "p-target", "{script}", "--link", "dev",
         "--target", "i-123", says="target 'i-123' must be"),
    case("pipeline-zero-timeout", "pipeline", "add", "p-t0", "{script}", "--link", "dev",
         "--timeout", "0", says="timeout must be a positive"),
    case("pipeline-negative-timeout", "pipeline", "add", "p-tneg", "{script}", "--link", "dev",
         "--timeout", "-5", says="timeout must be a positive"),
    case("pipeline-timeout-over-48h", "pipeline", "add", "p-t48", "{script}", "--link", "dev",
         "--timeout", "172801", says="48 hours"),
    case("pipeline-timeout-not-a-number", "pipeline", "add", "p-tnan", "{script}", "--link",
         "dev", "--timeout", "soon", says="valid integer"),
    case("pipeline-negative-retries", "pipeline", "add", "p-r", "{script}", "--link", "dev",
         "--retries", "-1", says="retries must be between"),
    case("pipeline-too-many-retries", "pipeline", "add", "p-r9", "{script}", "--link", "dev",
         "--retries", "1000", says="retries must be between"),
    case("pipeline-bad-ordering-key", "pipeline", "add", "p-key", "{script}", "--link", "dev",
         "--ordering-key", "a b", says="ordering key 'a b' must be"),
    case("pipeline-duplicate", "pipeline", "add", "etl", "{script}", "--link", "dev",
         says="orca pipeline upload"),
    case("pipeline-upload-unknown", "pipeline", "upload", "nope", "{script}",
         says="pipeline 'nope' does not exist"),
    case("pipeline-upload-empty", "pipeline", "upload", "etl", "{empty}", says="is empty"),
    case("pipeline-upload-binary", "pipeline", "upload", "etl", "{binary}", says="NUL bytes"),
    case("pipeline-show-unknown", "pipeline", "show", "nope",
         says="pipeline 'nope' does not exist"),
    case("pipeline-remove-with-queued-runs", "pipeline", "remove", "etl", says="--force"),
    case("pipeline-remove-another-users", "pipeline", "remove", "payroll",
         says="pipeline 'payroll' does not exist"),
    # runs
    case("run-start-unknown-pipeline", "run", "start", "nope",
         says="pipeline 'nope' does not exist"),
    case("run-start-another-users-pipeline", "run", "start", "payroll",
         says="pipeline 'payroll' does not exist"),
    case("run-start-pipeline-without-script", "run", "start", "bare",
         says="orca pipeline upload"),
    case("run-stop-unknown", "run", "stop", MISSING_RUN, says=f"run '{MISSING_RUN}' does not exist"),
    case("run-stop-not-a-run-id", "run", "stop", "banana", says="does not exist"),
    case("run-stop-finished", "run", "stop", "{finished}",
         says="has already finished (succeeded)"),
    case("run-stop-another-users", "run", "stop", "{bobs_run}", says="does not exist"),
    case("run-show-unknown", "run", "show", MISSING_RUN, says="does not exist"),
    case("run-logs-another-users", "run", "logs", "{bobs_run}", says="does not exist"),
    case("run-list-bad-state", "run", "list", "--state", "done",
         says="must be one of: queued, running"),
    case("run-list-unknown-pipeline", "run", "list", "--pipeline", "nope",
         says="pipeline 'nope' does not exist"),
    # schedules
    case("schedule-bad-cron", "schedule", "set", "etl", "--cron", "61 * * * *",
         says="cron"),
    case("schedule-cron-words", "schedule", "set", "etl", "--cron", "every day",
         says="cron"),
    case("schedule-short-interval", "schedule", "set", "etl", "--interval", "5",
         says="shorter than the minimum of 60 s"),
    case("schedule-negative-interval", "schedule", "set", "etl", "--interval", "-60",
         says="positive number of seconds"),
    case("schedule-bad-timezone", "schedule", "set", "etl", "--cron", "0 3 * * *",
         "--timezone", "Mars/Olympus", says="Mars/Olympus"),
    case("schedule-both-cron-and-interval", "schedule", "set", "etl", "--cron", "0 3 * * *",
         "--interval", "60", says="give either --cron EXPR or --interval SECONDS"),
    case("schedule-neither-cron-nor-interval", "schedule", "set", "etl",
         says="give either --cron EXPR or --interval SECONDS"),
    case("schedule-unknown-pipeline", "schedule", "set", "nope", "--interval", "60",
         says="pipeline 'nope' does not exist"),
    case("schedule-another-users-pipeline", "schedule", "set", "payroll", "--interval", "60",
         says="pipeline 'payroll' does not exist"),
    case("schedule-remove-none", "schedule", "remove", "etl", says="orca schedule set"),
    case("schedule-pause-none", "schedule", "pause", "etl", says="orca schedule set"),
    case("schedule-resume-none", "schedule", "resume", "etl", says="orca schedule set"),
]  # fmt: skip


def _sentences(output: str) -> bool:
    """The refusal reads as sentences: some text, ending in a full stop or the like.

    A usage error caught by typer itself (an option that is not a number) ends with
    click's own sentence of what to do: "Try 'orca … --help' for help."
    """
    message = output.strip()
    if "--help' for help." in message:
        return True
    return bool(message) and message.rstrip("`'\")")[-1:] in {".", "!", "?"}


@pytest.mark.parametrize(("args", "says", "input"), CASES)
def test_bad_input_is_refused_with_what_to_do_and_leaves_nothing_behind(
    world: World, args: list[str], says: str, input: str | None
) -> None:
    argv = [argument.format(**world.values) for argument in args]
    before = snapshot(world)

    result = orca(*argv, input=input)

    after = snapshot(world)
    output = result.output
    assert result.exit_code != 0, f"accepted: orca {' '.join(argv)}\n{output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in output, output
    assert says in output, f"{says!r} not in:\n{output}"
    assert _sentences(output), f"not a sentence:\n{output}"
    assert after == before, f"left behind by orca {' '.join(argv)}"


def test_the_catalogue_covers_every_group() -> None:
    groups = {param.values[0][0] for param in CASES}
    assert len(CASES) >= 40 and {"user", "link", "pipeline", "run", "schedule"} <= groups
