"""Reads of the sync sources and their runs (the API, the page, dispatch)."""

from django.urls import reverse
from django.utils import timezone

from reconciliation.models import Project, SyncRun, SyncSource

RUNS_SHOWN = 20


def sources_of(project: Project | None = None):
    """The sources, oldest first: one project's (not joined to it — the caller
    has it), or every project's with their project."""
    sources = SyncSource.objects.select_related("data_request").order_by("created_at")
    if project is None:
        return sources.select_related("project")
    return sources.filter(project=project)


def runs_of(source: SyncSource, *, limit: int = RUNS_SHOWN):
    return list(source.runs.order_by("-created_at")[:limit])


def last_finished_run(source: SyncSource) -> SyncRun | None:
    return (
        source.runs.filter(status__in=[SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED])
        .order_by("-finished_at")
        .first()
    )


def _local(moment):
    return timezone.localtime(moment) if moment else None


def run_out(run: SyncRun) -> dict:
    return {
        "id": run.pk,
        "status": run.status,
        "trigger": run.trigger,
        "created_at": _local(run.created_at),
        "started_at": _local(run.started_at),
        "finished_at": _local(run.finished_at),
        "updated_since": _local(run.updated_since),
        "pages": run.pages,
        "rows": run.rows,
        "new_orders": run.new_orders,
        "changed_orders": run.changed_orders,
        "error_code": run.error_code,
        "error": run.error,
        "upload_id": run.upload_id,
        "import_id": run.reconciliation_import_id,
        "upload_url": (
            reverse("upload-page", args=[run.source.data_request_id]) + f"?result={run.upload_id}"
            if run.upload_id
            else None
        ),
        "scorecard_url": (
            f"{reverse('scorecard')}?import={run.reconciliation_import_id}"
            if run.reconciliation_import_id
            else None
        ),
    }


def source_out(source: SyncSource) -> dict:
    last = last_finished_run(source)
    return {
        "id": source.pk,
        "project_id": source.project_id,
        "kind": source.kind,
        "base_url": source.base_url,
        "token": source.token_hint,
        "schedule_time": source.schedule_time.strftime("%H:%M"),
        "overlap_minutes": source.overlap_minutes,
        "page_size": source.page_size,
        "cursor": _local(source.cursor),
        "data_request_id": source.data_request_id,
        "last_run": run_out(last) if last else None,
        "created_at": _local(source.created_at),
    }


def source_health(project: Project) -> tuple[SyncSource | None, SyncRun | None]:
    """The project's source and its last finished run (None when none)."""
    source = sources_of(project).first()
    if source is None:
        return None, None
    source.project = project
    return source, last_finished_run(source)


def is_source_request(data_request_id) -> bool:
    """Whether the request is a source's standing request: its imports are
    told in the run's digest (one per owner), not one message each."""
    return SyncSource.objects.filter(data_request_id=data_request_id).exists()
