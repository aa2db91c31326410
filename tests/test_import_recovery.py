"""An accepted upload whose import task was lost (broker down when it was
queued, or the worker killed mid-import) is imported by the sweep, once."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from reconciliation import tasks
from reconciliation.models import ReconciliationImport
from reconciliation.services.imports import import_stalled_uploads
from tests.imp_frames import new_request, order, upload_csv

ORDERS = (order("R-1", "paid", 28000), order("R-2", "pending", 28000, customer="c2"))


def test_the_sweep_imports_a_stalled_upload_once(louis, pls_api, settings):
    settings.IMPORT_STALL_MINUTES = 5
    upload = upload_csv(pls_api, new_request(louis), ORDERS)
    # No worker ran the queued task: right after the upload the sweep waits.
    assert import_stalled_uploads() == []
    assert not ReconciliationImport.objects.exists()

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert import_stalled_uploads() == [str(upload.pk)]
        assert tasks.import_stalled_uploads() == []  # nothing left to do
    imported = ReconciliationImport.objects.get()
    assert imported.upload_id == upload.pk
    assert (imported.row_count, imported.paid_count, imported.pending_count) == (2, 1, 1)
    # The original task arriving late changes nothing.
    assert tasks.import_upload(str(upload.pk)) == str(imported.pk)
    assert ReconciliationImport.objects.count() == 1
