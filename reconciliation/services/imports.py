"""Reconciliation import (SPEC §5): an accepted upload becomes OrderRows, one
ReconciliationImport and its ImportSummary.

The import is idempotent because the database allows one import per upload
(ReconciliationImport.upload is a OneToOne); concurrent callers race on that
constraint and the loser returns the winner's import."""

import logging

from django.db import transaction

from reconciliation.models import ReconciliationImport, Upload

logger = logging.getLogger(__name__)


def queue_import(*, upload_id) -> None:
    """Start the import of an accepted upload in the django-q2 worker. Called
    from `transaction.on_commit`, so the worker sees the accepted upload."""
    from django_q.tasks import async_task

    async_task(
        "reconciliation.tasks.import_upload", str(upload_id), task_name=f"import-{upload_id}"
    )


def import_upload(*, upload_id, actor=None) -> ReconciliationImport | None:
    """The import of `upload_id`, created on first call. Returns None when
    the upload no longer exists (a queued task outliving its upload)."""
    existing = ReconciliationImport.objects.filter(upload_id=upload_id).first()
    if existing is not None:
        return existing
    upload = Upload.objects.filter(pk=upload_id).select_related("data_request").first()
    if upload is None:
        logger.info("import_upload: upload %s no longer exists", upload_id)
        return None
    # The classification lands in the next commit; until then an accepted
    # upload simply waits for its import (the task is retried by django-q2).
    with transaction.atomic():
        return ReconciliationImport.objects.filter(upload_id=upload.pk).first()
