"""Isolation: ann never sees bob's links, pipelines, runs or schedules, and bob's ids behave
exactly like ids that do not exist, on every page and in every action the pages call."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from orca_flows.db.models import User
from orca_flows.errors import NotFoundError
from orca_flows.services import schedules
from orca_flows.services.link_check import check_link
from orca_flows.services.links import remove_link
from orca_flows.services.lookup import actor_of
from orca_flows.services.run_outputs import read_output
from orca_flows.services.runs import read_log, run_details, stop_run, submit_run, view_run
from orca_flows.services.summary import RunFilter, list_run_page
from orca_flows.settings import get_settings
from tests.ui.conftest import offline_pipeline, offline_runs, open_page, texts, widget

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def bobs_run(ann: User, bob: User) -> str:
    """Bob's link ``secret-link``, pipeline ``secret`` (scheduled) and a few runs; ann has
    her own pipeline ``mine``."""
    offline_pipeline(bob, "secret", link="secret-link")
    offline_pipeline(ann, "mine")
    schedules.set_schedule(
        get_settings(), actor_of(get_settings(), bob.id), "secret", interval_seconds=3600
    )
    return offline_runs(bob, "secret", ["succeeded", "failed", "queued"])[-1]


def test_bob_s_run_id_in_task_overview_reads_like_an_unknown_one(ann: User, bobs_run: str) -> None:
    unknown = str(uuid.uuid4())

    bobs = open_page(ann, "task_overview", run=bobs_run)
    nobodys = open_page(ann, "task_overview", run=unknown)

    assert texts(bobs).replace(bobs_run, "ID") == texts(nobodys).replace(unknown, "ID")
    assert [e.value for e in bobs.error] == [
        f"run '{bobs_run}' does not exist. See `orca run list`."
    ]
    assert not bobs.get("download_button") and not bobs.code
    assert [b.label for b in bobs.button] == []  # no Stop, no Re-run


def test_task_summary_shows_none_of_bob_s_runs_or_pipelines(ann: User, bobs_run: str) -> None:
    app = open_page(ann, "task_summary")

    assert {int(m.value) for m in app.metric} == {0}
    assert "No runs match these filters." in texts(app)
    assert widget(app, "selectbox", "Pipeline").options == ["All pipelines", "mine"]
    assert [b.label for b in app.button] == ["Run mine"]


def test_script_upload_offers_only_ann_s_links_and_pipelines(ann: User, bobs_run: str) -> None:
    app = open_page(ann, "script_upload")

    assert widget(app, "selectbox", "Cloud link").options == ["offline"]
    assert widget(app, "selectbox", "Pipeline").options == ["mine"]
    assert [e.label.split(" · ")[0] for e in app.expander] == ["mine"]
    assert "secret" not in texts(app)


def test_cloud_setup_lists_only_ann_s_links(ann: User, bobs_run: str) -> None:
    app = open_page(ann, "cloud_setup")

    assert [e.label.split(" · ")[0] for e in app.expander] == ["offline"]
    assert "secret-link" not in texts(app)


def test_task_scheduling_shows_none_of_bob_s_schedules(ann: User, bobs_run: str) -> None:
    app = open_page(ann, "task_scheduling")

    assert widget(app, "selectbox", "Pipeline").options == ["mine"]
    assert "secret" not in texts(app)
    assert "None yet." in texts(app)


def _refusal(action: Callable[[], object]) -> str:
    with pytest.raises(NotFoundError) as caught:
        action()
    return str(caught.value)


@pytest.mark.parametrize(
    ("action", "bobs_name"),
    [
        pytest.param(view_run, "run", id="open-run"),
        pytest.param(run_details, "run", id="run-details"),
        pytest.param(read_log, "run", id="read-log"),
        pytest.param(
            lambda s, a, name: read_output(s, a, name, "s3://x/outputs/y"), "run", id="download"
        ),
        pytest.param(stop_run, "run", id="stop-run"),
        pytest.param(
            lambda s, a, name: list_run_page(s, a, RunFilter(pipeline=name)),
            "secret",
            id="filter-summary",
        ),
    ],
)
def test_every_action_on_bob_s_ids_reads_like_an_unknown_id(
    ann: User, bobs_run: str, action: Callable[..., object], bobs_name: str
) -> None:
    settings = get_settings()
    actor = actor_of(settings, ann.id)
    name = bobs_run if bobs_name == "run" else bobs_name
    unknown = "no-such-thing"

    bobs = _refusal(lambda: action(settings, actor, name))
    nobodys = _refusal(lambda: action(settings, actor, unknown))

    assert bobs.replace(name, "X") == nobodys.replace(unknown, "X")


@pytest.mark.parametrize(
    "action",
    [pytest.param(check_link, id="check-link"), pytest.param(remove_link, id="remove-link")],
)
def test_every_link_action_on_bob_s_link_reads_like_an_unknown_one(
    ann: User, bobs_run: str, action: Callable[..., object]
) -> None:
    settings = get_settings()
    actor = actor_of(settings, ann.id)

    bobs = _refusal(lambda: action(settings, actor, "secret-link"))
    nobodys = _refusal(lambda: action(settings, actor, "no-such-thing"))

    assert bobs.replace("secret-link", "X") == nobodys.replace("no-such-thing", "X")


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(
            lambda settings, user, name: submit_run(
                settings, actor_of(settings, user), name, requested_by="user"
            ),
            id="run",
        ),
        pytest.param(
            lambda settings, user, name: schedules.set_schedule(
                settings, actor_of(settings, user), name, cron="0 3 * * *"
            ),
            id="schedule",
        ),
        pytest.param(
            lambda settings, user, name: schedules.pause_schedule(
                settings, actor_of(settings, user), name
            ),
            id="pause",
        ),
        pytest.param(
            lambda settings, user, name: schedules.resume_schedule(
                settings, actor_of(settings, user), name
            ),
            id="resume",
        ),
        pytest.param(
            lambda settings, user, name: schedules.remove_schedule(
                settings, actor_of(settings, user), name
            ),
            id="remove-schedule",
        ),
    ],
)
def test_every_pipeline_action_on_bob_s_pipeline_reads_like_an_unknown_one(
    ann: User, bob: User, bobs_run: str, action: Callable[..., object]
) -> None:
    settings = get_settings()

    bobs = _refusal(lambda: action(settings, ann.id, "secret"))
    nobodys = _refusal(lambda: action(settings, ann.id, "nothing"))

    assert bobs.replace("secret", "X") == nobodys.replace("nothing", "X")
    [view] = schedules.list_schedules(settings, actor_of(settings, bob.id))
    assert view.pipeline == "secret" and view.active  # bob's schedule is untouched
