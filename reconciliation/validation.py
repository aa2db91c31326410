"""A table of strings → file- and row-level errors, warnings and the
normalised frame.

Every check runs vectorised over whole columns (Arrow / pandas), and every
error is collected in one pass: a file with a missing column still gets its
row errors, a row with three problems gets three errors. Python loops only
touch the rows already known to be bad (to mask their values), the distinct
values of a low-cardinality column (payment_status) and the few rows the
card/token prefilter lets through.

Error codes are stable snake_case strings; each has a zh-Hant message and a
"how to fix" hint (translatable, English from the .po file). Values shown in
an error are masked when the row holds a card number or payment token, and a
customer_key is never shown at all.

The accepted frame follows the contract with the import (see
``services.frames.load_accepted_frame``).
"""

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reconciliation import privacy, schema
from reconciliation.error_codes import (
    WARNINGS,
    describe,
    file_error,
    format_message,
    message_params,
)
from reconciliation.readers import FileProblem, RawTable, read_upload
from reconciliation.values import (
    as_mask,
    canonical_statuses,
    duplicate_mask,
    parse_amounts,
    parse_datetimes,
    too_large,
)

TAIPEI = "Asia/Taipei"
SHOWN_VALUE_CHARS = 60
SAMPLE_ROWS = 20
# Database column sizes the import writes into (OrderRow).
MAX_LENGTHS = {
    "order_id": 100,
    "program_id": 100,
    "payment_ref": 200,
    "discount_code": 100,
    "source_event": 200,
    "owner_note": 500,
}
TEXT_COLUMNS = (
    "order_id",
    "program_id",
    "payment_ref",
    "discount_code",
    "source_event",
    "owner_note",
)


@dataclass
class ValidationResult:
    kind: str = ""
    # The settlement layout recognised from the headers (ecpay, stripe,
    # newebpay, canonical); blank for an order export.
    layout: str = ""
    encoding: str = ""
    delimiter: str = ""
    sheet: str = ""
    header_row: int = 0
    headers: list = field(default_factory=list)
    row_count: int = 0
    missing_fields: list = field(default_factory=list)
    file_errors: list = field(default_factory=list)
    # One row per error: row (Excel row), column, code, value (safe to show).
    row_errors: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {"row": pd.Series(dtype="int64"), "column": [], "code": [], "value": []}
        )
    )
    warnings: list = field(default_factory=list)
    frame: pd.DataFrame | None = None
    # Every row error counted, by code; `row_errors` holds only the first
    # ROW_ERRORS_REPORTED of them by row (a file whose every row is wrong
    # must not cost gigabytes to describe).
    row_error_totals: dict = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return (
            not self.missing_fields
            and not self.file_errors
            and self.row_errors.empty
            and not self.row_error_totals
        )

    @property
    def schema_status(self) -> str:
        return "accepted" if self.accepted else "schema_failed"

    @property
    def row_error_count(self) -> int:
        return max(sum(self.row_error_totals.values()), len(self.row_errors))

    @property
    def row_errors_truncated(self) -> bool:
        return self.row_error_count > len(self.row_errors)

    @property
    def holds_sensitive_values(self) -> bool:
        """A card number or payment token somewhere in the file."""
        return any(self.row_error_totals.get(code) for code in SENSITIVE_CODES)

    def row_error_dicts(self, limit: int | None = None) -> list[dict]:
        """[{row, column, code, message, hint, value}] in row order."""
        errors = self.row_errors if limit is None else self.row_errors.head(limit)
        out = []
        for row, column, code, value in errors.itertuples(index=False, name=None):
            message, hint = describe(
                code, {"column": column, "value": value, **message_params(code, value)}
            )
            out.append(
                {
                    "row": int(row),
                    "column": column,
                    "code": code,
                    "message": message,
                    "hint": hint,
                    "value": value,
                }
            )
        return out


SENSITIVE_CODES = privacy.SENSITIVE_CODES


def reported_row_errors() -> int:
    from django.conf import settings

    return int(getattr(settings, "ROW_ERRORS_REPORTED", 50_000))


# --- Entry points ---------------------------------------------------------------


def validate_file(
    path: Path, *, period: tuple[date, date] | None = None, max_rows: int | None = None
) -> ValidationResult:
    """Read and validate a kept upload. Never raises for anything in the file."""
    try:
        raw = read_upload(path, max_rows=max_rows)
    except FileProblem as problem:
        return ValidationResult(file_errors=[file_error(problem.code, **problem.params)])
    return validate_table(raw, period=period)


def validate_table(raw: RawTable, *, period: tuple[date, date] | None = None) -> ValidationResult:
    """Every check over the whole table in one pass."""
    result = ValidationResult(
        kind=raw.kind,
        encoding=raw.encoding,
        delimiter=raw.delimiter,
        sheet=raw.sheet,
        header_row=raw.header_row,
        headers=[privacy.redact(h) for h in raw.headers],
    )
    positions, extras = _map_headers(raw.headers, result)
    # Spaces and tabs around values go (TikTok puts a tab after long ids).
    cells = {
        p: pc.utf8_trim_whitespace(privacy.text_array(raw.frame[p])) for p in raw.frame.columns
    }
    cells, row_numbers = _drop_blank_rows(cells, raw.row_numbers)
    result.row_count = len(row_numbers)
    if result.row_count == 0 and not raw.ragged_rows:
        result.file_errors.append(file_error("header_only"))
    if extras:
        result.warnings.append(
            _warning("extra_columns", len(extras), columns="、".join(extras[:20]))
        )
    errors = _RowErrors(row_numbers)
    for row, fields in raw.ragged_rows:
        errors.single(row, "", "wrong_field_count", f"{fields}/{len(raw.headers)}")
    columns = {name: cells[position] for name, position in positions.items()}
    normal = {"row_number": row_numbers}
    checks = []  # (mask, column, code, values shown) — added once rows are flagged
    # Cells known to be harmless (a parsed date, a digest) are left out of the
    # card/token scan.
    harmless: dict[int, np.ndarray] = {}

    for name, values in columns.items():
        if not schema.BY_NAME[name].allow_blank:
            blank = as_mask(pc.equal(values, ""))
            code = "blank_order_id" if name == "order_id" else "blank_value"
            checks.append((blank, name, code, None))
        if name in MAX_LENGTHS:
            too_long = as_mask(pc.greater(pc.utf8_length(values), MAX_LENGTHS[name]))
            checks.append((too_long, name, "too_long", str(MAX_LENGTHS[name])))
    if "created_at" in columns:
        stamps, bad = parse_datetimes(columns["created_at"])
        checks.append((bad, "created_at", "bad_date", columns["created_at"]))
        normal["created_at"] = stamps
        harmless[positions["created_at"]] = stamps.notna().to_numpy()
        if period is not None:
            _period_warning(stamps, period, row_numbers, result)
    if "amount" in columns:
        amounts, bad, negative = parse_amounts(columns["amount"])
        checks.append((bad, "amount", "bad_amount", columns["amount"]))
        checks.append((negative, "amount", "negative_amount", columns["amount"]))
        checks.append((too_large(amounts), "amount", "amount_too_large", columns["amount"]))
        normal["amount"] = amounts
    if "payment_status" in columns:
        statuses, unknown = canonical_statuses(columns["payment_status"])
        checks.append(
            (unknown, "payment_status", "unknown_payment_status", columns["payment_status"])
        )
        normal["payment_status"] = statuses
    if "customer_key" in columns:
        keys, raw_keys, digests = privacy.hash_customer_keys(columns["customer_key"])
        if raw_keys.any():
            result.warnings.append(_warning("customer_key_hashed", int(raw_keys.sum())))
        normal["customer_key"] = keys
        harmless[positions["customer_key"]] = digests
    if "order_id" in columns:
        duplicated = duplicate_mask(columns["order_id"])
        if duplicated.any():
            result.warnings.append(
                _warning(
                    "duplicate_order_id",
                    int(duplicated.sum()),
                    rows=row_numbers[duplicated][:SAMPLE_ROWS].tolist(),
                )
            )
    for name in TEXT_COLUMNS:
        if name in columns:
            normal[name] = columns[name]

    report_row_errors(
        result, _column_names(raw.headers, positions), cells, checks, harmless, errors
    )
    if not result.missing_fields and not result.file_errors:
        result.frame = _normalised_frame(normal)
    return result


def report_row_errors(result, names: dict, cells: dict, checks: list, harmless: dict, errors):
    """The checks every file kind shares, then the row errors: a NUL in any
    cell, card numbers and payment tokens; totals by code for every row, and
    the first ROW_ERRORS_REPORTED errors by row described."""
    for position, values in cells.items():
        # No database text column takes a NUL; in any column it is the row's error.
        has_nul = as_mask(pc.match_substring(values, "\x00"))
        checks.append((has_nul, names.get(position, f"#{position + 1}"), "nul_character", None))
    errors.flagged = _scan_sensitive(cells, names, harmless, errors)
    totals: dict[str, int] = {}
    for mask, _column, code, _values in checks:
        count = int(mask.sum())
        if count:
            totals[code] = totals.get(code, 0) + count
    for _row, _column, code, _value in errors.singles:
        totals[code] = totals.get(code, 0) + 1
    result.row_error_totals = totals
    limit = reported_row_errors()
    cutoff = len(errors.row_numbers)
    if sum(totals.values()) > limit and cutoff:
        per_row = np.zeros(cutoff, dtype=np.int64)
        for mask, *_rest in checks:
            per_row += mask
        for index in errors.single_indexes:
            per_row[index] += 1
        cutoff = max(int(np.searchsorted(np.cumsum(per_row), limit, side="right")), 1)
        errors.keep_rows_before(cutoff)
    for mask, column, code, values in checks:
        if cutoff < len(mask):
            mask = mask.copy()
            mask[cutoff:] = False
        errors.add(mask, column, code, values)
    result.row_errors = errors.frame().head(limit)


# --- Headers and rows -------------------------------------------------------------


def _map_headers(headers: list[str], result: ValidationResult) -> tuple[dict[str, int], list]:
    """{schema column: position} from the header cells; missing and doubled
    columns become file errors, unknown ones are listed and ignored."""
    found: dict[str, list[int]] = {}
    extras = []
    for position, header in enumerate(headers):
        if not str(header).strip():
            continue
        name = schema.canonical_column(header)
        if name is None and schema.is_ignored_api_field(header):
            continue
        if name is None:
            extras.append(privacy.redact(str(header).strip())[:SHOWN_VALUE_CHARS])
        else:
            found.setdefault(name, []).append(position)
    for name in schema.REQUIRED_COLUMNS:
        if name not in found:
            result.missing_fields.append(name)
            result.file_errors.append(file_error("missing_column", name))
    for name, places in found.items():
        if len(places) > 1:
            shown = "、".join(
                privacy.redact(headers[p].strip())[:SHOWN_VALUE_CHARS] for p in places
            )
            result.file_errors.append(
                file_error("duplicate_column", name, count=len(places), headers=shown)
            )
    return {name: places[0] for name, places in found.items()}, extras


def _drop_blank_rows(cells: dict, row_numbers: np.ndarray):
    """Rows with nothing in any cell (Excel's trailing formatted rows, blank
    lines) are not data."""
    if not cells or len(row_numbers) == 0:
        return {p: a.slice(0, 0) for p, a in cells.items()}, row_numbers[:0]
    blank = None
    for values in cells.values():
        empty = pc.equal(values, "")
        blank = empty if blank is None else pc.and_(blank, empty)
    keep = ~as_mask(blank)
    if keep.all():
        return cells, row_numbers
    mask = pa.array(keep)
    return {p: pc.filter(a, mask) for p, a in cells.items()}, row_numbers[keep]


def _column_names(headers: list[str], positions: dict[str, int]) -> dict[int, str]:
    """Errors name a schema column by its name, an extra one by its header."""
    by_position = {position: name for name, position in positions.items()}
    return {
        position: by_position.get(position)
        or privacy.redact(str(header).strip())[:SHOWN_VALUE_CHARS]
        or f"#{position + 1}"
        for position, header in enumerate(headers)
    }


def _scan_sensitive(cells: dict, names: dict, harmless: dict, errors: "_RowErrors") -> np.ndarray:
    """Card numbers and payment tokens in any cell of any column (extra
    columns included). Returns the mask of rows that hold one."""
    n = len(errors.row_numbers)
    flagged = np.zeros(n, dtype=bool)
    if n == 0 or not cells:
        return flagged
    scanned = {}
    for position, values in cells.items():
        skip = harmless.get(position)
        scanned[position] = values if skip is None else pc.if_else(pa.array(skip), "", values)
    candidates = privacy.candidate_rows(list(scanned.values()))
    if candidates.size == 0:
        return flagged
    taken = pa.array(candidates)
    texts = {p: pc.take(a, taken).to_pylist() for p, a in scanned.items()}
    for offset, index in enumerate(candidates.tolist()):
        for position, values in texts.items():
            for code, masked in privacy.find_sensitive(values[offset]):
                errors.single_at(index, names.get(position, f"#{position + 1}"), code, masked)
                flagged[index] = True
    return flagged


class _RowErrors:
    """Collects error blocks (one per check) and builds the error frame."""

    def __init__(self, row_numbers: np.ndarray):
        self.row_numbers = row_numbers
        self.blocks: list[pd.DataFrame] = []
        self.singles: list[tuple[int, str, str, str]] = []
        # The frame position of each single that belongs to a data row.
        self.single_indexes: list[int] = []
        self.flagged = np.zeros(len(row_numbers), dtype=bool)

    def keep_rows_before(self, cutoff: int) -> None:
        """Drop the single errors of data rows at or after position `cutoff`
        (and of ragged records below that row)."""
        if cutoff >= len(self.row_numbers):
            return
        last_row = int(self.row_numbers[cutoff - 1]) if cutoff else 0
        self.singles = [s for s in self.singles if s[0] <= last_row]

    def add(self, mask: np.ndarray, column: str, code: str, values) -> None:
        """`values`: the column (shown, masked where the row is flagged), a
        constant string, or None (nothing to show)."""
        if not mask.any():
            return
        where = np.flatnonzero(mask)
        if values is None:
            shown = np.full(where.size, "", dtype=object)
        elif isinstance(values, str):
            shown = np.full(where.size, values, dtype=object)
        else:
            shown = pc.take(privacy.text_array(values), pa.array(where)).to_pylist()
            sensitive = self.flagged[where]
            shown = np.array(
                [
                    _shown(value, redact=bool(is_sensitive))
                    for value, is_sensitive in zip(shown, sensitive, strict=True)
                ],
                dtype=object,
            )
        self.blocks.append(
            pd.DataFrame(
                {
                    "row": self.row_numbers[where],
                    "column": column,
                    "code": code,
                    "value": shown,
                }
            )
        )

    def single(self, row: int, column: str, code: str, value: str) -> None:
        self.singles.append((int(row), column, code, value))

    def single_at(self, index: int, column: str, code: str, value: str) -> None:
        self.single_indexes.append(index)
        self.single(self.row_numbers[index], column, code, value)

    def frame(self) -> pd.DataFrame:
        blocks = list(self.blocks)
        if self.singles:
            blocks.append(pd.DataFrame(self.singles, columns=["row", "column", "code", "value"]))
        if not blocks:
            return ValidationResult().row_errors
        errors = pd.concat(blocks, ignore_index=True)
        order = {name: i for i, name in enumerate(schema.COLUMN_NAMES)}
        errors["_column_order"] = errors["column"].map(order).fillna(len(order))
        errors = errors.sort_values(["row", "_column_order"], kind="stable")
        return errors.drop(columns="_column_order").reset_index(drop=True).astype({"row": "int64"})


def _shown(value, *, redact: bool) -> str:
    text = ("" if value is None else str(value)).replace("\x00", privacy.NUL_SHOWN)
    if redact:
        text = privacy.redact(text)
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[: SHOWN_VALUE_CHARS - 1] + "…"
    return text


def _warning(code: str, count: int, rows: list | None = None, **params) -> dict:
    return {
        "code": code,
        "count": count,
        "message": format_message(WARNINGS[code], {"count": f"{count:,}", **params}),
        "rows": rows or [],
    }


def _period_warning(stamps, period, row_numbers, result) -> None:
    start, end = period
    low = pd.Timestamp(start).tz_localize(TAIPEI).tz_convert("UTC")
    high = (pd.Timestamp(end) + pd.Timedelta(days=1)).tz_localize(TAIPEI).tz_convert("UTC")
    valid = stamps.notna().to_numpy()
    outside = valid & ((stamps < low) | (stamps >= high)).fillna(False).to_numpy()
    if outside.any():
        result.warnings.append(
            _warning(
                "outside_period",
                int(outside.sum()),
                rows=row_numbers[outside][:SAMPLE_ROWS].tolist(),
                start=f"{start:%Y-%m-%d}",
                end=f"{end:%Y-%m-%d}",
            )
        )


def _normalised_frame(normal: dict) -> pd.DataFrame:
    """The contract's columns, in its order; text stays Arrow-backed."""
    n = len(normal["row_number"])
    empty = pa.array([""] * n, pa.string())

    def text(name):
        return pd.arrays.ArrowExtensionArray(privacy.text_array(normal.get(name, empty)))

    return pd.DataFrame(
        {
            "row_number": np.asarray(normal["row_number"], dtype=np.int64),
            "order_id": text("order_id"),
            "created_at": (
                normal["created_at"].array
                if "created_at" in normal
                else pd.array([pd.NaT] * n, dtype="datetime64[ns, UTC]")
            ),
            "customer_key": text("customer_key"),
            "program_id": text("program_id"),
            "amount": np.asarray(normal.get("amount", np.zeros(n)), dtype=np.float64),
            "payment_status": text("payment_status"),
            "payment_ref": text("payment_ref"),
            "discount_code": text("discount_code"),
            "source_event": text("source_event"),
            "owner_note": text("owner_note"),
        }
    )
