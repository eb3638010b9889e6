"""No tenant waits for another (issue 10, point 5): two users' runs never share an ordering
key, whatever key text, pipeline name or instance target they chose.

Through the key the submit service gives a run (``services.pipelines.resolve_ordering_key``)
and the worker's claim behind the ordering fence (``worker.claims.claim_run``).
"""

from __future__ import annotations

import pytest

from orca_flows.db.engine import session_scope
from orca_flows.db.models import User
from orca_flows.db.repositories import links as links_repo
from orca_flows.db.repositories import pipelines as pipelines_repo
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.services.pipelines import resolve_ordering_key
from orca_flows.services.users import add_user
from orca_flows.settings import get_settings
from orca_flows.worker.claims import ClaimAction, claim_run
from tests.conftest import PASSWORD

ACCOUNT = "123456789012"  # both users linked the same account (say, one company's)
TARGET = "tag:orca=enabled"


def _queue_run(owner_id: int, setting: str) -> str:
    """A queued run of the owner's pipeline ``etl`` (created on first use), keyed as
    `orca run start` keys it."""
    with session_scope(get_settings().effective_database_url) as session:
        pipeline = pipelines_repo.get_pipeline_by_name(session, owner_id, "etl")
        if pipeline is None:
            link = links_repo.create_link(
                session,
                owner_id=owner_id,
                name="aws",
                region="us-east-1",
                account_id=ACCOUNT,
                block_document_name=f"b-{owner_id}",
            )
            pipeline = pipelines_repo.create_pipeline(
                session,
                owner_id=owner_id,
                name="etl",
                link_id=link.id,
                runner="ssm",
                target=TARGET,
                ordering_key=setting,
            )
        version = pipelines_repo.add_script_version(
            session,
            pipeline,
            s3_key=f"orca/{owner_id}/etl/v1/job.sh",
            sha256="0" * 64,
            size_bytes=1,
            uploaded_by=owner_id,
        )
        run = runs_repo.create_run(
            session,
            owner_id=owner_id,
            pipeline_id=pipeline.id,
            script_version_id=version.id,
            ordering_key=resolve_ordering_key(pipeline),
            requested_by="api",
        )
        return run.id


@pytest.mark.parametrize(
    "setting",
    [
        # Same account, same instance tag: the key was i-<account>-<target> for both.
        pytest.param("instance", id="same-instance-target"),
        pytest.param("nightly", id="same-custom-key-text"),
        pytest.param("pipeline", id="same-pipeline-name"),
        pytest.param("user", id="user"),
    ],
)
def test_a_running_run_of_one_user_never_holds_up_anothers(ann: User, setting: str) -> None:
    settings = get_settings()
    bob = add_user(settings, "bob@example.com", PASSWORD)
    anns_first = _queue_run(ann.id, setting)
    anns_second = _queue_run(ann.id, setting)
    bobs = _queue_run(bob.user_id, setting)

    assert claim_run(settings, anns_first, "worker-1").action is ClaimAction.EXECUTE
    bobs_claim = claim_run(settings, bobs, "worker-2")
    anns_claim = claim_run(settings, anns_second, "worker-2")

    # Bob's run starts while Ann's runs; Ann's own next run still waits its turn.
    assert bobs_claim.action is ClaimAction.EXECUTE, bobs_claim.detail
    assert anns_claim.action is ClaimAction.PARK
