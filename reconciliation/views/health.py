"""/healthz for load balancers and the operator: the database, the job broker
and the last worker heartbeat. 503 names the failing part."""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

HEARTBEAT_TASK = "reconciliation.tasks.heartbeat"


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _broker():
    from django_q.brokers import get_broker

    broker = get_broker()
    if not broker.ping():
        raise RuntimeError("broker did not answer")
    return "redis ok" if settings.REDIS_URL else "orm ok"


def _worker():
    """A worker is alive when the heartbeat schedule ran recently."""
    from django_q.models import Success

    last = (
        Success.objects.filter(func=HEARTBEAT_TASK)
        .order_by("-stopped")
        .values_list("stopped", flat=True)
        .first()
    )
    if last is None:
        raise RuntimeError("no heartbeat yet (is a qcluster running, and setup_schedules done?)")
    age = timezone.now() - last
    if age > timedelta(seconds=settings.HEARTBEAT_MAX_AGE_SECONDS):
        raise RuntimeError(f"last heartbeat {int(age.total_seconds())} s ago")
    return f"heartbeat {int(age.total_seconds())} s ago"


@never_cache
def healthz(request):
    checks = {}
    healthy = True
    for name, check in (("database", _database), ("broker", _broker), ("worker", _worker)):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure of a part is reported, never raised
            healthy = False
            checks[name] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
            if name == "database":
                connection.close()  # let the next request reconnect
    failing = [name for name, value in checks.items() if value.startswith("error")]
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "failing": failing, "checks": checks},
        status=200 if healthy else 503,
    )
