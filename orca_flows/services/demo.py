"""`orca demo` as far as Orca goes today: sandbox, a user, a checked link, S3 and the queue.

The execution issue replaces the middle with real pipeline runs; the frame (start the
sandbox, show results, stop what it started) stays.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from orca_flows.db.engine import session_scope
from orca_flows.db.repositories.links import get_link_by_name
from orca_flows.db.repositories.users import get_user_by_email
from orca_flows.services.link_check import check_link
from orca_flows.services.links import create_local_link, link_access
from orca_flows.services.prefect_api import prefect_api
from orca_flows.services.sandbox import start_sandbox, stop_sandbox
from orca_flows.services.users import add_user
from orca_flows.settings import OrcaSettings

__all__ = ["DEMO_EMAIL", "DemoReport", "run_demo"]

DEMO_EMAIL = "demo@orca.example"
DEMO_LINK = "sandbox"
_DEMO_PASSWORD = "orca-demo-password"  # local sandbox only; printed in the demo's output


@dataclass
class DemoReport:
    """What the demo did, step by step, for the CLI to print."""

    steps: list[tuple[str, str]] = field(default_factory=list)
    stopped_sandbox: bool = False

    def add(self, step: str, result: str) -> None:
        """Record one step and its visible result."""
        self.steps.append((step, result))


def run_demo(settings: OrcaSettings, *, keep: bool = False) -> DemoReport:
    """Start the sandbox, create the demo user, round-trip S3 and SQS, then clean up.

    Args:
        settings: Orca's settings (ORCA_HOME decides which sandbox and database).
        keep: Leave the sandbox running afterwards.
    """
    report = DemoReport()
    status = start_sandbox(settings)
    assert status.state is not None
    report.add("sandbox", f"{status.state.endpoint_url} (moto server, pid {status.state.pid})")
    try:
        _exercise(settings, report, status.state.bucket, status.state.queue)
    finally:
        if not keep and not status.already_running:
            stop_sandbox(settings)
            report.stopped_sandbox = True
    return report


def _exercise(settings: OrcaSettings, report: DemoReport, bucket_name: str, queue_name: str) -> None:
    with prefect_api(settings) as api_url, session_scope(settings.effective_database_url) as session:
        report.add("prefect", api_url or "ephemeral API")
        user = get_user_by_email(session, DEMO_EMAIL) or add_user(session, DEMO_EMAIL, _DEMO_PASSWORD)
        report.add("user", f"{user.email} (id {user.id}, password {_DEMO_PASSWORD!r})")
        link = get_link_by_name(session, user.id, DEMO_LINK) or create_local_link(
            session, settings, user, DEMO_LINK
        )
        report.add("link", f"{link.name}: {link.role_arn} (bucket {link.bucket})")
        check = check_link(session, user, DEMO_LINK)
        report.add(
            "link check",
            ", ".join(f"{step.name} {step.status}" for step in check.steps),
        )
        access = link_access(link)
        user_id = user.id
    report.add("database", settings.effective_database_url)

    bucket = access.user_bucket(user_id)
    uri = bucket.put("demo/hello.txt", b"hello from orca\n", content_type="text/plain")
    report.add("s3 put", uri)
    report.add("s3 get", bucket.get("demo/hello.txt").decode().strip())

    queue = access.queue()
    run_id = str(uuid.uuid4())
    queue.send(json.dumps({"run_id": run_id}), group_id=f"demo:{user_id}", dedup_id=run_id)
    received = None
    for _ in range(3):
        for message in queue.receive(max_messages=10, wait_seconds=1):
            queue.delete(message.receipt_handle)
            if message.dedup_id == run_id:
                received = message
        if received:
            break
    report.add(
        "sqs fifo",
        f"sent and received run {run_id[:8]} in group {received.group_id}"
        if received
        else "sent, but nothing came back",
    )
