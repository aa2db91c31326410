"""The Kolable API stub on loopback (a real HTTP server in a thread) and a
configured source pointing at it."""

import pytest

from reconciliation.kolable_stub import KolableApiStub
from reconciliation.models import SyncSource

TOKEN = "stub-token-5678"  # noqa: S105 - the stub's test token


@pytest.fixture(autouse=True)
def _sync_settings(settings):
    settings.SYNC_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SYNC_BACKOFF_SECONDS = 0.01
    settings.SYNC_MAX_RETRY_AFTER = 2.0
    settings.SYNC_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def stub():
    server = KolableApiStub(orders=300, seed=7, token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def make_source(api_as, louis):
    def make(stub, **extra):
        answer = api_as(louis).post(
            "/api/kolable/sources",
            {
                "kind": "kolable_api",
                "base_url": stub.base_url,
                "token": TOKEN,
                "schedule_time": "06:00",
                "overlap_minutes": 60,
                "page_size": 100,
                **extra,
            },
        )
        assert answer.status_code == 201, answer.content
        return SyncSource.objects.get(pk=answer.json()["id"])

    return make


class Sleeps(list):
    """Records the waits the client asks for instead of sleeping them."""

    def __call__(self, seconds):
        self.append(seconds)
