"""Repositories on SQLite and MariaDB: uniqueness, sequences, compare-and-set, listings."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from orca_flows.db.models import Run, User
from orca_flows.db.repositories import links, pipelines, runs, users
from orca_flows.domain.states import RunState


def _user(session: Session, email: str = "ann@example.com") -> User:
    return users.create_user(session, email=email, password_hash="x")


def _pipeline(session: Session, owner: User, name: str = "etl"):
    link = links.get_link_by_name(session, owner.id, "aws") or links.create_link(
        session, owner_id=owner.id, name="aws", region="us-east-1", block_document_name="b"
    )
    pipeline = pipelines.create_pipeline(session, owner_id=owner.id, name=name, link_id=link.id)
    version = pipelines.add_script_version(
        session, pipeline, s3_key="k", sha256="0" * 64, size_bytes=1, uploaded_by=owner.id
    )
    return pipeline, version


def _run(session: Session, owner: User, pipeline, version, key: str = "k1") -> Run:
    return runs.create_run(
        session,
        owner_id=owner.id,
        pipeline_id=pipeline.id,
        script_version_id=version.id,
        ordering_key=key,
        requested_by=f"user:{owner.id}",
    )


def test_user_email_is_unique(session: Session) -> None:
    _user(session)
    with pytest.raises(IntegrityError):
        _user(session)


def test_names_are_unique_per_owner_not_globally(session: Session) -> None:
    ann, bob = _user(session), _user(session, "bob@example.com")
    _pipeline(session, ann, "etl")
    _pipeline(session, bob, "etl")  # another owner may reuse the name

    with pytest.raises(IntegrityError):
        pipelines.create_pipeline(session, owner_id=ann.id, name="etl", link_id=1)


def test_link_name_is_unique_per_owner(session: Session) -> None:
    ann = _user(session)
    links.create_link(
        session, owner_id=ann.id, name="prod", region="eu-west-1", block_document_name="a"
    )
    with pytest.raises(IntegrityError):
        links.create_link(
            session, owner_id=ann.id, name="prod", region="eu-west-1", block_document_name="b"
        )


def test_script_versions_count_up_and_become_current(session: Session) -> None:
    ann = _user(session)
    pipeline, first = _pipeline(session, ann)
    second = pipelines.add_script_version(
        session, pipeline, s3_key="k2", sha256="1" * 64, size_bytes=2, uploaded_by=ann.id
    )

    assert (first.version, second.version) == (1, 2)
    assert pipeline.current_version == 2


def test_sequences_count_per_ordering_key(session: Session) -> None:
    ann = _user(session)
    pipeline, version = _pipeline(session, ann)

    seqs = [_run(session, ann, pipeline, version, key).sequence for key in ["a", "a", "b", "a"]]

    assert seqs == [1, 2, 1, 3]


def test_concurrent_submitters_never_share_a_sequence_number(engine: Engine) -> None:
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as session:
        ann = _user(session)
        pipeline, version = _pipeline(session, ann)
        ids = (ann.id, pipeline.id, version.id)
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            for _ in range(5):
                with factory.begin() as session:
                    runs.create_run(
                        session,
                        owner_id=ids[0],
                        pipeline_id=ids[1],
                        script_version_id=ids[2],
                        ordering_key="shared",
                        requested_by="test",
                    )
        except BaseException as error:  # surfaced below with the thread's failure
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with factory() as session:
        sequences = session.scalars(select(Run.sequence).where(Run.ordering_key == "shared")).all()
    assert sorted(sequences) == list(range(1, 21))


def test_compare_and_set_lets_only_one_claimer_win(session: Session) -> None:
    ann = _user(session)
    pipeline, version = _pipeline(session, ann)
    run = _run(session, ann, pipeline, version)

    first = runs.compare_and_set_state(
        session, run.id, RunState.QUEUED, RunState.RUNNING, attempt=1
    )
    second = runs.compare_and_set_state(
        session, run.id, RunState.QUEUED, RunState.RUNNING, attempt=2
    )

    assert (first, second) == (True, False)
    refreshed = runs.get_run(session, run.id)
    assert refreshed is not None and (refreshed.state, refreshed.attempt) == ("running", 1)


def test_fence_lists_only_earlier_unfinished_runs_of_the_same_key(session: Session) -> None:
    ann = _user(session)
    pipeline, version = _pipeline(session, ann)
    r1, r2, r3 = (_run(session, ann, pipeline, version, "k") for _ in range(3))
    _run(session, ann, pipeline, version, "other")
    runs.compare_and_set_state(session, r1.id, RunState.QUEUED, RunState.SUCCEEDED)

    assert [run.id for run in runs.earlier_unfinished_runs(session, r3)] == [r2.id]


def test_another_owners_run_looks_like_no_run(session: Session) -> None:
    ann, bob = _user(session), _user(session, "bob@example.com")
    pipeline, version = _pipeline(session, ann)
    run = _run(session, ann, pipeline, version)

    assert runs.get_run(session, run.id, owner_id=bob.id) is None
    assert runs.get_run(session, run.id, owner_id=ann.id) is not None


def test_timestamps_round_trip_as_aware_utc_with_microseconds(session: Session) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    ann = _user(session)
    ann.locked_until = moment
    session.flush()
    session.expire_all()

    stored = users.get_user(session, ann.id)
    assert stored is not None and stored.locked_until == moment
    assert stored.locked_until.tzinfo == UTC


def test_list_runs_filters_and_pages_newest_first(session: Session) -> None:
    ann, bob = _user(session), _user(session, "bob@example.com")
    etl, etl_v = _pipeline(session, ann, "etl")
    other, other_v = _pipeline(session, ann, "other")
    bob_p, bob_v = _pipeline(session, bob, "etl")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for minute in range(6):
        pipeline, version = (etl, etl_v) if minute % 2 == 0 else (other, other_v)
        run = _run(session, ann, pipeline, version, f"k{minute}")
        run.requested_at = start + timedelta(minutes=minute)
        made.append(run)
    _run(session, bob, bob_p, bob_v, "bob")
    runs.compare_and_set_state(session, made[4].id, RunState.QUEUED, RunState.FAILED)
    session.flush()

    page = runs.list_runs(session, ann.id, limit=2, offset=1)
    only_etl = runs.list_runs(session, ann.id, pipeline_id=etl.id)
    failed = runs.list_runs(session, ann.id, state=RunState.FAILED)
    recent = runs.list_runs(session, ann.id, since=start + timedelta(minutes=4))

    assert [r.id for r in page] == [made[4].id, made[3].id]
    assert [r.id for r in only_etl] == [made[4].id, made[2].id, made[0].id]
    assert [r.id for r in failed] == [made[4].id]
    assert [r.id for r in recent] == [made[5].id, made[4].id]
