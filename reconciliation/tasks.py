"""django-q2 entry points. Each only calls a service; the services hold the
rules and are tested directly."""


def import_upload(upload_id: str):
    """Queued by `services.imports.queue_import` when an upload is accepted."""
    from reconciliation.errors import DomainError
    from reconciliation.services.imports import import_upload as run_import

    try:
        result = run_import(upload_id=upload_id)
    except DomainError as exc:
        # Not importable (e.g. the upload was not accepted): nothing to retry.
        return f"{exc.code}: {exc.detail}"
    return str(result.pk) if result is not None else None


def validate_upload(upload_id: str):
    """Queued by `services.uploads.receive_upload` for a file above UPLOAD_SYNC_MAX_MB."""
    from reconciliation.services.uploads import validate_pending_upload

    upload = validate_pending_upload(upload_id=upload_id)
    return upload.schema_status if upload is not None else None


def validate_stalled_uploads():
    """Every 5 minutes (`setup_schedules`): uploads left pending by a lost task."""
    from reconciliation.services.uploads import validate_stalled_uploads as sweep

    return sweep()


def purge_expired_uploads():
    """Daily (`setup_schedules`): error reports and refused files past UPLOAD_RETENTION_DAYS."""
    from reconciliation.services.uploads import purge_expired_uploads as purge

    return purge()


def import_stalled_uploads():
    """Every minute (`setup_schedules`): import accepted uploads left without one."""
    from reconciliation.services.imports import import_stalled_uploads as sweep

    return sweep()


def heartbeat():
    """Run every minute by the `heartbeat` schedule; /healthz reads its last success."""
    from django.utils import timezone

    return timezone.now().isoformat()


def escalate_overdue_requests():
    """Every minute (`setup_schedules`): escalate overdue requests and send the
    daily reminders. Safe to run twice or on several workers at once."""
    from reconciliation.services.escalation import escalate_overdue_requests as sweep

    return sweep().as_dict()


def deliver_notifications():
    """Every minute (`setup_schedules`): send queued people-sync messages."""
    from reconciliation.services.delivery import deliver_due_notifications

    return deliver_due_notifications().as_dict()


def run_sync(run_id: str):
    """Queued by `services.sync.request_sync`: one run of a source."""
    from reconciliation.services.sync import execute_run

    run = execute_run(run_id=run_id)
    return run.status if run is not None else None


def sync_due_sources():
    """Every minute (`setup_schedules`): start each source's daily run at its
    time (Asia/Taipei), mark runs lost with their worker, re-queue lost tasks."""
    from reconciliation.services.sync import sync_due_sources as sweep

    return sweep()


def refresh_live_figures(project_id: str):
    """After an import committed: the live streams' figures over the new book."""
    from reconciliation.services.live import refresh_behind

    return refresh_behind(project_id=project_id)


def refresh_live_figures_behind():
    """Every minute (`setup_schedules`): figures whose rewrite task was lost."""
    from reconciliation.services.live import refresh_all_behind

    return refresh_all_behind()
