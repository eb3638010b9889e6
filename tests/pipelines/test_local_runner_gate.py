"""The local runner is not for tenants (issue 10, point 1): sandbox links only, unless the
operator allows it; refused by the service, the CLI and, for an older row, the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from orca_flows.db.engine import session_scope
from orca_flows.db.models import Pipeline, User
from orca_flows.db.repositories import links as links_repo
from orca_flows.db.repositories import pipelines as pipelines_repo
from orca_flows.domain.actor import Actor
from orca_flows.errors import InvalidInputError
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.runners import LocalRunner
from orca_flows.runners.factory import runner_for
from orca_flows.services.pipelines import ScriptFile, add_pipeline
from orca_flows.settings import get_settings
from tests.pipelines.conftest import listed, orca, stored_objects

SCRIPT = ScriptFile("job.sh", b"echo hello\n")
REFUSED = "the local runner is not available on link 'dev'"


def _not_a_sandbox_link(user: User, name: str = "dev") -> None:
    """Make the user's link one to a real account, as far as Orca knows (its block still
    reaches the sandbox, which is all a pipeline's upload needs)."""
    with session_scope(get_settings().effective_database_url) as session:
        link = links_repo.get_link_by_name(session, user.id, name)
        assert link is not None
        link.local = False


def _script(tmp_path: Path) -> str:
    path = tmp_path / "job.sh"
    path.write_bytes(SCRIPT.content)
    return str(path)


def test_the_service_refuses_a_local_pipeline_on_a_real_account(
    access: LinkAccess, ann: User
) -> None:
    _not_a_sandbox_link(ann)

    with pytest.raises(InvalidInputError) as refused:
        add_pipeline(
            get_settings(), Actor(ann.id, ann.email), "etl", SCRIPT, link_name="dev", runner="local"
        )

    assert refused.value.field == "runner"
    assert REFUSED in str(refused.value)
    assert "ORCA_ALLOW_LOCAL_RUNNER=true" in str(refused.value)
    assert "--runner ssm" in str(refused.value)
    assert listed("pipeline", "list") == []
    assert stored_objects(access, ann) == []


def test_the_cli_refuses_it_with_the_way_out_and_leaves_nothing(
    tmp_path: Path, access: LinkAccess, ann: User
) -> None:
    _not_a_sandbox_link(ann)

    result = orca("pipeline", "add", "etl", _script(tmp_path), "--link", "dev", "--runner", "local")

    assert result.exit_code == 1
    assert REFUSED in result.stderr and "ORCA_ALLOW_LOCAL_RUNNER=true" in result.stderr
    assert "Traceback" not in result.output
    assert listed("pipeline", "list") == []
    assert stored_objects(access, ann) == []


def test_a_real_account_link_defaults_to_ssm_not_local(
    tmp_path: Path, access: LinkAccess, ann: User
) -> None:
    _not_a_sandbox_link(ann)

    result = orca("pipeline", "add", "etl", _script(tmp_path), "--link", "dev")

    assert result.exit_code == 1
    assert "the ssm runner needs --target" in result.stderr


def test_with_the_operator_setting_on_a_real_account_may_use_it(
    tmp_path: Path, access: LinkAccess, ann: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    _not_a_sandbox_link(ann)
    monkeypatch.setenv("ORCA_ALLOW_LOCAL_RUNNER", "true")

    result = orca("pipeline", "add", "etl", _script(tmp_path), "--link", "dev", "--runner", "local")

    assert result.exit_code == 0, result.output
    [pipeline] = listed("pipeline", "list")
    assert (pipeline["name"], pipeline["runner"]) == ("etl", "local")


def test_a_sandbox_link_may_use_it_without_the_setting(
    tmp_path: Path, access: LinkAccess, ann: User
) -> None:
    result = orca("pipeline", "add", "etl", _script(tmp_path), "--link", "dev", "--runner", "local")

    assert result.exit_code == 0, result.output
    assert [p["runner"] for p in listed("pipeline", "list")] == ["local"]


# --- the worker: a local pipeline saved before the rule ------------------------------------


class _NoAccess:
    """A link access that must not be used: the refusal comes before any AWS call."""

    def client(self, service: str) -> None:
        raise AssertionError(f"the refused runner asked for a {service} client")


def _old_local_pipeline(ann: User, *, sandbox_link: bool) -> Pipeline:
    """A local pipeline row, read in one unit and used after it, as the worker does."""
    with session_scope(get_settings().effective_database_url) as session:
        link = links_repo.create_link(
            session, owner_id=ann.id, name="prod", region="us-east-1", block_document_name="b"
        )
        link.local = sandbox_link
        pipeline = pipelines_repo.create_pipeline(
            session, owner_id=ann.id, name="etl", link_id=link.id, runner="local"
        )
        pipeline_id = pipeline.id
    with session_scope(get_settings().effective_database_url) as session:
        return session.get_one(Pipeline, pipeline_id)


def test_the_worker_refuses_an_older_local_pipeline_on_a_real_account(ann: User) -> None:
    pipeline = _old_local_pipeline(ann, sandbox_link=False)

    with pytest.raises(InvalidInputError) as refused:
        runner_for(pipeline, _NoAccess(), get_settings())  # type: ignore[arg-type]

    assert "the local runner is not available on link 'prod'" in str(refused.value)
    assert "ORCA_ALLOW_LOCAL_RUNNER=true" in str(refused.value)


def test_the_worker_runs_it_on_a_sandbox_link(ann: User, monkeypatch) -> None:
    pipeline = _old_local_pipeline(ann, sandbox_link=True)
    # Only the gate is under test here: the environment needs the link's real session.
    monkeypatch.setattr("orca_flows.runners.factory._local_env", lambda access: {})

    class _S3Only(_NoAccess):
        def client(self, service: str) -> object:
            assert service == "s3"
            return object()

    runner = runner_for(pipeline, _S3Only(), get_settings())  # type: ignore[arg-type]

    assert isinstance(runner, LocalRunner)


def test_a_stop_is_never_refused(ann: User, monkeypatch) -> None:
    """Killing a local run that started before the rule must still work."""
    pipeline = _old_local_pipeline(ann, sandbox_link=False)
    monkeypatch.setattr("orca_flows.runners.factory._local_env", lambda access: {})

    class _S3Only(_NoAccess):
        def client(self, service: str) -> object:
            return object()

    runner = runner_for(pipeline, _S3Only(), get_settings(), stopping=True)  # type: ignore[arg-type]

    assert isinstance(runner, LocalRunner)
