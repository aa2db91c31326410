"""Time the upload validation of the sample exports (``make bench``).

For every file (default: those ``make_sample_export`` listed in
DATA_DIR/bench/manifest.json, smallest first) ``--repeat`` fresh Python
processes each first validate a three-row file of the same kind (the
imports and first-call costs a running web worker paid long ago), then read
and validate the file ``--runs`` times exactly as an upload is validated
(``validate_file``: type sniffing, parsing, every row check, customer-key
hashing, the normalised frame), and report the wall and CPU time of each
run and the process's peak RSS
(``getrusage(RUSAGE_SELF)``, which includes the ~150 MB of an imported
Django + pandas + pyarrow); the parent also reads ``RUSAGE_CHILDREN`` after
each child as a cross-check. The table shows the median of all runs, the
median first run of a fresh process (page faults of a new heap included)
and the highest peak.

Targets on the 2-core machine: the 28,000-row XLSX under 0.7 s; the
1,000,000-row CSV under 8 s and 1.5 GB. A benchmark, never a test.
"""

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

TARGETS = {
    # rows: (seconds, peak MB)
    28_000: (0.7, None),
    1_000_000: (8.0, 1536),
}


class Command(BaseCommand):
    help = "Time validation of the sample exports (rows/s, wall time, peak memory)."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", help="files (default: var/bench manifest)")
        parser.add_argument("--dir", default=None, help="folder of the manifest (DATA_DIR/bench)")
        parser.add_argument("--repeat", type=int, default=2, help="fresh processes per file")
        parser.add_argument("--runs", type=int, default=3, help="validations per process")
        parser.add_argument("--child", action="store_true", help=argparse_hidden())
        parser.add_argument("--json", action="store_true", help="print one JSON line per file")

    def handle(self, *args, **options):
        if options["child"]:
            return self.child(options["paths"][0], runs=max(options["runs"], 1))
        paths = [Path(p) for p in options["paths"]] or self.manifest_files(options["dir"])
        if not paths:
            raise CommandError("no files: run `manage.py make_sample_export` first")
        rows_out = []
        for path in paths:
            runs = [self.run_child(path, options["runs"]) for _ in range(max(options["repeat"], 1))]
            walls = [w for r in runs for w in r["walls"]]
            cpus = [c for r in runs for c in r["cpus"]]
            wall = statistics.median(walls)
            summary = {
                "file": path.name,
                "rows": runs[0]["rows"],
                "size_mb": round(path.stat().st_size / 1e6, 1),
                "wall_s": round(wall, 3),
                "first_run_s": round(statistics.median(r["walls"][0] for r in runs), 3),
                "cpu_s": round(statistics.median(cpus), 3),
                "rows_per_s": int(runs[0]["rows"] / wall) if wall else 0,
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "baseline_rss_mb": runs[0]["baseline_rss_mb"],
                "children_peak_mb": max(r["children_peak_mb"] for r in runs),
                "status": runs[0]["status"],
                "row_errors": runs[0]["row_errors"],
                "runs": [round(w, 3) for w in walls],
            }
            summary["verdict"] = verdict(summary)
            rows_out.append(summary)
            if options["json"]:
                self.stdout.write(json.dumps(summary))
        if not options["json"]:
            self.print_table(rows_out)

    def manifest_files(self, folder) -> list[Path]:
        folder = Path(folder or settings.DATA_DIR / "bench")
        manifest = folder / "manifest.json"
        if not manifest.exists():
            return []
        files = json.loads(manifest.read_text()).get("files", {})
        paths = [Path(f["path"]) for f in files.values() if Path(f["path"]).exists()]
        return sorted(paths, key=lambda p: p.stat().st_size)

    def run_child(self, path: Path, runs: int) -> dict:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        completed = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [
                sys.executable,
                str(Path(settings.BASE_DIR) / "manage.py"),
                "bench_import",
                "--child",
                "--runs",
                str(runs),
                str(path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise CommandError(f"{path.name}: {completed.stderr.strip()[-2000:]}")
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        # The largest child so far (Linux reports kB); equal to this child's
        # peak whenever it is the largest yet.
        result["children_peak_mb"] = round(max(before, after) / 1024)
        return result

    def child(self, path: str, *, runs: int) -> None:
        import gc

        from reconciliation.validation import validate_file

        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        warm_up = self.warm_up(Path(path).suffix)
        walls, cpus = [], []
        for _ in range(runs):
            cpu = time.process_time()
            started = time.perf_counter()
            result = validate_file(Path(path))
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
            rows, status, errors = result.row_count, result.schema_status, result.row_error_count
            del result
            gc.collect()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.stdout.write(
            json.dumps(
                {
                    "rows": rows,
                    "walls": walls,
                    "cpus": cpus,
                    "status": status,
                    "row_errors": errors,
                    "peak_rss_mb": round(peak / 1024),
                    "baseline_rss_mb": round(baseline / 1024),
                    "warm_up": warm_up,
                }
            )
        )

    def warm_up(self, suffix: str) -> float:
        """Validate a three-row file of the same kind first, as a running web
        worker has long done: the first call pays for lazy imports and
        Arrow's kernel registry, which is no part of validating a file.
        Returns that first call's time (printed with --json)."""
        import tempfile

        from reconciliation.management.commands.make_sample_export import (
            make_orders,
            write_csv,
            write_xlsx,
        )
        from reconciliation.validation import validate_file

        with tempfile.TemporaryDirectory() as folder:
            small = Path(folder) / f"warm{suffix or '.csv'}"
            frame = make_orders(3, seed=1, training_share=0.5, raw_key_share=0.5, bad_rows=0)
            if small.suffix == ".xlsx":
                write_xlsx(frame, small)
            else:
                write_csv(frame, small, bom=False)
            started = time.perf_counter()
            validate_file(small)
            return round(time.perf_counter() - started, 3)

    def print_table(self, rows: list[dict]) -> None:
        self.stdout.write(
            "Upload validation (read + every check + normalised frame): median wall and CPU "
            "time of all runs, the first run of a fresh process, its peak RSS:"
        )
        header = (
            f"{'file':<22} {'rows':>10} {'MB':>6} {'wall s':>8} {'1st run':>8} {'cpu s':>7} "
            f"{'rows/s':>10} {'peak RSS MB':>11} {'(import base)':>13}  {'result':<13} target"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for r in rows:
            self.stdout.write(
                f"{r['file']:<22} {r['rows']:>10,} {r['size_mb']:>6} {r['wall_s']:>8.3f} "
                f"{r['first_run_s']:>8.3f} {r['cpu_s']:>7.3f} {r['rows_per_s']:>10,} "
                f"{r['peak_rss_mb']:>11,} "
                f"{r['baseline_rss_mb']:>13,}  {r['status']:<13} {r['verdict']}"
            )


def verdict(summary: dict) -> str:
    target = TARGETS.get(summary["rows"])
    if target is None:
        return ""
    seconds, megabytes = target
    ok = summary["wall_s"] < seconds and (megabytes is None or summary["peak_rss_mb"] < megabytes)
    text = f"< {seconds} s" + (f", < {megabytes / 1024:.1f} GB" if megabytes else "")
    return f"{text}: {'met' if ok else 'MISSED'}"


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS
