"""Personas (healthchecks style): louis, wade, huber, pls and an outsider,
made by the real `seed_demo` command, plus API clients and the browser."""

import json
import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import translation

from reconciliation.api.auth import issue_token
from reconciliation.models import Project

DEMO_PASSWORD = "kolable-demo-pass"  # noqa: S105 - test-only


@pytest.fixture(autouse=True)
def _isolated_data_dir(settings, tmp_path):
    """Kept uploads and reports go to a per-test folder; passwords hash fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DATA_DIR = tmp_path
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.SITE_URL = "http://testserver"
    # The live figures in the import's transaction: the tests read them right
    # after an import without a worker (the after-commit path has its own test).
    settings.LIVE_FIGURES_INLINE = True


@pytest.fixture(autouse=True)
def _default_language(settings):
    """Each test starts in zh-Hant: a request the test client made in English
    leaves English active in the thread (LocaleMiddleware never deactivates)."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def seeded(db, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", DEMO_PASSWORD)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    return Project.objects.get(name="Kolable")


@pytest.fixture
def project(seeded):
    return seeded


def _user(name):
    return get_user_model().objects.get(username=name)


@pytest.fixture
def louis(seeded):
    return _user("louis")


@pytest.fixture
def wade(seeded):
    return _user("wade")


@pytest.fixture
def huber(seeded):
    return _user("huber")


@pytest.fixture
def pls(seeded):
    return _user("pls")


@pytest.fixture
def outsider(seeded):
    return get_user_model().objects.create_user("outsider", password=DEMO_PASSWORD)


class ApiClient:
    """JSON calls as one user: the PLS bot with its token, people with their
    session (as the browser does)."""

    def __init__(self, user, *, token: str | None = None):
        self.user = user
        self.client = Client()
        self.headers = {}
        if token:
            self.headers["HTTP_AUTHORIZATION"] = f"Token {token}"
        elif user is not None:
            self.client.force_login(user)

    def get(self, path, data=None):
        return self.client.get(path, data or {}, **self.headers)

    def post(self, path, payload=None, **extra):
        return self.client.post(
            path,
            json.dumps(payload if payload is not None else {}),
            content_type="application/json",
            **self.headers,
            **extra,
        )

    def post_raw(self, path, body, content_type="application/json"):
        return self.client.post(path, body, content_type=content_type, **self.headers)

    def upload(self, path, files: dict, data=None):
        return self.client.post(path, {**(data or {}), **files}, **self.headers)


@pytest.fixture
def api_as(seeded):
    """api_as("pls") → token client; api_as(louis_user) → session client."""

    def make(who):
        if who == "pls" or getattr(who, "username", None) == "pls":
            return ApiClient(_user("pls"), token=issue_token(_user("pls")))
        if who is None:
            return ApiClient(None)
        return ApiClient(who)

    return make


@pytest.fixture
def pls_api(api_as):
    return api_as("pls")


# --- Browser ------------------------------------------------------------------

ARTIFACTS = Path(__file__).parent / "e2e" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: browser tests cannot run"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # tests make around it are ordinary synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import expect, sync_playwright

    # expect() has its own 5 s default, separate from the page's timeout.
    expect.set_options(timeout=20_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # While Playwright's loop runs, Django keeps this thread's connection
        # per context: the one the browser tests opened is closed here, or
        # it outlives them and PostgreSQL refuses to drop the test database.
        connections.close_all()


@pytest.fixture
def page_for(browser, live_server, settings):
    """page_for(user, width=1280) → a Playwright page signed in as user."""
    settings.SITE_URL = live_server.url
    contexts = []

    def make(user=None, *, width=1280, height=900, locale="zh-TW"):
        context = browser.new_context(
            viewport={"width": width, "height": height}, locale=locale, base_url=live_server.url
        )
        contexts.append(context)
        if user is not None:
            client = Client()
            client.force_login(user)
            cookie = client.cookies["sessionid"]
            context.add_cookies(
                [{"name": "sessionid", "value": cookie.value, "url": live_server.url}]
            )
        page = context.new_page()
        # Generous: a loaded 2-core CI machine renders the big pages slowly.
        page.set_default_timeout(30000)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot():
    """shot(page, "name") saves tests/e2e/artifacts/name.png (full page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(page, name):
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0
        return path

    return save
