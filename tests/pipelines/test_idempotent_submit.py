"""A submit with an idempotency key makes one run however often it comes; a run's
parameters are checked before anything is written."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow_async
from prefect.states import Scheduled

from orca_flows.db.base import utcnow
from orca_flows.db.models import Run, User
from orca_flows.domain.actor import Actor
from orca_flows.errors import InvalidInputError
from orca_flows.flows.submit import submit_pipeline_run
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services.firings import submit_firing
from orca_flows.services.pipelines import ScriptFile, add_pipeline
from orca_flows.services.runs import submit_run
from orca_flows.services.unit_of_work import unit_of_work
from orca_flows.services.users import add_user
from orca_flows.settings import get_settings
from tests.pipelines.conftest import queued_messages

SCRIPT = ScriptFile("job.sh", b"echo hello\n")


@pytest.fixture
def actor(access: LinkAccess, ann: User) -> Actor:
    """Ann, with her sandbox link `dev` and a pipeline `etl` on it."""
    actor = Actor(ann.id, ann.email)
    add_pipeline(get_settings(), actor, "etl", SCRIPT, link_name="dev", runner="local")
    return actor


def _runs() -> list[Run]:
    with unit_of_work(get_settings()) as session:
        return session.query(Run).all()


def test_the_same_key_twice_makes_one_run_and_one_message(actor: Actor, access: LinkAccess) -> None:
    settings = get_settings()
    first = submit_run(settings, actor, "etl", requested_by="t", idempotency_key="firing-1")
    again = submit_run(settings, actor, "etl", requested_by="t", idempotency_key="firing-1")
    other = submit_run(settings, actor, "etl", requested_by="t", idempotency_key="firing-2")

    assert again.run_id == first.run_id and again.message_sent
    assert other.run_id != first.run_id
    assert len(_runs()) == 2
    assert queued_messages(access) == 2


def test_racing_submits_with_one_key_make_one_run(actor: Actor, access: LinkAccess) -> None:
    settings = get_settings()
    start = threading.Barrier(4)
    ids: list[str] = []

    def submit() -> None:
        start.wait()
        ids.append(submit_run(settings, actor, "etl", requested_by="t", idempotency_key="k").run_id)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(ids) == 4 and len(set(ids)) == 1
    assert len(_runs()) == 1
    assert queued_messages(access) == 1


def test_a_firing_delivered_twice_makes_one_run_and_one_message(
    actor: Actor, access: LinkAccess
) -> None:
    settings = get_settings()
    flow_run_id = str(uuid.uuid4())

    def fire() -> str | None:
        return submit_firing(
            settings,
            actor.user_id,
            "etl",
            schedule_id=None,
            deployment_id=None,
            scheduled_for=utcnow(),
            flow_run_id=flow_run_id,
        ).run_id

    first, again = fire(), fire()

    assert first is not None and again == first
    assert [run.idempotency_key for run in _runs()] == [f"flow-run:{flow_run_id}"]
    assert queued_messages(access) == 1


def test_the_submit_flow_run_executed_twice_by_prefect_makes_one_run(
    actor: Actor, access: LinkAccess
) -> None:
    # One flow run of Orca's submit flow, executed by Prefect's engine, then handed out
    # again (set back to Scheduled, as after a crashed `orca serve`) and executed again.
    parameters = {"owner_id": actor.user_id, "pipeline": "etl"}

    async def twice() -> list[str]:
        async with get_client() as client:
            flow_run = await client.create_flow_run(submit_pipeline_run, parameters=parameters)
            first = await run_flow_async(submit_pipeline_run, flow_run, parameters)
            await client.set_flow_run_state(flow_run.id, Scheduled(), force=True)
            again_run = await client.read_flow_run(flow_run.id)
            again = await run_flow_async(submit_pipeline_run, again_run, parameters)
        return [first, again]

    first, again = asyncio.run(twice())

    assert first is not None and again == first
    assert len(_runs()) == 1
    assert queued_messages(access) == 1


def test_another_users_key_is_refused(actor: Actor) -> None:
    settings = get_settings()
    submit_run(settings, actor, "etl", requested_by="t", idempotency_key="mine")
    bob_actor = add_user(settings, "bob@example.com", "a long enough password 1")

    with pytest.raises(InvalidInputError, match="another user"):
        submit_run(settings, bob_actor, "any", requested_by="t", idempotency_key="mine")


@pytest.mark.parametrize(
    ("parameters", "says"),
    [
        ({"lower": "x"}, "cannot be an environment variable name"),
        ({"ORCA_RUN_ID": "x"}, "Orca sets those"),
        ({"OK": "a\0b"}, "NUL"),
        ({f"V{n}": "x" for n in range(65)}, "at most 64"),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_written(
    actor: Actor, access: LinkAccess, parameters: dict[str, str], says: str
) -> None:
    with pytest.raises(InvalidInputError, match=says):
        submit_run(get_settings(), actor, "etl", requested_by="t", parameters=parameters)
    assert _runs() == [] and queued_messages(access) == 0


def test_parameters_are_kept_with_the_run(actor: Actor) -> None:
    submit_run(get_settings(), actor, "etl", requested_by="t", parameters={"INPUT_URI": "s3://b/k"})
    assert [run.parameters for run in _runs()] == [{"INPUT_URI": "s3://b/k"}]
