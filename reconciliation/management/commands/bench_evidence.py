"""Benchmark of Huber's evidence queue (issue 6), printed for `make bench`.

In a throwaway database (a separate SQLite file, or `<name>_bench_evidence`
on PostgreSQL; dropped afterwards unless --keep):

1. 28,000 training orders stored: the queue page (median of --repeat
   requests through the whole Django stack, signed in as Huber), first page
   and a deep page (a cursor near the end); then tagging all 28,000 orders of
   a filter; then importing a 28,000-row tag file.
2. 1,000,000 orders stored (a newer import, 28,000 of them the training
   programme): the queue page first and deep, for the training programme and
   for every programme (a 1,000,000-order queue), and tagging the 28,000.

Targets (issue 6): page median < 100 ms; tag 28,000 < 2 s; 28,000-row tag
file < 3 s. Timings include the revenue recompute each tagging action runs.
"""

import csv
import io
import os
import statistics
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client

from reconciliation.management.commands._evidence_data import (
    TRAINING_PROGRAM,
    import_from_frame,
    synthetic_frame,
)
from reconciliation.models import OrderRow, Project
from reconciliation.selectors import evidence as queue
from reconciliation.services.evidence import import_tag_file, tag_orders

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
        try:
            self._run(options)
        finally:
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
        url = "/evidence/"
        for _ in range(2):  # warm: caches, template loading
            assert client.get(url, params).status_code == 200
        times = []
        for _ in range(self.repeat):
            start = time.perf_counter()
            response = client.get(url, params)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        return statistics.median(times)

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

    def _tag_filter(self, huber, reconciliation_import, label: str):
        flt = queue.parse_filter(
            {"program_id": TRAINING_PROGRAM, "tag": queue.UNTAGGED},
            reconciliation_import=reconciliation_import,
        )
        start = time.perf_counter()
        result = tag_orders(
            actor=huber,
            reconciliation_import=reconciliation_import,
            tag="paid",
            queue_filter=flt,
            evidence_ref="BANK-STATEMENT-2026-05",
        )
        elapsed = time.perf_counter() - start
        self._record(f"{label} ({result.tagged:,} orders)", elapsed, "s", TARGET_TAG_S)

    def _tag_file(self, huber, reconciliation_import, label: str):
        order_ids = list(
            OrderRow.objects.filter(
                reconciliation_import=reconciliation_import, program_id=TRAINING_PROGRAM
            )
            .order_by("id")
            .values_list("order_id", flat=True)
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["order_id", "tag", "payment_ref", "refund_ref", "evidence_ref", "note"])
        for i, order_id in enumerate(order_ids):
            if i % 20 == 0:
                writer.writerow([order_id, "refunded", "", f"RF-{i}", "", "退刷"])
            elif i % 50 == 1:
                writer.writerow([order_id, "unresolved", "", "", "", "金流查無"])
            else:
                writer.writerow([order_id, "paid", f"BANK-{i}", "", "", ""])
        data = buffer.getvalue().encode("utf-8")
        start = time.perf_counter()
        report = import_tag_file(
            actor=huber,
            reconciliation_import=reconciliation_import,
            data=data,
            original_name="tags.csv",
        )
        elapsed = time.perf_counter() - start
        assert report.ok and report.applied == len(order_ids), report.as_dict()
        self._record(f"{label} ({report.applied:,} rows)", elapsed, "s", TARGET_FILE_S)

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
        self.results.append(f"{connection.vendor}, {training:,} orders stored:")
        self._pages(client, small, "queue, untagged", TRAINING_PROGRAM, queue.UNTAGGED)
        self._tag_filter(huber, small, "tag every order of a filter")
        self._pages(client, small, "queue, tagged paid", TRAINING_PROGRAM, "paid")
        self._tag_file(huber, small, "import a tag file")

        large = options["large"]
        if not large:
            return
        self.stdout.write(f"building an import of {large:,} orders ({training:,} training) …")
        start = time.perf_counter()
        big = import_from_frame(
            synthetic_frame(large, training=training, seed=2, prefix="BIG"), project=project
        )
        self.stdout.write(f"  built in {time.perf_counter() - start:.0f} s")
        self.results.append(f"{connection.vendor}, {OrderRow.objects.count():,} orders stored:")
        self._pages(client, big, "training queue, untagged", TRAINING_PROGRAM, queue.UNTAGGED)
        self._pages(client, big, f"all {large:,} orders, any tag", None, queue.ALL_TAGS)
        self._tag_filter(huber, big, "tag every training order of a filter")
        self._pages(client, big, "training queue, tagged paid", TRAINING_PROGRAM, "paid")
        self._tag_file(huber, big, "import a tag file")

    def _report(self):
        self.stdout.write("")
        self.stdout.write(
            "bench_evidence summary (targets: page < 100 ms, tag 28,000 < 2 s, tag file < 3 s)"
        )
        for line in self.results:
            self.stdout.write(line)
