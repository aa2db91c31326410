import io

from django.contrib.auth import get_user_model
from django.core.management import call_command

from reconciliation.api.auth import hash_token
from reconciliation.models import ApiToken, DataRequest, Project, ReconciliationImport, Upload


def test_seed_demo_is_idempotent_and_starts_where_the_seed_does(db, monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    first = io.StringIO()
    call_command("seed_demo", stdout=first)
    assert "louis" in first.getvalue() and "generated" in first.getvalue()
    second = io.StringIO()
    call_command("seed_demo", stdout=second)
    assert "already exist" in second.getvalue()
    assert Project.objects.count() == 1
    assert (
        get_user_model().objects.filter(username__in=["louis", "wade", "huber", "pls"]).count() == 4
    )
    assert not DataRequest.objects.exists()
    assert not Upload.objects.exists()
    assert not ReconciliationImport.objects.exists()
    project = Project.objects.get()
    assert project.data_owner_profile.username == "wade"


def test_create_api_token_prints_key_last_and_stores_only_its_hash(seeded):
    out = io.StringIO()
    call_command("create_api_token", "pls", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("kol_") and len(key) > 30
    token = ApiToken.objects.get()
    assert token.key_hash == hash_token(key)
    assert key not in (token.key_hash, token.prefix)


def test_preflight_refuses_development_settings(settings, monkeypatch):
    import pytest
    from django.core.management.base import CommandError

    settings.DEBUG = True
    with pytest.raises(CommandError, match="DEBUG is on") as refused:
        call_command("preflight", stdout=io.StringIO(), stderr=io.StringIO())
    assert "SECRET_KEY" in str(refused.value)

    settings.DEBUG = False
    settings.SECRET_KEY = "k" * 64
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        monkeypatch.delenv("ALLOW_SQLITE", raising=False)
        with pytest.raises(CommandError, match="SQLite"):
            call_command("preflight", stdout=io.StringIO(), stderr=io.StringIO())
        monkeypatch.setenv("ALLOW_SQLITE", "1")
    out = io.StringIO()
    call_command("preflight", stdout=out, stderr=io.StringIO())
    assert "preflight ok" in out.getvalue()


def test_bench_live_runs_to_its_figures(tmp_path):
    """`make bench` ends with bench_live: it runs (a small book, on SQLite in
    its own folder), the worker's rewrite of the stream figures included,
    and prints every figure. Nothing about speed is asserted."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="kolable.settings")
    completed = subprocess.run(  # noqa: S603 - this project's manage.py
        [sys.executable, "manage.py", "bench_live", "--orders", "3000", "--repeat", "1"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = completed.stdout.split("bench_live summary", 1)[1]
    assert "3,000 orders in the book" in summary
    for label in (
        "/live/, median",
        "stream page LIVE-",
        "GET /api/kolable/live-streams, median",
        "stored figures rewritten by the worker after the import",
        "tag columns refreshed",
    ):
        assert label in summary, label
    assert " 0 streams" not in summary
