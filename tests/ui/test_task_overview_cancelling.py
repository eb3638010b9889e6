"""Task Overview of a run being stopped: `cancelling` is shown, and no second Stop."""

from __future__ import annotations

import pytest

from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import User
from orca_flows.db.repositories.runs import compare_and_set_state
from orca_flows.domain.states import RunState
from orca_flows.settings import get_settings
from tests.ui.conftest import open_page, texts
from tests.ui.test_task_overview import queued  # noqa: F401, F811 - the fixture
from ui.display import STATE_ICONS, state_label

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_a_cancelling_run_shows_its_state_and_offers_no_stop(ann: User, queued: str) -> None:  # noqa: F811
    with session_scope(get_settings().effective_database_url) as session:
        assert compare_and_set_state(
            session,
            queued,
            RunState.QUEUED,
            RunState.CANCELLING,
            started_at=utcnow(),
            stop_requested_at=utcnow(),
            attempt=1,
        )

    app = open_page(ann, "task_overview", run=queued)

    assert RunState.CANCELLING in STATE_ICONS
    assert app.subheader[0].value == f"{state_label('cancelling')} · nightly"
    assert "Stop" not in [b.label for b in app.button]
    assert "Live: refreshing every 2 s" in texts(app)
