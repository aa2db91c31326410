"""django-q2 entry points. Each only calls a service; the services hold the
rules and are tested directly."""


def import_upload(upload_id: str):
    """Queued by `services.imports.queue_import` when an upload is accepted."""
    from reconciliation.services.imports import import_upload as run_import

    result = run_import(upload_id=upload_id)
    return str(result.pk) if result is not None else None


def heartbeat():
    """Run every minute by the `heartbeat` schedule; /healthz reads its last success."""
    from django.utils import timezone

    return timezone.now().isoformat()
