"""The artefacts that run Orca's side on a host of its own pass their tools' own checks:
`systemd-analyze verify` on the units, `nginx -t` on the reverse proxy, both rendered with
this machine's paths (the venv's `orca`, a throwaway certificate)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTALLED_BIN = "/opt/orca/.venv/bin"  # where the units expect Orca's venv
UNITS = ["orca-worker@.service", "orca-serve.service", "orca-ui.service"]
# `make test` sets it: there a missing tool fails the check instead of skipping it.
REQUIRED = bool(os.environ.get("ORCA_REQUIRE_PROFILE"))


def _render_units(target: Path) -> list[Path]:
    """The units with this venv's bin folder and a readable environment file."""
    env_file = target / "orca.env"
    shutil.copy(DEPLOY / "orca.env.example", env_file)
    rendered = []
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text()
        text = text.replace(INSTALLED_BIN, str(Path(sys.executable).parent))
        text = text.replace("/etc/orca/orca.env", str(env_file))
        path = target / name.replace("@.service", "@1.service")
        path.write_text(text)
        rendered.append(path)
    return rendered


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None and not REQUIRED, reason="needs systemd-analyze"
)
def test_the_systemd_units_verify(tmp_path: Path) -> None:
    units = _render_units(tmp_path)
    for unit in units:
        text = unit.read_text()
        assert "ExecStart=" + str(Path(sys.executable).parent / "orca") in text, unit
    checked = subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True
    )
    # Warnings about this host (no `orca` user, no running systemd) are not the units' fault;
    # anything naming the units' own directives is.
    problems = [
        line
        for line in (checked.stdout + checked.stderr).splitlines()
        if any(unit.name in line for unit in units)
    ]
    assert problems == [], "\n".join(problems)


def test_the_units_name_what_the_product_has() -> None:
    # A typo in a command would only show on the host: the commands must be Orca's own.
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text()
        [command] = [line for line in text.splitlines() if line.startswith("ExecStart=")]
        assert command.split()[1] in {"worker", "serve", "ui"}, command
        assert "Restart=always" in text and "User=orca" in text


@pytest.mark.skipif(
    shutil.which("nginx") is None and not REQUIRED, reason="needs nginx (.ci/run installs it)"
)
def test_the_nginx_proxy_config_passes_nginx_t(tmp_path: Path) -> None:
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=orca.example.com", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    site = (DEPLOY / "nginx" / "orca.conf").read_text()
    site = site.replace("/etc/ssl/orca/fullchain.pem", str(cert))
    site = site.replace("/etc/ssl/orca/privkey.pem", str(key))
    (tmp_path / "orca.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    main = f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/logs/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    include {tmp_path}/orca.conf;
}}
"""
    (tmp_path / "nginx.conf").write_text(main)

    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )

    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr
    assert "proxy_set_header Upgrade $http_upgrade" in site  # Streamlit's websocket
