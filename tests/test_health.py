import uuid
from datetime import timedelta

from django.utils import timezone
from django_q.models import Task

from reconciliation.views.health import HEARTBEAT_TASK


def beat(at):
    Task.objects.create(
        id=uuid.uuid4().hex,
        name=f"heartbeat-{uuid.uuid4().hex[:6]}",
        func=HEARTBEAT_TASK,
        started=at,
        stopped=at,
        success=True,
        result=at.isoformat(),
    )


def test_healthz_names_the_missing_worker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["worker"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].endswith("ok")


def test_healthz_ok_with_a_recent_heartbeat_and_503_when_stale(client, db):
    beat(timezone.now() - timedelta(minutes=10))
    assert client.get("/healthz").json()["failing"] == ["worker"]
    beat(timezone.now() - timedelta(seconds=30))
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"
    assert "login" not in response.get("Location", "")  # open without signing in
