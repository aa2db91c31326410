"""Run a source's sync now, in this process (what the worker's task does):

python manage.py sync_source            # the only source
python manage.py sync_source <source id>
"""

from django.core.management.base import BaseCommand, CommandError

from reconciliation.models import SyncSource
from reconciliation.services.sync import execute_run, request_sync


class Command(BaseCommand):
    help = "Pull a sync source now (one run; waits for it)."

    def add_arguments(self, parser):
        parser.add_argument("source_id", nargs="?")

    def handle(self, *args, **options):
        sources = SyncSource.objects.all()
        if options["source_id"]:
            sources = sources.filter(pk=options["source_id"])
        source = sources.order_by("created_at").first()
        if source is None:
            raise CommandError("no such sync source")
        run, created = request_sync(source=source)
        if not created and run.status == run.Status.RUNNING:
            raise CommandError(f"run {run.pk} of this source is already running")
        run = execute_run(run_id=run.pk)
        self.stdout.write(
            f"run {run.pk}: {run.status} {run.error_code} — {run.pages} pages, {run.rows} rows, "
            f"{run.new_orders} new, {run.changed_orders} changed"
        )
