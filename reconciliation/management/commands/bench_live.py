"""Benchmark of the live dashboard, printed for `make bench`.

In a throwaway database (a separate SQLite file, or `<name>_bench_live` on
PostgreSQL; dropped afterwards unless --keep): --orders orders (default
1,000,000; 10 streams, a third of the buyers buying again) go through the
app's own upload, validation and import. Then, signed in as Louis, through
the whole Django stack: /live/, a stream page and GET
/api/kolable/live-streams (median of --repeat requests each), and the cost
the stored figures add to the book's changes — the full rewrite an import
runs and the tag-column refresh a tagging action runs.

Target: page median < 50 ms whatever the number of orders (the pages read
only the stored figures).
"""

import io
import os
import time

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from reconciliation.management.commands._bench_pages import median_ms
from reconciliation.management.commands._orders_data import import_from_frame, synthetic_frame
from reconciliation.models import BookSummary, LiveStreamFigures, Order, Project
from reconciliation.services.live import refresh_live_streams
from reconciliation.tasks import refresh_live_figures

TARGET_PAGE_MS = 50


class Command(BaseCommand):
    help = "Time /live/, a stream page and the live-streams API over a large order book."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=1_000_000)
        parser.add_argument("--repeat", type=int, default=21, help="requests per page figure")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark database")

    def handle(self, *args, **options):
        self.repeat = options["repeat"]
        self.results = []
        old_name = self._create_database()
        settings.DEBUG = False
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        # A 1,000,000-order CSV is ~150 MB: the benchmark raises the upload
        # limit the way a deployment taking such files would.
        settings.MAX_UPLOAD_MB = max(int(settings.MAX_UPLOAD_MB), options["orders"] // 5_000 + 10)
        try:
            self._run(options["orders"])
        finally:
            if not options["keep"]:
                connection.creation.destroy_test_db(old_name, verbosity=0)
        self.stdout.write("")
        self.stdout.write(f"bench_live summary (target: page median < {TARGET_PAGE_MS} ms)")
        for line in self.results:
            self.stdout.write(line)

    def _create_database(self) -> str:
        old_name = connection.settings_dict["NAME"]
        test = connection.settings_dict.setdefault("TEST", {})
        if connection.vendor == "sqlite":
            test["NAME"] = str(settings.DATA_DIR / "bench-live.sqlite3")
        else:
            test["NAME"] = f"{old_name}_bench_live"
        self.stdout.write(f"bench_live: {connection.vendor} database {test['NAME']}")
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        os.environ.setdefault("DEMO_PASSWORD", "bench-only-password")
        call_command("seed_demo", stdout=io.StringIO())
        return old_name

    def _record(self, label: str, value: float, unit: str, target: float | None = None):
        ok = "" if target is None else ("  ok" if value < target else f"  OVER {target:g} {unit}")
        self.results.append(f"  {label:<62} {value:>9.1f} {unit}{ok}")
        self.stdout.write(self.results[-1])

    def _page_ms(self, client: Client, url: str) -> float:
        return median_ms(client, url, self.repeat)

    def _refresh_s(self, project, *, orders_changed: bool) -> float:
        version = BookSummary.objects.get(pk=project.pk).version
        start = time.perf_counter()
        with transaction.atomic():
            refresh_live_streams(
                project=project, book_version=version, orders_changed=orders_changed
            )
        return time.perf_counter() - start

    def _run(self, total: int):
        project = Project.objects.get(name="Kolable")
        frame = synthetic_frame(total, training=min(28_000, total), seed=3, prefix="LIVE")
        # A third of the buyers come back: rebuys and returning buyers to count.
        buyers = max(total * 2 // 3, 1)
        frame["customer_key"] = [f"{i % buyers:064x}" for i in range(total)]
        self.stdout.write(f"building a book of {total:,} orders …")
        start = time.perf_counter()
        import_from_frame(frame, project=project)
        self.stdout.write(f"  built in {time.perf_counter() - start:.0f} s")
        # The import leaves the streams' figures to the worker (queued after
        # commit); no worker runs here, so its task runs in this process.
        start = time.perf_counter()
        refresh_live_figures(str(project.pk))
        rewrite_s = time.perf_counter() - start
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        client = Client()
        client.force_login(get_user_model().objects.get(username="louis"))
        streams = LiveStreamFigures.objects.filter(project=project).order_by("-orders")
        stream = streams.first()
        orders = Order.objects.filter(project=project).count()
        rebuys = int(np.sum([s.rebuys for s in streams]))
        self.results.append(
            f"{connection.vendor}, {orders:,} orders in the book, {streams.count()} streams, "
            f"{rebuys:,} rebuys:"
        )
        self._record("/live/, median", self._page_ms(client, reverse("live")), "ms", TARGET_PAGE_MS)
        self._record(
            f"stream page {stream.source_event}, median",
            self._page_ms(client, reverse("live-stream", args=[stream.source_event])),
            "ms",
            TARGET_PAGE_MS,
        )
        self._record(
            "GET /api/kolable/live-streams, median",
            self._page_ms(client, "/api/kolable/live-streams"),
            "ms",
            TARGET_PAGE_MS,
        )
        self._record("stored figures rewritten by the worker after the import", rewrite_s, "s")
        self._record(
            "stored figures rewritten inside an import (LIVE_FIGURES_INLINE)",
            self._refresh_s(project, orders_changed=True),
            "s",
        )
        self._record(
            "tag columns refreshed (each tagging action)",
            self._refresh_s(project, orders_changed=False),
            "s",
        )
