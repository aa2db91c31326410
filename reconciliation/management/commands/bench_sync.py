"""Time the Kolable API sync end to end (``make bench``): a first sync of
--orders orders from the stub (pages of --page-size), then a daily sync of
--changes changed orders into that book.

For each database (SQLite, and PostgreSQL when reachable) a fresh Python
process creates a throwaway database (all migrations), the demo people and a
source pointing at a stub served by its own process (``kolable_api_stub``, so
the stub's JSON encoding does not share this process's interpreter lock);
then times each run as the django-q2 worker does it (``execute_run``): pull
every page into the NDJSON file, keep and validate it as an upload, import
it into the book as incremental, move the cursor and write the digests.

Targets on the 2-core machine: 1,000,000 orders under 30 s, the daily
20,000 under 3 s. A benchmark, never a test.
"""

import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reconciliation.management.commands.bench_reconcile import DEFAULT_POSTGRES, _remove_tree

TARGETS = {"first": 30.0, "daily": 3.0}
STUB_TOKEN = "bench-token"  # noqa: S105 - the throwaway stub's token


class Command(BaseCommand):
    help = "Time a first sync of --orders orders and a daily sync of --changes changed orders."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=1_000_000)
        parser.add_argument("--changes", type=int, default=20_000)
        parser.add_argument("--page-size", type=int, default=1000)
        parser.add_argument("--port", type=int, default=18138)
        parser.add_argument("--backends", default="sqlite,postgresql")
        parser.add_argument(
            "--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
        )
        parser.add_argument("--child", action="store_true", help="(internal)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["child"]:
            return self.child(options)
        from reconciliation.management.commands.bench_reconcile import Command as Reconcile

        backend_env = Reconcile().backend_env
        results = []
        for backend in [b.strip() for b in options["backends"].split(",") if b.strip()]:
            env = backend_env(backend, options["postgres_url"])
            if env is None:
                self.stdout.write(f"{backend}: not reachable, skipped")
                continue
            result = self.run_child(options, env)
            result["backend"] = backend
            results.append(result)
            if options["json"]:
                self.stdout.write(json.dumps(result))
        if not options["json"]:
            self.print_table(results)

    def run_child(self, options, env) -> dict:
        completed = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [
                sys.executable,
                str(Path(settings.BASE_DIR) / "manage.py"),
                "bench_sync",
                "--child",
                f"--orders={options['orders']}",
                f"--changes={options['changes']}",
                f"--page-size={options['page_size']}",
                f"--port={options['port']}",
            ],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if completed.returncode != 0:
            raise CommandError(completed.stderr.strip()[-3000:])
        return json.loads(completed.stdout.strip().splitlines()[-1])

    def print_table(self, rows) -> None:
        self.stdout.write(
            "Kolable API sync end to end (pull → NDJSON upload + validation → import):"
        )
        for r in rows:
            for name in ("first", "daily"):
                run = r[name]
                verdict = "ok" if run["total_s"] <= TARGETS[name] else f"over {TARGETS[name]:g} s"
                phases = ", ".join(f"{k} {v:.2f}" for k, v in run["phases"].items())
                self.stdout.write(
                    f"{r['backend']:<10} {name:<6} {run['rows']:>10,} records in {run['pages']:>5,} "
                    f"pages: {run['total_s']:6.2f} s (new {run['new_orders']:,}, changed "
                    f"{run['changed_orders']:,}) [{phases}]  target {TARGETS[name]:g} s: {verdict}"
                )
            self.stdout.write(f"{'':<10} peak RSS {r['peak_rss_mb']:,} MB")

    # --- child ----------------------------------------------------------------

    def child(self, options) -> None:
        from django.db import connection

        work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
        settings.DATA_DIR = work
        settings.UPLOAD_DIR = work / "uploads"
        settings.SYNC_ALLOWED_HOSTS = ["127.0.0.1"]
        settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
        test_settings = settings.DATABASES["default"].setdefault("TEST", {})
        if connection.vendor == "sqlite":
            test_settings["NAME"] = str(work / "bench.sqlite3")
        else:
            test_settings["NAME"] = f"kolable_bench_sync_{os.getpid()}"
        from django.test.utils import setup_test_environment

        setup_test_environment()
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        stub = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            [
                sys.executable,
                str(Path(settings.BASE_DIR) / "manage.py"),
                "kolable_api_stub",
                f"--port={options['port']}",
                f"--orders={options['orders']}",
                f"--token={STUB_TOKEN}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(options["port"])
            result = self.measure(options)
        finally:
            stub.terminate()
            stub.wait(timeout=10)
            connection.creation.destroy_test_db(name, verbosity=0)
            _remove_tree(work)
        self.stdout.write(json.dumps(result))

    def measure(self, options) -> dict:
        import http.client

        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from reconciliation.models import Project
        from reconciliation.services.sources import create_source
        from reconciliation.services.sync import execute_run, request_sync

        os.environ.setdefault("DEMO_PASSWORD", "bench-only-password")
        with open(os.devnull, "w") as quiet:
            call_command("seed_demo", stdout=quiet)
        source = create_source(
            project=Project.objects.get(name="Kolable"),
            created_by=get_user_model().objects.get(username="louis"),
            kind="kolable_api",
            base_url=f"http://127.0.0.1:{options['port']}",
            token=STUB_TOKEN,
            schedule_time="06:00",
            page_size=options["page_size"],
        )

        def timed_run():
            run, _created = request_sync(source=source)
            started = time.perf_counter()
            run = execute_run(run_id=run.pk)
            total = time.perf_counter() - started
            if run.status != "succeeded":
                raise CommandError(f"run failed: {run.error_code} {run.error}")
            return {
                "total_s": round(total, 3),
                "pages": run.pages,
                "rows": run.rows,
                "new_orders": run.new_orders,
                "changed_orders": run.changed_orders,
                "phases": getattr(run, "timings", {}),
            }

        first = timed_run()
        connection = http.client.HTTPConnection("127.0.0.1", options["port"], timeout=60)
        connection.request(
            "POST",
            f"/_stub/advance?changes={options['changes']}",
            headers={"Authorization": f"Bearer {STUB_TOKEN}"},
        )
        connection.getresponse().read()
        connection.close()
        daily = timed_run()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"first": first, "daily": daily, "peak_rss_mb": round(peak / 1024)}


def _wait_for_port(port: int, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise CommandError(f"the stub did not listen on port {port}")
