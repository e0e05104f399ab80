"""Project-wide promises: production settings, lint, migrations, the Japanese catalogue."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args, env_extra=None, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "PORTAL_DEMO")}
    env.update(env_extra or {})
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, **kwargs)


def test_production_settings_pass_check_deploy_without_warnings():
    result = _run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        {"PORTAL_ENV": "production", "SECRET_KEY": "x7!kq" * 12, "ALLOWED_HOSTS": "portal.example.jp"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {"PORTAL_ENV": "production", "ALLOWED_HOSTS": "portal.example.jp"}
    result = _run(
        [sys.executable, "-c", "import os; os.environ.pop('SECRET_KEY', None);import django; django.setup()"],
        {**env, "DJANGO_SETTINGS_MODULE": "portal.settings"},
    )
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_ruff_is_clean():
    result = _run([sys.executable, "-m", "ruff", "check", "."])
    assert result.returncode == 0, result.stdout


@pytest.mark.django_db
def test_no_missing_migrations():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_japanese_catalogue_has_every_string_of_the_code_and_templates(tmp_path):
    """Extract messages afresh into a copy of the tree and require a translation for each."""
    import shutil

    for name in ("apps", "portal", "templates", "locale", "manage.py"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp_path / name)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "DJANGO_SETTINGS_MODULE": "portal.settings"}
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ja", "--no-obsolete", "--no-location"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    po = tmp_path / "locale/ja/LC_MESSAGES/django.po"
    untranslated = subprocess.run(
        ["msgattrib", "--untranslated", "--no-obsolete", str(po)], capture_output=True, text=True, check=True
    ).stdout
    fuzzy = subprocess.run(
        ["msgattrib", "--only-fuzzy", "--no-obsolete", str(po)], capture_output=True, text=True, check=True
    ).stdout
    missing = [line for line in untranslated.splitlines() if line.startswith("msgid ") and line != 'msgid ""']
    assert not missing, "untranslated: " + "; ".join(missing)
    assert "msgid" not in fuzzy.replace('msgid ""', ""), "fuzzy entries:\n" + fuzzy


def test_compiled_catalogue_matches_the_po_file():
    po = ROOT / "locale/ja/LC_MESSAGES/django.po"
    mo = ROOT / "locale/ja/LC_MESSAGES/django.mo"
    assert mo.exists(), "run `make messages`"
    assert mo.stat().st_mtime >= po.stat().st_mtime - 1, (
        "django.mo is older than django.po: run `make messages`"
    )


def test_no_htmx_trigger_listens_to_every_input_of_the_page():
    """``hx-trigger="change from:select"`` fires for every select on the page: a filter form so
    written reloads the list (and drops the ticked rows) when someone uses a row's or a bulk form's
    control. Triggers name the form's own fields: ``from:(#form-id select)``."""
    import re

    unscoped = re.compile(r"from:(input|select|textarea)\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "templates").rglob("*.html")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if unscoped.search(line)
    ]
    assert offenders == []
