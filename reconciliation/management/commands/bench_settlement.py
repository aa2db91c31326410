"""Time a settlement file end to end against an order book (``make bench``).

For each database (SQLite, and PostgreSQL when reachable), a fresh Python
process with a throwaway database:

1. builds the order book: --rows generated orders uploaded and imported as
   Wade's export is (not timed);
2. writes ECPay's credit-card funding file for them (Big5, ="…" cells,
   refunds negative, a few missing / orphan / short lines; about --rows
   lines) and times Wade's upload of it: bytes kept, every line validated,
   then the settlement import as the worker runs it (lines inserted,
   matched, every order's result rebuilt, the summary stored);
3. with both stored, times the scorecard page and
   ``GET /api/kolable/reconciliation/latest`` (median of --page-runs).

Targets on the 2-core machine: 1,000,000 lines against 1,000,000 orders
under 15 s end to end; the scorecard under 50 ms median. A benchmark,
never a test.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reconciliation.management.commands._bench_pages import median_ms
from reconciliation.management.commands.bench_reconcile import (
    DEFAULT_POSTGRES,
    LATEST,
    _remove_tree,
    _settle,
)
from reconciliation.management.commands.bench_reconcile import Command as ReconcileCommand

SECONDS_TARGET = 15.0
PAGE_TARGET_MS = 50.0


class Command(BaseCommand):
    help = "Time a settlement file matched against an order book, and the scorecard after."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=1_000_000, help="orders in the book")
        parser.add_argument("--backends", default="sqlite,postgresql")
        parser.add_argument(
            "--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
        )
        parser.add_argument("--page-runs", type=int, default=30)
        parser.add_argument("--child", action="store_true", help="(internal)")

    def handle(self, *args, **options):
        if options["child"]:
            return self.child(options["rows"], options["page_runs"])
        reconcile = ReconcileCommand()
        for backend in [b.strip() for b in options["backends"].split(",") if b.strip()]:
            env = reconcile.backend_env(backend, options["postgres_url"])
            if env is None:
                self.stdout.write(f"{backend}: not reachable, skipped")
                continue
            completed = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
                [
                    sys.executable,
                    str(Path(settings.BASE_DIR) / "manage.py"),
                    "bench_settlement",
                    "--child",
                    "--rows",
                    str(options["rows"]),
                    "--page-runs",
                    str(options["page_runs"]),
                ],
                capture_output=True,
                text=True,
                check=False,
                env=env,
            )
            if completed.returncode != 0:
                raise CommandError(f"{backend}: {completed.stderr.strip()[-3000:]}")
            r = json.loads(completed.stdout.strip().splitlines()[-1])
            met = r["total_s"] < SECONDS_TARGET if r["orders"] >= 1_000_000 else None
            page_met = r["scorecard_ms"] < PAGE_TARGET_MS
            self.stdout.write(
                f"{backend:<10} settlement file {r['lines']:,} lines ({r['size_mb']:.0f} MB, "
                f"{r['layout']}) against {r['orders']:,} orders: upload+validation "
                f"{r['upload_s']:.2f} s, matching {r['import_s']:.2f} s, total "
                f"{r['total_s']:.2f} s, peak RSS {r['peak_rss_mb']:,} MB"
                + (
                    f" (< {SECONDS_TARGET:.0f} s: {'met' if met else 'MISSED'})"
                    if met is not None
                    else ""
                )
            )
            phases = ", ".join(f"{k} {v:.2f}" for k, v in r.get("phases", {}).items())
            self.stdout.write(f"{'':<10} matching phases (s): {phases}")
            self.stdout.write(
                f"{'':<10} matched {r['matched']:,}, orphan {r['orphans']:,}, duplicate "
                f"{r['duplicates']:,}, mismatched orders {r['mismatches']:,}; 實收 NT${r['collected']:,.0f}"
            )
            self.stdout.write(
                f"{'':<10} both stored: scorecard {r['scorecard_ms']:.1f} ms, /latest "
                f"{r['latest_api_ms']:.1f} ms (medians; < {PAGE_TARGET_MS:.0f} ms: "
                f"{'met' if page_met else 'MISSED'})"
            )

    def child(self, rows: int, page_runs: int) -> None:
        from django.db import connection
        from django.test.utils import setup_test_environment

        work = Path(tempfile.mkdtemp(prefix="bench-settlement-"))
        settings.DATA_DIR = work
        settings.UPLOAD_DIR = work / "uploads"
        settings.MAX_UPLOAD_MB = max(int(settings.MAX_UPLOAD_MB), rows // 3000 + 10)
        test_settings = settings.DATABASES["default"].setdefault("TEST", {})
        if connection.vendor == "sqlite":
            test_settings["NAME"] = str(work / "bench.sqlite3")
        else:
            test_settings["NAME"] = f"kolable_bench_settlement_{os.getpid()}"
        setup_test_environment()
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            result = self.measure(work, rows, page_runs)
        finally:
            connection.creation.destroy_test_db(name, verbosity=0)
            _remove_tree(work)
        self.stdout.write(json.dumps(result))

    def measure(self, work: Path, rows: int, page_runs: int) -> dict:
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        from reconciliation.management.commands._settlement_data import (
            make_settlement,
            write_ecpay,
        )
        from reconciliation.management.commands.make_sample_export import make_orders, write_csv
        from reconciliation.models import DataRequest
        from reconciliation.selectors.settlement import settlement_figures
        from reconciliation.services.imports import import_upload
        from reconciliation.services.requests import create_data_request
        from reconciliation.services.uploads import receive_upload, validate_pending_upload

        os.environ.setdefault("DEMO_PASSWORD", "bench-only-password")
        with open(os.devnull, "w") as quiet:
            call_command("seed_demo", stdout=quiet)
        users = get_user_model().objects
        louis, wade = users.get(username="louis"), users.get(username="wade")

        def send(data_request, path):
            with path.open("rb") as file:
                outcome = receive_upload(
                    data_request=data_request, uploaded_by=wade, file=file, original_name=path.name
                )
            upload = validate_pending_upload(upload_id=outcome.upload.pk)
            if upload.schema_status != "accepted":
                raise CommandError(f"{path.name}: {upload.file_errors or upload.row_errors[:3]}")
            return upload

        orders = make_orders(rows, seed=20260512, training_share=0.8, raw_key_share=0, bad_rows=0)
        orders_path = work / "orders.csv"
        write_csv(orders, orders_path, bom=False)
        import_upload(upload_id=send(create_data_request(requested_by=louis), orders_path).pk)
        settlement_path = work / "ecpay.csv"
        write_ecpay(make_settlement(orders, seed=7), settlement_path)
        del orders

        data_request = create_data_request(requested_by=louis, kind=DataRequest.Kind.SETTLEMENT)
        started = time.perf_counter()
        upload = send(data_request, settlement_path)
        uploaded = time.perf_counter()
        made = import_upload(upload_id=upload.pk)
        imported = time.perf_counter()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        figures = settlement_figures(data_request.project)
        _settle()
        client = Client()
        client.force_login(louis)
        return {
            "orders": rows,
            "lines": made.line_count,
            "layout": upload.layout,
            "size_mb": settlement_path.stat().st_size / 1e6,
            "upload_s": uploaded - started,
            "import_s": imported - uploaded,
            "total_s": imported - started,
            "peak_rss_mb": round(peak / 1024),
            "matched": made.matched_count,
            "orphans": made.orphan_count,
            "duplicates": made.duplicate_line_count,
            "mismatches": made.mismatch_count,
            "phases": {k: round(v, 2) for k, v in getattr(made, "timings", {}).items()},
            "collected": figures["collected"],
            "scorecard_ms": median_ms(client, "/scorecard/", page_runs),
            "latest_api_ms": median_ms(client, LATEST, page_runs),
        }
