"""Delivery of the people-sync outbox: e-mail through Django's backend (locmem
in tests), JSON webhooks and LINE pushes to a local server, retries with
backoff, permanent errors going dead, and two senders never sending twice."""

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from reconciliation import tasks
from reconciliation.models import Notification, NotificationAttempt
from reconciliation.services.delivery import (
    BACKOFF_SECONDS,
    MAX_ATTEMPTS,
    deliver_due_notifications,
)
from reconciliation.services.notify import queue_message
from reconciliation.services.requests import create_data_request
from tests.http_stub import Answer, StubServer

T0 = datetime(2026, 5, 24, 9, 0, tzinfo=ZoneInfo("Asia/Taipei"))
Channel = Notification.Channel
Status = Notification.Status


@pytest.fixture
def hook(settings):
    with StubServer() as server:
        settings.NOTIFY_WEBHOOK_URL = server.url("/hook")
        server.routes["/hook"] = Answer(200)
        yield server


def message_to(profile, subject="測試訊息") -> Notification:
    """One people-sync message to `profile`; returns its webhook copy."""
    written = queue_message(
        recipient=profile, kind=Notification.Kind.INFO, subject=subject, body=f"{profile}：內容"
    )
    return next(n for n in written if n.channel == Channel.WEBHOOK)


def deliver_at(moment):
    with time_machine.travel(moment, tick=False):
        return deliver_due_notifications()


def test_email_goes_through_djangos_backend(louis, mailoutbox):
    create_data_request(requested_by=louis)
    queued = Notification.objects.filter(channel=Channel.EMAIL, status=Status.QUEUED)
    assert queued.count() == 3  # Wade, Louis, Huber all have an address

    report = deliver_due_notifications()
    assert report.sent == 3 and report.failed == report.dead == 0
    assert sorted(m.to[0] for m in mailoutbox) == [
        "huber@kolable.example",
        "louis@kolable.example",
        "wade@kolable.example",
    ]
    to_wade = next(m for m in mailoutbox if m.to == ["wade@kolable.example"])
    assert "order_id" in to_wade.body and "P0" in to_wade.subject
    for notification in Notification.objects.filter(channel=Channel.EMAIL):
        assert notification.status == Status.SENT and notification.sent_at is not None
        assert notification.attempts == 1
        assert list(notification.deliveries.values_list("ok", flat=True)) == [True]
    # Inbox copies were delivered by being written; nothing is sent twice.
    assert deliver_due_notifications().sent == 0
    assert len(mailoutbox) == 3


def test_webhook_posts_json_once_per_message(louis, hook):
    create_data_request(requested_by=louis)
    rows = Notification.objects.filter(channel=Channel.WEBHOOK)
    assert rows.count() == 3
    deliver_due_notifications()
    hits = hook.hits("/hook")
    assert len(hits) == 3
    by_id = {h.headers["Idempotency-Key"]: h.json() for h in hits}
    assert set(by_id) == {str(pk) for pk in rows.values_list("pk", flat=True)}
    to_wade = next(b for b in by_id.values() if b["recipient"]["username"] == "wade")
    assert to_wade["kind"] == "request_created"
    assert to_wade["text"].startswith("Wade：請在 24 小時內")
    assert to_wade["payload"]["data_owner"] == "wade"
    assert hits[0].headers["Content-Type"].startswith("application/json")
    assert set(rows.values_list("status", flat=True)) == {Status.SENT}


def test_500_is_retried_after_backoff(wade, hook):
    hook.routes["/hook"] = [Answer(500, b"upstream down"), Answer(200)]
    with time_machine.travel(T0, tick=False):
        notification = message_to(wade.profile)

    report = deliver_at(T0)
    assert report.failed == 1
    notification.refresh_from_db()
    assert notification.status == Status.FAILED
    assert notification.attempts == 1
    assert "HTTP 500" in notification.last_error and "upstream down" in notification.last_error
    assert notification.next_attempt_at == T0 + timedelta(seconds=BACKOFF_SECONDS[0])

    # Not due yet: nothing is sent.
    assert deliver_at(T0 + timedelta(seconds=30)).sent == 0
    assert len(hook.hits("/hook")) == 1

    assert deliver_at(T0 + timedelta(seconds=61)).sent == 1
    notification.refresh_from_db()
    assert notification.status == Status.SENT and notification.attempts == 2
    attempts = list(notification.deliveries.order_by("id").values_list("ok", "error"))
    assert attempts[0][0] is False and "HTTP 500" in attempts[0][1]
    assert attempts[1] == (True, "")
    assert len(hook.hits("/hook")) == 2


def test_400_is_permanent_and_goes_dead(wade, hook):
    hook.routes["/hook"] = Answer(400, b'{"message":"bad payload"}')
    with time_machine.travel(T0, tick=False):
        notification = message_to(wade.profile)
    assert deliver_at(T0).dead == 1
    notification.refresh_from_db()
    assert notification.status == Status.DEAD
    assert "HTTP 400" in notification.last_error
    # Never retried, however long we wait.
    assert deliver_at(T0 + timedelta(days=2)).sent == 0
    assert len(hook.hits("/hook")) == 1
    assert NotificationAttempt.objects.filter(notification=notification).count() == 1


def test_429_waits_as_long_as_asked(wade, hook):
    hook.routes["/hook"] = Answer(429, b"slow down", headers={"Retry-After": "600"})
    with time_machine.travel(T0, tick=False):
        notification = message_to(wade.profile)
    assert deliver_at(T0).failed == 1
    notification.refresh_from_db()
    assert notification.status == Status.FAILED
    assert notification.next_attempt_at == T0 + timedelta(seconds=600)


def test_unreachable_webhook_is_retried_not_dropped(wade, settings):
    with StubServer() as server:
        closed_url = server.url("/hook")
    settings.NOTIFY_WEBHOOK_URL = closed_url  # the server is gone: connection refused
    with time_machine.travel(T0, tick=False):
        notification = message_to(wade.profile)
    assert deliver_at(T0).failed == 1
    notification.refresh_from_db()
    assert notification.status == Status.FAILED and "refused" in notification.last_error.lower()


def test_gives_up_after_max_attempts(wade, hook):
    hook.routes["/hook"] = Answer(503)
    with time_machine.travel(T0, tick=False):
        notification = message_to(wade.profile)
    Notification.objects.filter(pk=notification.pk).update(
        attempts=MAX_ATTEMPTS - 1, status=Status.FAILED
    )
    assert deliver_at(T0).dead == 1
    notification.refresh_from_db()
    assert notification.status == Status.DEAD and notification.attempts == MAX_ATTEMPTS


def test_a_send_abandoned_by_a_dead_worker_is_taken_over(wade, hook):
    with time_machine.travel(T0, tick=False):
        notification = message_to(wade.profile)
    # A worker claimed it and died: `sending`, lease expired.
    Notification.objects.filter(pk=notification.pk).update(
        status=Status.SENDING, attempts=1, next_attempt_at=T0 - timedelta(seconds=1)
    )
    deliver_at(T0)
    notification.refresh_from_db()
    assert notification.status == Status.SENT and notification.attempts == 2
    assert len(hook.hits("/hook")) == 1


def test_a_send_in_progress_is_left_alone(wade, hook):
    with time_machine.travel(T0, tick=False):
        notification = message_to(wade.profile)
    Notification.objects.filter(pk=notification.pk).update(
        status=Status.SENDING, attempts=1, next_attempt_at=T0 + timedelta(minutes=5)
    )
    deliver_at(T0)
    assert hook.hits("/hook") == []
    notification.refresh_from_db()
    assert notification.status == Status.SENDING and notification.attempts == 1


def test_line_push_when_token_and_line_id(wade, settings):
    with StubServer() as line:
        line.routes["/v2/bot/message/push"] = Answer(200, b"{}")
        settings.LINE_CHANNEL_TOKEN = "line-test-token"
        settings.LINE_API_URL = line.url("/v2/bot/message/push")
        settings.NOTIFY_WEBHOOK_URL = ""
        wade.profile.line_user_id = "U0123456789abcdef"
        wade.profile.save()
        notification = message_to(wade.profile, subject="[逾期] 請今天交檔")
        assert deliver_due_notifications().sent >= 1
        (hit,) = line.hits("/v2/bot/message/push")
    assert hit.headers["Authorization"] == "Bearer line-test-token"
    assert hit.headers["X-Line-Retry-Key"] == str(notification.pk)
    assert hit.json() == {
        "to": "U0123456789abcdef",
        "messages": [{"type": "text", "text": "[逾期] 請今天交檔\nWade：內容"}],
    }


def test_line_409_means_already_delivered(wade, settings):
    with StubServer() as line:
        line.routes["/push"] = Answer(409, b'{"message":"retry key already accepted"}')
        settings.LINE_CHANNEL_TOKEN = "t"
        settings.LINE_API_URL = line.url("/push")
        wade.profile.line_user_id = "U1"
        wade.profile.save()
        notification = message_to(wade.profile)
        deliver_due_notifications()
    notification.refresh_from_db()
    assert notification.status == Status.SENT


def test_task_only_calls_the_service(wade, hook):
    message_to(wade.profile)
    result = tasks.deliver_notifications()
    assert result["sent"] == 2  # e-mail + webhook
    assert tasks.deliver_notifications()["sent"] == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_never_send_twice(wade, hook):
    ids = {str(message_to(wade.profile, subject=f"訊息 {i}").pk) for i in range(12)}
    barrier = threading.Barrier(4)
    errors = []

    def sender():
        try:
            barrier.wait(timeout=10)
            deliver_due_notifications()
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    keys = [h.headers["Idempotency-Key"] for h in hook.hits("/hook")]
    assert sorted(keys) == sorted(ids)  # each exactly once
    webhook_rows = Notification.objects.filter(channel=Channel.WEBHOOK)
    assert set(webhook_rows.values_list("status", "attempts")) == {(Status.SENT, 1)}
    assert NotificationAttempt.objects.filter(notification__channel=Channel.WEBHOOK).count() == 12


def test_address_removed_after_queueing_goes_dead_not_retried(wade, mailoutbox):
    written = queue_message(
        recipient=wade.profile, kind=Notification.Kind.INFO, subject="測試", body="內容"
    )
    email = next(n for n in written if n.channel == Channel.EMAIL)
    wade.email = ""
    wade.save()
    assert deliver_due_notifications().dead == 1
    email.refresh_from_db()
    assert email.status == Status.DEAD and email.last_error == "收件人沒有電子郵件地址"
    assert mailoutbox == []
