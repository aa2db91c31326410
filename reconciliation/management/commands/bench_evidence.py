"""Benchmark of Huber's evidence queue, printed for `make bench`.

In a throwaway database (a separate SQLite file, or `<name>_bench_evidence`
on PostgreSQL; dropped afterwards unless --keep):

1. 28,000 training orders stored: the queue page (median of --repeat
   requests through the whole Django stack, signed in as Huber), first page
   and a deep page (a cursor near the end); then tagging all 28,000 orders of
   a filter; then importing a 28,000-row tag file.
2. 1,000,000 orders stored (a newer import, 28,000 of them the training
   programme): the queue page first and deep, for the training programme and
   for every programme (a 1,000,000-order queue), and tagging the 28,000.

Targets: page median < 100 ms; tag 28,000 < 2 s; 28,000-row tag
file < 3 s. Timings include the revenue recompute each tagging action runs.
On PostgreSQL each bulk write is followed by VACUUM ANALYZE before pages are
timed — what autovacuum does within a minute — so the figures are the steady
state; in the first minute after a million-row COPY, plans made on stale
statistics can be several times slower.
"""

import csv
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client

from reconciliation.management.commands._bench_pages import median_ms
from reconciliation.management.commands._orders_data import (
    TRAINING_PROGRAM,
    import_from_frame,
    synthetic_frame,
)
from reconciliation.models import BookSummary, OrderRow, Project
from reconciliation.selectors import evidence as queue
from reconciliation.services.evidence import tag_orders
from reconciliation.services.tag_files import import_tag_file

TARGET_PAGE_MS = 100
TARGET_TAG_S = 2.0
TARGET_FILE_S = 3.0


class Command(BaseCommand):
    help = "Time the evidence queue page, bulk tagging and tag-file import (28,000 and 1,000,000 orders)."

    def add_arguments(self, parser):
        parser.add_argument("--training", type=int, default=28_000)
        parser.add_argument(
            "--large", type=int, default=1_000_000, help="orders of the large import (0 = skip)"
        )
        parser.add_argument("--repeat", type=int, default=21, help="requests per page figure")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark database")

    def handle(self, *args, **options):
        self.repeat = options["repeat"]
        self.results = []
        old_name = self._create_database()
        # Pages are timed as served in production (DEBUG off, no query log),
        # without the test environment's template instrumentation, which
        # copies every template context and would be timed along.
        settings.DEBUG = False
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        # Kept tag files go to a scratch folder, not the app's DATA_DIR.
        scratch = tempfile.TemporaryDirectory(prefix="bench-evidence-")
        settings.DATA_DIR = Path(scratch.name)
        # A 1,000,000-order CSV is ~150 MB: the benchmark raises the upload
        # limit the way a deployment taking such files would.
        largest = max(options["training"], options["large"])
        settings.MAX_UPLOAD_MB = max(int(settings.MAX_UPLOAD_MB), largest // 5_000 + 10)
        try:
            self._run(options)
        finally:
            scratch.cleanup()
            if not options["keep"]:
                connection.creation.destroy_test_db(old_name, verbosity=0)
        self._report()

    # --- database ------------------------------------------------------------

    def _create_database(self) -> str:
        old_name = connection.settings_dict["NAME"]
        test = connection.settings_dict.setdefault("TEST", {})
        if connection.vendor == "sqlite":
            test["NAME"] = str(settings.DATA_DIR / "bench-evidence.sqlite3")
        else:
            test["NAME"] = f"{old_name}_bench_evidence"
        self.stdout.write(f"bench_evidence: {connection.vendor} database {test['NAME']}")
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        os.environ.setdefault("DEMO_PASSWORD", "bench-only-password")
        call_command("seed_demo", stdout=io.StringIO())
        return old_name

    # --- figures ---------------------------------------------------------------

    def _record(self, label: str, value: float, unit: str, target: float | None):
        ok = "" if target is None else ("  ok" if value < target else f"  OVER {target:g} {unit}")
        self.results.append(f"  {label:<62} {value:>9.1f} {unit}{ok}")
        self.stdout.write(self.results[-1])

    def _page_ms(self, client: Client, params: dict) -> float:
        return median_ms(client, "/evidence/", self.repeat, params=params)

    def _deep_cursor(self, reconciliation_import, program_id: str | None, depth: float = 0.98):
        rows = OrderRow.objects.filter(reconciliation_import=reconciliation_import)
        if program_id:
            rows = rows.filter(program_id=program_id)
        total = rows.count()
        anchor = rows.order_by("id").values_list("id", flat=True)[int(total * depth)]
        return queue.encode_cursor("n", anchor)

    def _pages(self, client, reconciliation_import, label: str, program_id: str | None, tag: str):
        params = {"program_id": program_id or queue.ALL_PROGRAMS, "tag": tag}
        first = self._page_ms(client, params)
        self._record(f"{label}: page 1, median", first, "ms", TARGET_PAGE_MS)
        deep = {**params, "cursor": self._deep_cursor(reconciliation_import, program_id)}
        self._record(
            f"{label}: deep page (98 %), median", self._page_ms(client, deep), "ms", TARGET_PAGE_MS
        )

    def _recompute_share(self):
        """Wrap the revenue recompute each action runs, to report its share."""
        from reconciliation.services import revenue

        original = revenue.recompute_summary
        spent = []

        def timed(**kwargs):
            start = time.perf_counter()
            try:
                return original(**kwargs)
            finally:
                spent.append(time.perf_counter() - start)

        revenue.recompute_summary = timed
        return spent, lambda: setattr(revenue, "recompute_summary", original)

    def _timed_runs(self, label: str, target: float, actions) -> None:
        """Median of the runs; each run is one real action (its own
        transaction, audit event and recompute)."""
        spent, restore = self._recompute_share()
        times = []
        try:
            for action in actions:
                start = time.perf_counter()
                count = action()
                times.append(time.perf_counter() - start)
        finally:
            restore()
        median = statistics.median(times)
        runs = ", ".join(f"{t:.2f}" for t in times)
        self._record(f"{label} ({count:,}), median of {len(times)}", median, "s", target)
        self.results.append(
            f"      runs {runs} s; of which the revenue recompute {statistics.median(spent):.2f} s"
        )
        self.stdout.write(self.results[-1])

    def _tag_filter(self, huber, reconciliation_import, label: str):
        """Tag every untagged training order (the real first pass), then
        re-tag the whole programme twice more: three 28,000-order actions."""

        def action(tag_filter: str, tag: str, ref: str):
            def run():
                project = reconciliation_import.data_request.project
                flt = queue.parse_filter(
                    {"program_id": TRAINING_PROGRAM, "tag": tag_filter},
                    book=BookSummary.objects.get(project=project),
                )
                return tag_orders(
                    actor=huber,
                    project=project,
                    tag=tag,
                    queue_filter=flt,
                    evidence_ref=ref,
                ).tagged

            return run

        self._timed_runs(
            label,
            TARGET_TAG_S,
            [
                action(queue.UNTAGGED, "paid", "BANK-STATEMENT-2026-05"),
                action(queue.ALL_TAGS, "paid", "BANK-STATEMENT-2026-05-B"),
                action(queue.ALL_TAGS, "paid", "BANK-STATEMENT-2026-05-C"),
            ],
        )

    def _tag_file(self, huber, reconciliation_import, label: str):
        order_ids = list(
            OrderRow.objects.filter(
                reconciliation_import=reconciliation_import, program_id=TRAINING_PROGRAM
            )
            .order_by("id")
            .values_list("order_id", flat=True)
        )

        def tag_file(run: int) -> bytes:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(
                ["order_id", "tag", "payment_ref", "refund_ref", "evidence_ref", "note"]
            )
            for i, order_id in enumerate(order_ids):
                if i % 20 == 0:
                    writer.writerow([order_id, "refunded", "", f"RF-{run}-{i}", "", "退刷"])
                elif i % 50 == 1:
                    writer.writerow([order_id, "unresolved", "", "", "", "金流查無"])
                else:
                    writer.writerow([order_id, "paid", f"BANK-{run}-{i}", "", "", ""])
            return buffer.getvalue().encode("utf-8")

        def action(data: bytes):
            def run():
                report = import_tag_file(
                    actor=huber,
                    project=reconciliation_import.data_request.project,
                    data=data,
                    original_name="tags.csv",
                )
                assert report.ok and report.applied == len(order_ids), report.as_dict()
                return report.applied

            return run

        # Files are built before timing; each run is a different file.
        self._timed_runs(label, TARGET_FILE_S, [action(tag_file(run)) for run in range(3)])

    def _settle(self):
        """On PostgreSQL, what autovacuum does within a minute of a bulk load
        (statistics and the visibility map), so pages are timed in the
        steady state rather than in the first minute after COPY."""
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")

    def _run(self, options):
        huber = get_user_model().objects.get(username="huber")
        project = Project.objects.get(name="Kolable")
        client = Client()
        client.force_login(huber)

        training = options["training"]
        self.stdout.write(f"building an import of {training:,} training orders …")
        small = import_from_frame(
            synthetic_frame(training, training=training, seed=1), project=project
        )
        self._settle()
        self.results.append(f"{connection.vendor}, {training:,} orders stored:")
        self._pages(client, small, "queue, untagged", TRAINING_PROGRAM, queue.UNTAGGED)
        self._tag_filter(huber, small, "tag every training order of a filter")
        self._settle()
        self._pages(client, small, "queue, tagged paid", TRAINING_PROGRAM, "paid")
        self._tag_file(huber, small, "import a tag file, rows")

        large = options["large"]
        if not large:
            return
        self.stdout.write(f"building an import of {large:,} orders ({training:,} training) …")
        start = time.perf_counter()
        big = import_from_frame(
            synthetic_frame(large, training=training, seed=2, prefix="BIG"), project=project
        )
        self._settle()
        self.stdout.write(f"  built in {time.perf_counter() - start:.0f} s")
        self.results.append(f"{connection.vendor}, {OrderRow.objects.count():,} orders stored:")
        self._pages(client, big, "training queue, untagged", TRAINING_PROGRAM, queue.UNTAGGED)
        self._pages(client, big, f"all {large:,} orders, any tag", None, queue.ALL_TAGS)
        self._tag_filter(huber, big, "tag every training order of a filter")
        self._settle()
        self._pages(client, big, "training queue, tagged paid", TRAINING_PROGRAM, "paid")
        self._tag_file(huber, big, "import a tag file, rows")

    def _report(self):
        self.stdout.write("")
        self.stdout.write(
            "bench_evidence summary (targets: page < 100 ms, tag 28,000 < 2 s, tag file < 3 s)"
        )
        for line in self.results:
            self.stdout.write(line)
