"""Realistic Kolable order/payment exports for benchmarks and demos.

Writes, by default into DATA_DIR/bench (var/bench/):

* ``orders-28000.xlsx`` — 28,000 rows, most of them the NT$28,000 training
  programme (``TRAIN-28000``) mixed with other programmes; two title rows
  above a Chinese header row, real date cells, as Taiwanese Excel saves it.
* ``orders-200000.csv`` — UTF-8 with BOM (Excel's "CSV UTF-8"), English headers.
* ``orders-1000000.csv`` — plain UTF-8, English headers.

Every file passes the schema (unless ``--bad-rows``): paid / pending /
refunded orders, refunded-then-rebought training orders, a few re-exported
duplicate order_ids, hashed customer keys with a small share of raw e-mail
addresses (which the validator hashes), discount codes and live-stream
sources. The same ``--seed`` gives the same rows and, for CSV and XLSX alike,
the same bytes, so sha256-based duplicate detection can be benchmarked too.

A ``manifest.json`` beside the files records the options and sha256 of each;
files whose options did not change are not written again (``--force``
rewrites). ``bench_import`` reads the manifest to know what to time.

Options other engineers may want for their own benchmarks:

    --out DIR              where to write (default DATA_DIR/bench)
    --seed N               deterministic seed (default 20260512)
    --xlsx-rows N          rows of the XLSX (default 28000; 0 = none)
    --csv-rows N[,N…]      one CSV per size (default 200000,1000000; "" = none)
    --training-share F     share of TRAIN-28000 rows (default 0.8)
    --raw-key-share F      share of raw (unhashed) customer keys (default 0.01)
    --bad-rows N           rows per file broken on purpose (bad date, negative
                           amount, unknown status, a test card number) to time
                           the error path (default 0)
    --settlement L[,L…]    settlement files for the XLSX's orders, one per
                           layout (default ecpay,stripe,newebpay,canonical;
                           "" = none): settlement-<layout>-<rows>.csv
    --force                rewrite even when the manifest says up to date
"""

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reconciliation import schema

PERIOD_START = np.datetime64("2026-05-12T00:00:00")
PERIOD_SECONDS = 10 * 86400
TRAINING = ("TRAIN-28000", 28000)
OTHER_PROGRAMMES = (
    ("LIVE-COACH-3600", 3600),
    ("VIP-12000", 12000),
    ("WORKSHOP-6800", 6800),
    ("BOOK-980", 980),
)
DISCOUNTS = (("", 0), ("LIVE512", 2000), ("EARLYBIRD", 3000), ("VIP100", 100), ("KOL28", 2800))
SOURCES = tuple(f"LIVE-05{day}" for day in range(12, 22)) + ("IG-REELS", "YT-SHOPPING", "LINE-OA")
# Bumped when the files' layout changes, so old files are rewritten.
FORMAT_VERSION = 2
NOTES = ("", "", "", "", "", "", "補登", "客服改單", "分期", "發票已開")


def _customer_keys(rng, count: int, pool: int) -> np.ndarray:
    """64-hex keys as a hashing export would write them (customers repeat)."""
    digests = np.array(
        [hashlib.sha256(f"kolable-customer-{i}".encode()).hexdigest() for i in range(pool)]
    )
    return digests[rng.integers(0, pool, count)]


def make_orders(
    rows: int, *, seed: int, training_share: float, raw_key_share: float, bad_rows: int
) -> pd.DataFrame:
    """The rows of one export, vectorised (a million rows in a few seconds)."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, PERIOD_SECONDS, rows))
    created = PERIOD_START + seconds.astype("timedelta64[s]")
    day = pd.to_datetime(created).strftime("%Y%m%d")
    order_id = "KOL-" + day + "-" + pd.Series(np.arange(1, rows + 1)).map("{:07d}".format)

    is_training = rng.random(rows) < training_share
    other = rng.integers(0, len(OTHER_PROGRAMMES), rows)
    program = np.where(is_training, TRAINING[0], np.array([p for p, _ in OTHER_PROGRAMMES])[other])
    price = np.where(is_training, TRAINING[1], np.array([a for _, a in OTHER_PROGRAMMES])[other])

    discount_index = rng.choice(len(DISCOUNTS), rows, p=[0.6, 0.15, 0.1, 0.1, 0.05])
    discount = np.array([d for d, _ in DISCOUNTS])[discount_index]
    off = np.array([o for _, o in DISCOUNTS])[discount_index]
    amount = np.maximum(price - off, 0).astype(float)

    status = rng.choice(["paid", "pending", "refunded"], rows, p=[0.8, 0.08, 0.12])
    keys = _customer_keys(rng, rows, max(rows // 3, 10))
    # Refunded-then-rebought: a later paid order by the same customer for the
    # same programme (what Huber tags as rebought).
    refunded = np.flatnonzero(status == "refunded")
    rebuy_from = refunded[rng.random(refunded.size) < 0.3]
    rebuy_to = np.minimum(rebuy_from + rng.integers(1, 500, rebuy_from.size), rows - 1)
    keep = status[rebuy_to] != "refunded"
    rebuy_from, rebuy_to = rebuy_from[keep], rebuy_to[keep]
    keys[rebuy_to] = keys[rebuy_from]
    program[rebuy_to] = program[rebuy_from]
    amount[rebuy_to] = price[rebuy_from]
    status[rebuy_to] = "paid"

    raw = rng.random(rows) < raw_key_share
    keys = keys.astype(object)
    keys[raw] = [f"buyer{i}@example.com" for i in rng.integers(0, rows, int(raw.sum()))]

    payment_ref = "PAY-" + pd.Series(rng.integers(10**9, 10**10, rows)).astype(str)
    payment_ref = payment_ref.where(status != "refunded", payment_ref + "/RF")
    source = np.array(SOURCES)[rng.integers(0, len(SOURCES), rows)]
    note = np.array(NOTES)[rng.integers(0, len(NOTES), rows)]

    frame = pd.DataFrame(
        {
            "order_id": order_id,
            "created_at": pd.to_datetime(created),
            "customer_key": keys,
            "program_id": program,
            "amount": amount,
            "payment_status": status,
            "payment_ref": payment_ref,
            "discount_code": discount,
            "source_event": source,
            "owner_note": note,
        }
    )
    # Re-exported lines: a few order_ids appear twice (the import calls them
    # duplicates; the validator only counts them).
    dupes = rng.choice(rows, size=max(rows // 500, 1), replace=False)
    targets = np.minimum(dupes + 1, rows - 1)
    frame.loc[targets, "order_id"] = frame.loc[dupes, "order_id"].to_numpy()
    if bad_rows:
        frame = frame.astype({"created_at": object, "amount": object})
        broken = rng.choice(rows, size=min(bad_rows, rows), replace=False)
        kinds = np.arange(broken.size) % 4
        frame.loc[broken[kinds == 0], "created_at"] = "2026/13/45"
        frame.loc[broken[kinds == 1], "amount"] = -28000
        frame.loc[broken[kinds == 2], "payment_status"] = "shipped"
        frame.loc[broken[kinds == 3], "payment_ref"] = "4111 1111 1111 1111"
    return frame


def write_csv(frame: pd.DataFrame, path: Path, *, bom: bool) -> None:
    out = frame.copy()
    if pd.api.types.is_datetime64_any_dtype(out["created_at"]):
        out["created_at"] = out["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    if pd.api.types.is_float_dtype(out["amount"]):
        out["amount"] = out["amount"].map("{:.0f}".format)
    text = out.to_csv(index=False, lineterminator="\r\n")
    path.write_bytes((("\ufeff" if bom else "") + text).encode("utf-8"))


def write_xlsx(frame: pd.DataFrame, path: Path) -> None:
    """Title rows, then the Chinese header row, then typed cells (real dates
    and numbers). XlsxWriter stores text in a shared-strings table as Excel
    itself does (openpyxl writes inline strings, which no Excel-saved file
    has); its fixed document dates keep the bytes reproducible."""
    try:
        import xlsxwriter
    except ImportError as exc:  # a dev dependency: benchmarks only
        raise CommandError("XlsxWriter is needed: pip install -e '.[dev]'") from exc

    workbook = xlsxwriter.Workbook(
        str(path), {"in_memory": True, "default_date_format": "yyyy-mm-dd hh:mm:ss"}
    )
    workbook.set_properties({"created": datetime(2026, 5, 22), "author": "Wade"})
    sheet = workbook.add_worksheet("訂單付款")
    sheet.write_row(0, 0, ["Kolable 訂單付款匯出"])
    sheet.write_row(1, 0, ["期間 2026-05-12 ~ 2026-05-21", "", "匯出者 Wade"])
    sheet.write_row(2, 0, [schema.BY_NAME[name].label_zh for name in schema.COLUMN_NAMES])
    columns = [frame[name].tolist() for name in schema.COLUMN_NAMES]
    for row, values in enumerate(zip(*columns, strict=True), start=3):
        for col, value in enumerate(values):
            if isinstance(value, pd.Timestamp):
                sheet.write_datetime(row, col, value.to_pydatetime())
            elif isinstance(value, str):
                sheet.write_string(row, col, value)
            else:
                sheet.write(row, col, value)
    workbook.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _settlement_entry(path: Path, lines: pd.DataFrame, layout: str) -> dict:
    return {
        "params": {"layout": layout},
        "path": str(path),
        "size": path.stat().st_size,
        "sha256": _sha256(path),
        "lines": len(lines),
    }


class Command(BaseCommand):
    help = (
        "Write realistic order/payment exports (28,000-row XLSX, 200,000- and 1,000,000-row "
        "CSV by default) into DATA_DIR/bench for `bench_import` and the other benchmarks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", default=None, help="folder (default DATA_DIR/bench)")
        parser.add_argument("--seed", type=int, default=20260512)
        parser.add_argument("--xlsx-rows", type=int, default=28000)
        parser.add_argument("--csv-rows", default="200000,1000000", help="comma-separated sizes")
        parser.add_argument("--training-share", type=float, default=0.8)
        parser.add_argument("--raw-key-share", type=float, default=0.01)
        parser.add_argument("--bad-rows", type=int, default=0)
        parser.add_argument("--settlement", default="ecpay,stripe,newebpay,canonical")
        parser.add_argument("--force", action="store_true")

    def handle(self, *args, **options):
        out = Path(options["out"] or settings.DATA_DIR / "bench")
        out.mkdir(parents=True, exist_ok=True)
        try:
            csv_sizes = [int(s) for s in options["csv_rows"].split(",") if s.strip()]
        except ValueError as exc:
            raise CommandError(f"--csv-rows: {exc}") from exc
        plan = []
        if options["xlsx_rows"] > 0:
            plan.append(("xlsx", options["xlsx_rows"]))
        plan += [("csv", rows) for rows in csv_sizes if rows > 0]

        manifest_path = out / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        common = {
            "seed": options["seed"],
            "training_share": options["training_share"],
            "raw_key_share": options["raw_key_share"],
            "bad_rows": options["bad_rows"],
        }
        files = {}
        # Kept apart: the benchmarks read "files" as order exports.
        settlement = {}
        for kind, rows in plan:
            suffix = "-bad" if options["bad_rows"] else ""
            name = f"orders-{rows}{suffix}.{kind}"
            path = out / name
            params = {"kind": kind, "rows": rows, "format": FORMAT_VERSION, **common}
            known = manifest.get("files", {}).get(name)
            if (
                not options["force"]
                and path.exists()
                and known
                and known.get("params") == params
                and known.get("size") == path.stat().st_size
            ):
                files[name] = known
                self.stdout.write(f"{name}: up to date ({rows:,} rows)")
                continue
            started = time.perf_counter()
            frame = make_orders(
                rows,
                seed=options["seed"] + rows,
                training_share=options["training_share"],
                raw_key_share=options["raw_key_share"],
                bad_rows=options["bad_rows"],
            )
            if kind == "xlsx":
                write_xlsx(frame, path)
                settlement.update(self.settlement_files(frame, out, rows, options))
            else:
                write_csv(frame, path, bom=rows < 1_000_000)
            files[name] = {
                "params": params,
                "path": str(path),
                "size": path.stat().st_size,
                "sha256": _sha256(path),
                "training_rows": int((frame["program_id"] == TRAINING[0]).sum()),
            }
            self.stdout.write(
                f"{name}: {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB "
                f"in {time.perf_counter() - started:.1f} s"
            )
        manifest = {
            "files": {**manifest.get("files", {}), **files},
            "settlement_files": {**manifest.get("settlement_files", {}), **settlement},
        }
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))

    def settlement_files(self, frame: pd.DataFrame, out: Path, rows: int, options) -> dict:
        """The payment providers' settlement files for these orders."""
        from reconciliation.management.commands._settlement_data import WRITERS, make_settlement

        layouts = [name.strip() for name in options["settlement"].split(",") if name.strip()]
        unknown = set(layouts) - set(WRITERS)
        if unknown:
            raise CommandError(f"--settlement: unknown layouts {sorted(unknown)}")
        if not layouts:
            return {}
        lines = make_settlement(frame, seed=options["seed"])
        files = {}
        for layout in layouts:
            path = out / f"settlement-{layout}-{rows}.csv"
            WRITERS[layout](lines, path)
            files[path.name] = _settlement_entry(path, lines, layout)
            self.stdout.write(f"{path.name}: {len(lines):,} settlement lines")
        return files
