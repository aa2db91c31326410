"""One run of a source: pull the pages, keep the bytes, validate, import
into the book as incremental, move the cursor.

Steps of ``execute_run``:

1. Claim the run: queued → running by compare-and-set (a second worker
   handed the same run does nothing). The database allows one queued or
   running run per source, so two requests to sync never make two pulls.
2. Ask for ``updated_since = cursor − overlap`` (the beginning of time on a
   first run) and follow next_cursor to the end, writing every record as
   one NDJSON line to a temporary file; the heartbeat moves after each page.
3. Keep the file as an Upload of the source's standing request
   (services.uploads: sha256, content-addressed, the same validator and row
   errors as a file). The same bytes as an earlier run are that run's
   upload: nothing new, nothing counted twice.
4. Import it as ``incremental`` (services.imports; one import per upload).
5. Only after the import committed: the cursor moves to the highest
   updated_at received (never backwards), the run is marked succeeded, and
   each owner's digest is written — one transaction. A run that dies before
   this leaves the cursor where it was: the next run asks for the same
   window again and the book's versions make the repeat change nothing.

Failures: 401/403 fail the run as ``auth`` and Louis gets one blocker card
per failing spell (until a run succeeds again); any other failure fails the
run with its reason. A running run whose heartbeat stopped for
SYNC_STALE_MINUTES was lost with its worker: it is marked failed
(``abandoned``) before a new one starts.
"""

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.connectors.kolable_api import KolableApiClient, SyncFailure
from reconciliation.errors import DomainError
from reconciliation.models import AuditEvent, SyncRun, SyncSource, Upload
from reconciliation.secret_box import open_secret
from reconciliation.services import sync_digest
from reconciliation.services.audit import record_audit
from reconciliation.services.frames import upload_root
from reconciliation.services.imports import import_upload
from reconciliation.services.uploads import failure_summary, finish_upload, receive_upload

logger = logging.getLogger(__name__)

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
HEARTBEAT_SECONDS = 1.0
# What orjson cannot write (an integer wider than 64 bits the API sent) the
# standard encoder writes, with the same separators and UTF-8 text.
_FALLBACK = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
Status = SyncRun.Status


# --- Asking for a run --------------------------------------------------------------


def request_sync(
    *, source: SyncSource, requested_by=None, trigger=SyncRun.Trigger.MANUAL, now=None
):
    """(the run, created): a new queued run, or the one already queued or
    running for this source (the database decides between two callers)."""
    now = now or timezone.now()
    abandon_stale_runs(source=source, now=now)
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                source=source, trigger=trigger, requested_by=requested_by, status=Status.QUEUED
            )
            run_id = run.pk
            transaction.on_commit(lambda: queue_run(run_id=run_id))
    except IntegrityError:
        active = source.runs.filter(status__in=SyncRun.ACTIVE).first()
        if active is None:
            raise
        return active, False
    return run, True


def queue_run(*, run_id) -> None:
    """Hand the run to the django-q2 worker. A broker that is down is
    logged; the every-minute sweep starts queued runs it finds waiting."""
    from django_q.tasks import async_task

    try:
        async_task("reconciliation.tasks.run_sync", str(run_id), task_name=f"sync-{run_id}")
    except Exception:  # noqa: BLE001 - any broker failure; the sweep retries
        logger.exception("queue_run: could not queue sync run %s", run_id)


def abandon_stale_runs(*, source: SyncSource | None = None, now=None) -> int:
    """Mark running runs whose heartbeat stopped as failed (their worker
    died). Their cursor never moved, so the next run repeats the window."""
    now = now or timezone.now()
    stale = SyncRun.objects.filter(
        status=Status.RUNNING,
        heartbeat_at__lt=now - timedelta(minutes=int(settings.SYNC_STALE_MINUTES)),
    )
    if source is not None:
        stale = stale.filter(source=source)
    return stale.update(
        status=Status.FAILED,
        finished_at=now,
        error_code="abandoned",
        error=_("同步中斷（工作程序停止回報）；下一次同步會重抓同一段時間。"),
    )


def due_moment(source: SyncSource, now) -> datetime:
    """Today's scheduled time of `source`, in Asia/Taipei."""
    local = timezone.localtime(now)
    return local.replace(
        hour=source.schedule_time.hour,
        minute=source.schedule_time.minute,
        second=0,
        microsecond=0,
    )


def sync_due_sources(*, now=None) -> dict:
    """The every-minute schedule: runs lost with their worker are marked
    failed; each source whose time of day has passed and that has no run
    since then gets one; queued runs whose task was lost are handed out again."""
    now = now or timezone.now()
    abandoned = abandon_stale_runs(now=now)
    started = []
    for source in SyncSource.objects.all():
        moment = due_moment(source, now)
        if now < moment or source.runs.filter(created_at__gte=moment).exists():
            continue
        run, created = request_sync(source=source, trigger=SyncRun.Trigger.SCHEDULE, now=now)
        if created:
            started.append(str(run.pk))
    waiting = SyncRun.objects.filter(
        status=Status.QUEUED, created_at__lt=now - timedelta(minutes=2)
    ).values_list("pk", flat=True)
    for run_id in list(waiting):
        queue_run(run_id=run_id)
    return {"abandoned": abandoned, "started": started, "requeued": len(waiting)}


# --- Running it -------------------------------------------------------------------


def execute_run(*, run_id, sleep=None) -> SyncRun | None:
    """Do the queued run `run_id` (the steps are in the module docstring)."""
    now = timezone.now()
    claimed = SyncRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now
    )
    run = SyncRun.objects.filter(pk=run_id).select_related("source__project").first()
    if not claimed or run is None:
        return run
    source = run.source
    since = (
        source.cursor - timedelta(minutes=source.overlap_minutes) if source.cursor else BEGINNING
    )
    SyncRun.objects.filter(pk=run.pk).update(updated_since=since)
    temporary = None
    try:
        token = open_secret(source.token_encrypted)
        if token is None:
            raise SyncFailure(
                "auth", _("保存的 API 權杖無法解開（SECRET_KEY 換過？）：請重新設定權杖。")
            )
        client_options = {"sleep": sleep} if sleep is not None else {}
        client = KolableApiClient(
            base_url=source.base_url, token=token, page_size=source.page_size, **client_options
        )
        laps = [time.perf_counter()]
        temporary, pages, rows, highest = _pull(run, client, since)
        laps.append(time.perf_counter())
        if rows == 0:
            return _finish(run, source, pages=0, rows=0, highest=None)
        upload, repeated = _keep(run, source, temporary)
        laps.append(time.perf_counter())
        if upload.schema_status != Upload.SchemaStatus.ACCEPTED:
            raise SyncFailure(
                "invalid_data",
                _("API 資料沒有通過欄位驗證：%(summary)s") % {"summary": failure_summary(upload)},
            )
        reconciliation_import = import_upload(upload_id=upload.pk)
        laps.append(time.perf_counter())
        finished = _finish(
            run,
            source,
            pages=pages,
            rows=rows,
            highest=highest,
            upload=upload,
            reconciliation_import=reconciliation_import,
            repeated=repeated,
        )
        laps.append(time.perf_counter())
        # Where a big run spends its time, for the log and `bench_sync`.
        finished.timings = {
            name: round(laps[i + 1] - laps[i], 3)
            for i, name in enumerate(("pull", "keep_validate", "import", "finish"))
        }
        for phase, seconds in getattr(reconciliation_import, "timings", {}).items():
            finished.timings[f"import.{phase}"] = round(seconds, 3)
        logger.info(
            "sync run %s: %s rows, %s",
            run.pk,
            rows,
            ", ".join(f"{k} {v:.2f} s" for k, v in finished.timings.items()),
        )
        return finished
    except SyncFailure as failure:
        return _fail(run, source, failure)
    except (DomainError, OSError, ValueError, DatabaseError) as exc:
        # Logged for the people who run the app; the run says what failed.
        logger.exception("sync run %s failed", run.pk)
        return _fail(run, source, SyncFailure("internal", f"{exc.__class__.__name__}"))
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


def _pull(run: SyncRun, client: KolableApiClient, since: datetime):
    """Every page into a temporary NDJSON file: (path, pages, rows, highest
    updated_at). The heartbeat moves with the pages (at most once a
    second); a run marked abandoned meanwhile stops here."""
    folder = upload_root() / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sync-{uuid.uuid4().hex}.part"
    pages = rows = 0
    stamps = []
    beat = 0.0
    with path.open("wb") as out:
        for page in client.pages(updated_since=since):
            pages += 1
            rows += len(page.records)
            if page.records:
                out.write(_ndjson(page.records))
                stamps.extend(r.get("updated_at") for r in page.records)
            if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                beat = time.monotonic()
                alive = SyncRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
                    pages=pages, rows=rows, heartbeat_at=timezone.now()
                )
                if not alive:
                    raise SyncFailure("abandoned", _("同步已被標為中斷，停止抓取。"))
    return path, pages, rows, _highest(stamps)


def _ndjson(records: list[dict]) -> bytes:
    """The page's records, one JSON object per line."""
    try:
        return b"\n".join(map(orjson.dumps, records)) + b"\n"
    except TypeError:
        return ("\n".join(map(_FALLBACK, records)) + "\n").encode("utf-8")


def _highest(stamps: list) -> datetime | None:
    """The latest updated_at received (unreadable values ignored: the
    validator reports them), parsed once for the whole run."""
    if not stamps:
        return None
    latest = pd.to_datetime(
        pd.Series(stamps, dtype=object), utc=True, errors="coerce", format="ISO8601"
    ).max()
    return latest.to_pydatetime() if pd.notna(latest) else None


def _keep(run: SyncRun, source: SyncSource, path: Path) -> tuple[Upload, bool]:
    stamp = timezone.localtime(run.started_at or timezone.now()).strftime("%Y%m%d-%H%M")
    with path.open("rb") as handle:
        outcome = receive_upload(
            data_request=source.data_request,
            uploaded_by=source.created_by.user,
            file=handle,
            original_name=f"kolable-api-{stamp}-{str(run.pk)[:8]}.ndjson",
            content_type="application/x-ndjson",
            mode=Upload.Mode.INCREMENTAL,
            size_limit=int(settings.SYNC_MAX_UPLOAD_MB) * 1_048_576,
            validate_now=True,
        )
    upload = outcome.upload
    if upload.schema_status == Upload.SchemaStatus.PENDING:
        upload = finish_upload(upload=upload)
    SyncRun.objects.filter(pk=run.pk).update(upload=upload)
    return upload, outcome.is_duplicate


def _finish(
    run, source, *, pages, rows, highest, upload=None, reconciliation_import=None, repeated=False
) -> SyncRun:
    book = (
        (reconciliation_import.summary.book or {})
        if reconciliation_import is not None and not repeated
        else {}
    )
    now = timezone.now()
    with transaction.atomic():
        if highest is not None:
            SyncSource.objects.filter(pk=source.pk).filter(
                Q(cursor__isnull=True) | Q(cursor__lt=highest)
            ).update(cursor=highest)
        finished = SyncRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
            status=Status.SUCCEEDED,
            finished_at=now,
            pages=pages,
            rows=rows,
            new_orders=int(book.get("new_orders", 0)),
            changed_orders=int(book.get("changed_orders", 0)),
            cursor_after=highest or source.cursor,
            upload=upload,
            reconciliation_import=reconciliation_import,
        )
        run.refresh_from_db()
        if finished:
            _audit(run, source)
            sync_digest.send_digests(run=run)
    return run


def _fail(run: SyncRun, source: SyncSource, failure: SyncFailure) -> SyncRun:
    with transaction.atomic():
        failed = SyncRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            error_code=failure.code,
            error=failure.message[:2000],
        )
        run.refresh_from_db()
        if failed:
            _audit(run, source)
            if failure.code == "auth":
                sync_digest.auth_blocker(run=run)
            elif failure.code == "invalid_data":
                sync_digest.send_digests(run=run)
    return run


def _audit(run: SyncRun, source: SyncSource) -> None:
    if run.status == Status.SUCCEEDED:
        message = _(
            "Kolable API 同步完成：%(pages)s 頁、%(rows)s 筆，新訂單 %(new)s、變更 %(changed)s。"
        ) % {
            "pages": f"{run.pages:,}",
            "rows": f"{run.rows:,}",
            "new": f"{run.new_orders:,}",
            "changed": f"{run.changed_orders:,}",
        }
    else:
        message = _("Kolable API 同步失敗：%(error)s") % {"error": run.error}
    record_audit(
        verb=AuditEvent.Verb.SYNC_FINISHED,
        data_request=source.data_request,
        message=message,
        run_id=str(run.pk),
        status=run.status,
        error_code=run.error_code,
        pages=run.pages,
        rows=run.rows,
        upload_id=str(run.upload_id) if run.upload_id else None,
        import_id=str(run.reconciliation_import_id) if run.reconciliation_import_id else None,
    )
