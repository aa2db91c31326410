"""Delivery of the people-sync outbox, kept apart from the state changes that
write it (healthchecks' Flip → Notification → Transport).

`deliver_due_notifications` is what the every-minute schedule runs:

1. Pick Notifications that are queued, or failed and due for a retry, or
   stuck in `sending` past their lease (a worker died mid-send).
2. Claim each with one conditional UPDATE (→ `sending`, attempts + 1, lease
   until now + SEND_LEASE). Only the worker whose UPDATE changed the row
   sends it, so two workers never send the same message.
3. Send through its channel (`notifiers.py`), outside any transaction.
4. Record a NotificationAttempt with the error, and settle the row with a
   second conditional UPDATE guarded by the attempt number: `sent`; `failed`
   with the next try after a backoff; or `dead` for a permanent error (4xx
   other than 429, no address) or after MAX_ATTEMPTS.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from reconciliation import notifiers
from reconciliation.models import Notification, NotificationAttempt

logger = logging.getLogger(__name__)

Status = Notification.Status

# Waits after the 1st, 2nd, ... failed attempt. Six attempts span ~10 hours,
# long enough to ride out an SMTP or LINE outage without spamming the log.
BACKOFF_SECONDS = (60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
# Far longer than any send can take (channel timeouts are seconds), so a row
# is only re-claimed from `sending` when its worker is really gone.
SEND_LEASE = timedelta(minutes=10)
CLAIMABLE = (Status.QUEUED, Status.FAILED, Status.SENDING)


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0  # claimed by another worker first

    def as_dict(self) -> dict:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dead": self.dead,
            "skipped": self.skipped,
        }


def backoff_seconds(attempts: int) -> int:
    return BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1]


def deliver_due_notifications(*, now: datetime | None = None, limit: int = 100) -> DeliveryReport:
    now = now or timezone.now()
    report = DeliveryReport()
    due = list(
        Notification.objects.filter(status__in=CLAIMABLE, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        notification = claim_notification(notification_id=pk, now=now)
        if notification is None:
            report.skipped += 1
            continue
        outcome = deliver_claimed(notification=notification)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def claim_notification(*, notification_id, now: datetime) -> Notification | None:
    """Compare-and-set queued/failed/expired-sending → sending. None when
    another worker got there first."""
    claimed = Notification.objects.filter(
        pk=notification_id, status__in=CLAIMABLE, next_attempt_at__lte=now
    ).update(
        status=Status.SENDING,
        attempts=F("attempts") + 1,
        next_attempt_at=now + SEND_LEASE,
    )
    if not claimed:
        return None
    return Notification.objects.select_related("recipient__user").get(pk=notification_id)


def deliver_claimed(*, notification: Notification) -> str:
    """Send one claimed notification and settle it. Returns the outcome:
    "sent", "failed" (will retry) or "dead"."""
    error = None
    try:
        notifiers.send(notification)
    except notifiers.DeliveryError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - a bug in a channel must not wedge the outbox
        logger.exception("notification %s: unexpected error in channel", notification.pk)
        error = notifiers.DeliveryError(f"{exc.__class__.__name__}: {exc}")

    finished = timezone.now()
    if error is None:
        outcome, fields = "sent", {"status": Status.SENT, "sent_at": finished, "last_error": ""}
    elif error.permanent or notification.attempts >= MAX_ATTEMPTS:
        outcome, fields = "dead", {"status": Status.DEAD, "last_error": str(error)[:2000]}
    else:
        wait = max(backoff_seconds(notification.attempts), error.retry_after or 0)
        outcome, fields = (
            "failed",
            {
                "status": Status.FAILED,
                "last_error": str(error)[:2000],
                "next_attempt_at": finished + timedelta(seconds=wait),
            },
        )
    with transaction.atomic():
        NotificationAttempt.objects.create(
            notification=notification, ok=error is None, error=str(error or "")[:2000]
        )
        # Guarded by the attempt number: if this worker's lease ran out and
        # another one re-claimed the row, the newer attempt's result stands.
        Notification.objects.filter(
            pk=notification.pk, status=Status.SENDING, attempts=notification.attempts
        ).update(**fields)
    if error is not None:
        logger.warning(
            "notification %s via %s: attempt %s %s: %s",
            notification.pk,
            notification.channel,
            notification.attempts,
            outcome,
            error,
        )
    return outcome
