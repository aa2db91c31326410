"""Declare the django-q2 schedules (idempotent; `make run` and deploys run it).

Declared here and not in AppConfig.ready(): ready() runs in every process —
web workers, management commands, the test runner — and would write to the
database on import. Each schedule is keyed by its name (`update_or_create`),
so running this twice changes nothing.

Settings that make the schedules safe (kolable/settings.py, Q_CLUSTER):
`catch_up=False` — a cluster that was down for an hour runs each schedule
once, not sixty times; `retry` (720 s) longer than `timeout` (600 s) — the
broker never hands a still-running task to a second worker. The tasks
themselves are compare-and-set, so even a doubled run adds nothing."""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

SCHEDULES = (
    # name, task, every N minutes
    ("kolable-escalation-sweep", "reconciliation.tasks.escalate_overdue_requests", 1),
    ("kolable-deliver-notifications", "reconciliation.tasks.deliver_notifications", 1),
    # Accepted uploads whose import task was lost (broker down, worker killed).
    ("kolable-import-stalled", "reconciliation.tasks.import_stalled_uploads", 1),
    # Uploads left pending (a validation task lost with its worker).
    ("kolable-validate-stalled", "reconciliation.tasks.validate_stalled_uploads", 5),
    # Error reports and refused files past UPLOAD_RETENTION_DAYS.
    ("kolable-purge-uploads", "reconciliation.tasks.purge_expired_uploads", 60),
    # Each sync source's daily run at its time of day (Asia/Taipei); runs
    # lost with their worker are marked and their window pulled again.
    ("kolable-sync-due", "reconciliation.tasks.sync_due_sources", 1),
    # Live-stream figures an import left behind whose rewrite task was lost.
    ("kolable-live-figures", "reconciliation.tasks.refresh_live_figures_behind", 1),
    # /healthz reads when this last succeeded to tell whether a worker is alive.
    ("heartbeat", "reconciliation.tasks.heartbeat", 1),
)


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules (escalation sweep, delivery, heartbeat)."

    @transaction.atomic
    def handle(self, *args, **options):
        now = timezone.now()
        for name, func, minutes in SCHEDULES:
            # Schedule.name is not unique in the database; a duplicate left by
            # an earlier hand-made schedule would make update_or_create fail.
            same_name = Schedule.objects.filter(name=name).order_by("id")
            keep = same_name.first()
            if keep is not None:
                same_name.exclude(pk=keep.pk).delete()
            schedule, created = Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes,
                    "repeats": -1,
                    "cluster": None,
                },
                # Explicit first run: at once on a fresh install. An existing
                # schedule keeps its own next_run (catch_up=False means a stale
                # one fires once, not once per missed minute).
                create_defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes,
                    "repeats": -1,
                    "cluster": None,
                    "next_run": now,
                },
            )
            self.stdout.write(
                f"{'created' if created else 'updated'} {name}: {func} every {minutes} min, "
                f"next run {timezone.localtime(schedule.next_run):%Y-%m-%d %H:%M:%S}"
            )
