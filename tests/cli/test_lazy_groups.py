"""`orca --help` and the commands that do not need them skip the heavy imports (Prefect,
the ORM, boto3): a group's module is imported only when that group runs."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orca_flows.cli.main import GROUPS, app

HEAVY = ("prefect", "sqlalchemy", "boto3", "botocore", "alembic", "prefect_aws")


def _imported_after(*args: str, home: Path | None = None) -> list[str]:
    """The heavy packages a fresh interpreter has imported after `orca ARGS`."""
    code = (
        "import json, sys\n"
        "from orca_flows.cli.main import app\n"
        "try:\n"
        f"    app({list(args)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    # Without the transaction guard's sitecustomize (it imports SQLAlchemy and botocore to
    # watch them): this measures what `orca` itself imports.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if home is not None:
        env["ORCA_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_orca_help_imports_none_of_the_heavy_packages() -> None:
    assert _imported_after("--help") == []


def test_a_groups_help_imports_only_its_own_module() -> None:
    # `orca user --help` needs the users' module, not Prefect's worker or the schedules.
    assert "prefect_aws" not in _imported_after("ui", "--help")


def test_run_list_reads_rows_without_prefect_or_aws(tmp_path: Path) -> None:
    # Issue 13 (P4, P7): listing runs must not load a link's access per run, nor pay
    # Prefect's import; `orca run show` is where outputs are listed.
    imported = _imported_after("run", "list", "--json", "--user", "a@example.com", home=tmp_path)
    assert not {"prefect", "boto3", "botocore", "prefect_aws"} & set(imported), imported


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_each_group_listed_is_the_groups_own(name: str) -> None:
    module, summary = GROUPS[name]
    group_app = importlib.import_module(module).app
    assert group_app.info.help == summary, f"update GROUPS[{name!r}] in orca_flows/cli/main.py"
    shown = CliRunner().invoke(app, [name, "--help"])
    assert shown.exit_code == 0, shown.output
    assert summary.split(":")[0] in shown.output


def test_orca_help_lists_every_group_and_command() -> None:
    shown = CliRunner().invoke(app, ["--help"])
    assert shown.exit_code == 0, shown.output
    for name in [*GROUPS, "worker", "serve", "ui", "demo"]:
        assert f" {name} " in shown.output, name
