"""The systemd units in deploy/ are valid and restart what exits (the supervisord layout is started
for real by test_production_layout.py)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNITS / name)
    return parser


@pytest.mark.parametrize("name", ["portal-web.service", "portal-worker@.service", "portal-beat.service"])
def test_every_unit_restarts_its_process_whenever_it_exits(name):
    unit = _unit(name)
    assert unit["Service"]["Restart"] == "always"
    assert unit["Service"]["EnvironmentFile"] == "/etc/portal/portal.env"
    assert unit["Unit"]["PartOf"] == "portal.target"


def test_the_target_starts_web_worker_and_beat():
    wants = _unit("portal.target")["Unit"]["Wants"].split()
    assert sorted(wants) == ["portal-beat.service", "portal-web.service", "portal-worker@1.service"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path):
    """systemd-analyze verify, with the install paths pointed at this checkout and interpreter."""
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/srv/portal/.venv/bin/python", sys.executable)
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text.replace("/srv/portal", str(ROOT)))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert not problems, "\n".join(problems)
