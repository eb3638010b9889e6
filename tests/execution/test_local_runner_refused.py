"""A worker never runs a local pipeline of a link that may not use the local runner (issue
10, point 1): a pipeline saved before that rule fails with the reason, its script never
runs on Orca's host."""

from __future__ import annotations

import pytest

from orca_flows.db.engine import session_scope
from orca_flows.db.repositories import links as links_repo
from tests.execution.conftest import LINK, Ledger, Orca, Workers

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]


def test_a_local_pipeline_on_a_real_account_fails_with_the_reason_and_never_runs(
    orca: Orca, ledger: Ledger, workers: Workers
) -> None:
    orca.add_pipeline("old", ledger.script("old"), runner="local")
    # As a link row that is not the sandbox's (the pipeline predates the rule).
    with session_scope(orca.settings.effective_database_url) as session:
        link = links_repo.get_link_by_name(session, orca.user.id, LINK)
        assert link is not None
        link.local = False
    run = orca.submit("old")
    workers.start(1)

    assert orca.wait_finished([run], timeout=120) == {run: "failed"}
    error = orca.show(run)["error"]
    assert f"the local runner is not available on link '{LINK}'" in error
    assert "ORCA_ALLOW_LOCAL_RUNNER=true" in error
    assert ledger.starts(run) == []
