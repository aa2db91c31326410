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
``services.uploads.load_accepted_frame``).
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.utils.translation import gettext_lazy

from reconciliation import privacy, schema
from reconciliation.readers import FileProblem, RawTable, read_upload

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

# code → (message, how to fix). Messages take %(name)s parameters.
ERRORS: dict[str, tuple] = {
    # file level
    "missing_column": (
        gettext_lazy("缺少必填欄位 %(column)s（%(label)s）。"),
        gettext_lazy(
            "在標題列加上 %(column)s 欄（也可用中文「%(label)s」），或下載範本照欄位貼上。"
        ),
    ),
    "duplicate_column": (
        gettext_lazy("欄位 %(column)s 出現 %(count)s 次：%(headers)s。"),
        gettext_lazy("只保留一欄 %(column)s，刪除或改名其他重複的欄位。"),
    ),
    "empty_file": (
        gettext_lazy("檔案是空的。"),
        gettext_lazy("重新從後台匯出訂單付款資料，確認檔案有內容再上傳。"),
    ),
    "header_only": (
        gettext_lazy("只有標題列，沒有任何訂單資料。"),
        gettext_lazy("確認匯出時有選到 2026-05-12 到 2026-05-21 的訂單，再重新匯出。"),
    ),
    "unreadable_file": (
        gettext_lazy("檔案無法讀取（%(reason)s）。"),
        gettext_lazy("用 Excel 開啟後另存為 .xlsx 或「CSV UTF-8」再上傳。"),
    ),
    "unsupported_type": (
        gettext_lazy("不支援的檔案類型（%(kind)s），只收 CSV 或 XLSX。"),
        gettext_lazy("從後台匯出 CSV 或 XLSX；不要上傳 PDF、圖片或壓縮檔。"),
    ),
    "too_large": (
        gettext_lazy("檔案 %(size_mb)s MB，超過上限 %(limit_mb)s MB。"),
        gettext_lazy("把期間分成幾段分別匯出，或改存成 CSV（通常小很多）再上傳。"),
    ),
    "too_many_rows": (
        gettext_lazy("資料有 %(rows)s 列，超過上限 %(limit)s 列。"),
        gettext_lazy("把期間拆成兩個檔案分別上傳。"),
    ),
    "encrypted_xlsx": (
        gettext_lazy("這是加密或舊版（.xls）的 Excel 檔，系統無法讀取。"),
        gettext_lazy("在 Excel 移除密碼保護（檔案 → 資訊 → 保護活頁簿），另存為 .xlsx 再上傳。"),
    ),
    "zip_bomb": (
        gettext_lazy("XLSX 解壓縮後的大小異常（%(detail)s），為了安全拒收。"),
        gettext_lazy("用 Excel 開啟後另存新檔，或改存成 CSV 再上傳。"),
    ),
    "sheet_too_large": (
        gettext_lazy("工作表的範圍大得異常（%(detail)s），為了安全拒收。"),
        gettext_lazy(
            "多半是遠處有一格內容或格式（例如最後一列、最後一欄）。只複製有資料的範圍貼到新活頁簿，或改存成 CSV 再上傳。"
        ),
    ),
    # row level
    "wrong_field_count": (
        gettext_lazy("這一列有 %(actual)s 個欄位，標題列有 %(expected)s 個。"),
        gettext_lazy("多半是內容裡有未加引號的逗號；用 Excel 另存為 CSV 會自動加上引號。"),
    ),
    "blank_order_id": (
        gettext_lazy("order_id 空白。"),
        gettext_lazy("每一列都要有平台訂單編號；整列空白請直接刪除。"),
    ),
    "blank_value": (
        gettext_lazy("%(column)s 不可空白。"),
        gettext_lazy("%(help)s"),
    ),
    "too_long": (
        gettext_lazy("%(column)s 超過 %(limit)s 個字。"),
        gettext_lazy("確認這一欄沒有貼錯內容（例如整段備註貼進代碼欄）。"),
    ),
    "bad_date": (
        gettext_lazy("created_at「%(value)s」不是可辨識的日期時間。"),
        gettext_lazy(
            "請用 2026-05-12 20:15 或 2026/05/12 20:15 的格式（台北時間），Excel 的日期儲存格也可以。"
        ),
    ),
    "bad_amount": (
        gettext_lazy("amount「%(value)s」不是數字。"),
        gettext_lazy("只填數字，例如 28000；不要加幣別、文字或公式。"),
    ),
    "negative_amount": (
        gettext_lazy("amount %(value)s 是負數。"),
        gettext_lazy("退款請把 payment_status 填 refunded，amount 填原訂單金額（正數）。"),
    ),
    "unknown_payment_status": (
        gettext_lazy("payment_status「%(value)s」不是 paid / pending / refunded。"),
        gettext_lazy("改成 paid、pending 或 refunded（也可填 已付款、待付款、已退款）。"),
    ),
    "nul_character": (
        gettext_lazy("%(column)s 含有 NUL 控制字元（\\0）。"),
        gettext_lazy(
            "多半是匯出程式或複製貼上帶進的隱藏字元；刪掉那一格重新輸入，或用 Excel 開啟後另存為「CSV UTF-8」。"
        ),
    ),
    "card_number": (
        gettext_lazy("%(column)s 含有信用卡號 %(value)s。"),
        gettext_lazy(
            "刪除卡號再上傳；付款單號請填金流交易編號。系統不保存卡號，這個檔案的原始檔也不保存。"
        ),
    ),
    "payment_token": (
        gettext_lazy("%(column)s 含有付款 token %(value)s。"),
        gettext_lazy(
            "刪除付款 token，改填金流交易編號。系統不保存 token，這個檔案的原始檔也不保存。"
        ),
    ),
}

WARNINGS: dict[str, object] = {
    "customer_key_hashed": gettext_lazy(
        "%(count)s 列的 customer_key 不是雜湊值，已用 HMAC-SHA256 雜湊後才保存，原始值沒有保存。"
    ),
    "duplicate_order_id": gettext_lazy(
        "%(count)s 列的 order_id 在檔案內重複；對帳時會標為重複，不會重複計算營收。"
    ),
    "outside_period": gettext_lazy(
        "%(count)s 列的 created_at 不在請求期間 %(start)s 到 %(end)s 內。"
    ),
    "extra_columns": gettext_lazy("已忽略 %(count)s 個額外欄位：%(columns)s。"),
}

READ_REASONS = {
    "truncated": gettext_lazy("檔案不完整，可能上傳中斷"),
    "damaged": gettext_lazy("檔案已損壞"),
    "encoding": gettext_lazy("文字編碼不是 UTF-8 也不是 Big5"),
}


def describe(code: str, params: dict | None = None) -> tuple[str, str]:
    """(message, hint) of an error code in the active language."""
    message, hint = ERRORS[code]
    values = dict(params or {})
    if code == "unreadable_file":
        values["reason"] = str(READ_REASONS.get(values.get("reason"), values.get("reason", "")))
    if code == "missing_column" and "label" not in values:
        column = schema.BY_NAME.get(values.get("column"))
        values["label"] = column.label_zh if column else ""
    if code == "blank_value" and "help" not in values:
        column = schema.BY_NAME.get(values.get("column"))
        values["help"] = column.help_zh if column else ""
    return _format(message, values), _format(hint, values)


def _format(text, values: dict) -> str:
    try:
        return str(text) % values
    except (KeyError, TypeError, ValueError):
        return str(text)


def file_error(code: str, column: str = "", **params) -> dict:
    message, hint = describe(code, {"column": column, **params})
    entry = {"code": code, "message": message, "hint": hint}
    if column:
        entry["column"] = column
    return entry


@dataclass
class ValidationResult:
    kind: str = ""
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


def message_params(code: str, value: str) -> dict:
    """Parameters some messages carry inside the stored value."""
    if code == "wrong_field_count" and "/" in value:
        actual, expected = value.split("/", 1)
        return {"actual": actual, "expected": expected}
    if code == "too_long":
        return {"limit": value}
    return {}


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
            blank = _np(pc.equal(values, ""))
            code = "blank_order_id" if name == "order_id" else "blank_value"
            checks.append((blank, name, code, None))
        if name in MAX_LENGTHS:
            too_long = _np(pc.greater(pc.utf8_length(values), MAX_LENGTHS[name]))
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

    names = _column_names(raw.headers, positions)
    for position, values in cells.items():
        # No database text column takes a NUL; in any column it is the row's error.
        has_nul = _np(pc.match_substring(values, "\x00"))
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
    # Only the first ROW_ERRORS_REPORTED errors by row are described.
    limit = reported_row_errors()
    cutoff = len(row_numbers)
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
    if not result.missing_fields and not result.file_errors:
        result.frame = _normalised_frame(normal)
    return result


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
    keep = ~_np(blank)
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
        "message": _format(WARNINGS[code], {"count": f"{count:,}", **params}),
        "rows": rows or [],
    }


# --- Value parsers (vectorised) ------------------------------------------------------

_TZ_SUFFIX = r"(?:Z|[+-][0-9]{2}:?[0-9]{2})$"
_AMPM = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})\s*(上午|下午|AM|PM|am|pm)?\s*"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(上午|下午|AM|PM|am|pm)?$"
)
EXCEL_EPOCH = datetime(1899, 12, 30)
EXCEL_SERIAL_RANGE = (25569, 73051)  # 1970-01-01 .. 2100-01-01
YEAR_RANGE = (1970, 2100)
NAT = np.iinfo(np.int64).min
TAIPEI_FIXED_SINCE = pd.Timestamp("1980-01-01").value
YEAR_BOUNDS = (
    pd.Timestamp(f"{YEAR_RANGE[0]}-01-01").value,
    pd.Timestamp(f"{YEAR_RANGE[1] + 1}-01-01").value,
)


def parse_datetimes(values) -> tuple[pd.Series, np.ndarray]:
    """(UTC timestamps, mask of non-blank values that are not dates).

    Accepted: ISO 8601 (with T or a space, seconds optional, an offset or Z
    optional), the same with slashes (2026/05/12 20:15, unpadded too), the
    zh-TW Excel form "2026/5/12 下午 08:15:00", AM/PM, and Excel serial day
    numbers. Times without an offset are Asia/Taipei.

    Steps: the zero-padded "YYYY-MM-DD HH:MM[:SS]" forms (nearly every row
    of a real export) parse in Arrow and are checked field by field, since
    Arrow's strptime rolls 02-30 over into March; the rest go through
    pandas' strict ISO parser; what is left, one value at a time."""
    text = pc.replace_substring(privacy.text_array(values), "/", "-")
    n = len(text)
    blank = _np(pc.equal(text, ""))
    nanos = np.full(n, NAT, dtype=np.int64)  # naive Taipei first, then UTC
    aware = np.zeros(n, dtype=bool)
    lengths = pc.utf8_length(text).to_numpy(zero_copy_only=False)
    for length, formats in (
        (19, ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")),
        (16, ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")),
    ):
        todo = (lengths == length) & (nanos == NAT)
        if not todo.any():
            continue
        index = np.flatnonzero(todo)
        first = text[int(index[0])].as_py()
        if first[10:11] == "T":  # 2026-05-12T20:15:00 (ISO with a T)
            formats = formats[::-1]
        for fmt in formats:
            if index.size == 0:
                break
            subset = pc.take(text, pa.array(index))
            parsed = pc.strptime(subset, format=fmt, unit="s", error_is_null=True)
            good = _np(pc.is_valid(parsed)) & _fields_match(subset, parsed)
            if good.any():
                seconds = pc.filter(parsed, pa.array(good)).cast(pa.int64()).to_numpy()
                nanos[index[good]] = seconds * 1_000_000_000
            index = index[~good]
    left = (nanos == NAT) & ~blank
    if left.any():
        index = np.flatnonzero(left)
        rest = pc.take(text, pa.array(index)).to_numpy(zero_copy_only=False)
        has_zone = _np(pc.match_substring_regex(pa.array(rest, pa.string()), _TZ_SUFFIX))
        nanos[index[~has_zone]] = _iso_nanos(rest[~has_zone], utc=False)
        if has_zone.any():
            nanos[index[has_zone]] = _iso_nanos(rest[has_zone], utc=True)
            aware[index[has_zone]] = nanos[index[has_zone]] != NAT
        odd = np.flatnonzero((nanos == NAT) & ~blank)
        if odd.size:
            originals = pc.take(privacy.text_array(values), pa.array(odd)).to_pylist()
            for i, original in zip(odd.tolist(), originals, strict=True):
                nanos[i] = _parse_odd_datetime(original)
    naive = (nanos != NAT) & ~aware
    if naive.any():
        nanos[naive] = _taipei_to_utc(nanos[naive])
    valid = nanos != NAT
    nanos[valid & ((nanos < YEAR_BOUNDS[0]) | (nanos >= YEAR_BOUNDS[1]))] = NAT
    stamps = pd.Series(nanos.view("datetime64[ns]")).dt.tz_localize("UTC")
    bad = (nanos == NAT) & ~blank
    return stamps, bad


def _fields_match(text: pa.Array, parsed: pa.Array) -> np.ndarray:
    """Whether the day and minute read back as written (a rolled-over 02-30
    or :60 second does not); positions are fixed in the padded forms."""
    ok = np.ones(len(text), dtype=bool)
    # Arrow refuses a month, hour or minute out of range but rolls a day
    # past the month's end and a 60th second over: day and minute catch both.
    for start, component in ((8, pc.day), (14, pc.minute)):
        written = pc.utf8_slice_codeunits(text, start, start + 2)
        try:
            written = pc.cast(written, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return np.zeros(len(text), dtype=bool)
        ok &= _np(pc.equal(written, component(parsed)))
    return ok


def _taipei_to_utc(local_nanos: np.ndarray) -> np.ndarray:
    """Asia/Taipei has been UTC+8 without daylight saving since 1980; older
    times go through the tz database."""
    if local_nanos.min() >= TAIPEI_FIXED_SINCE:
        return local_nanos - 8 * 3600 * 1_000_000_000
    index = pd.DatetimeIndex(local_nanos.view("datetime64[ns]")).tz_localize(
        TAIPEI, ambiguous="NaT", nonexistent="NaT"
    )
    return np.asarray(index.tz_convert("UTC").asi8)


def _iso_nanos(texts: np.ndarray, *, utc: bool) -> np.ndarray:
    """pandas' strict ISO 8601 parser: naive nanoseconds (or UTC ones when
    the texts carry an offset), NAT where it cannot parse."""
    if texts.size == 0:
        return np.zeros(0, dtype=np.int64)
    try:
        parsed = pd.to_datetime(texts, format="ISO8601", errors="coerce", utc=utc, cache=False)
    except (ValueError, TypeError, OverflowError):
        return np.full(texts.size, NAT, dtype=np.int64)
    if not utc and getattr(parsed, "tz", None) is not None:
        return np.full(texts.size, NAT, dtype=np.int64)
    return np.asarray(parsed.asi8, dtype=np.int64)


def _parse_odd_datetime(text: str) -> int:
    """The forms pandas' ISO parser does not take, one value at a time (only
    for the values it could not parse): naive Taipei nanoseconds, or NAT."""
    text = str(text).strip()
    match = _AMPM.match(text)
    if match:
        year, month, day, before, hour, minute, second, after = match.groups()
        marker = before or after
        hour = int(hour)
        if marker in ("下午", "PM", "pm") and hour < 12:
            hour += 12
        elif marker in ("上午", "AM", "am") and hour == 12:
            hour = 0
        if not YEAR_RANGE[0] <= int(year) <= YEAR_RANGE[1]:
            return NAT
        try:
            local = datetime(int(year), int(month), int(day), hour, int(minute), int(second or 0))
        except ValueError:
            return NAT
        return pd.Timestamp(local).value
    try:
        serial = float(text)
    except ValueError:
        return NAT
    if EXCEL_SERIAL_RANGE[0] <= serial <= EXCEL_SERIAL_RANGE[1]:
        local = EXCEL_EPOCH + timedelta(days=serial)
        local = local.replace(microsecond=0) + timedelta(seconds=round(local.microsecond / 1e6))
        return pd.Timestamp(local).value
    return NAT


_AMOUNT_NOISE = r"^(?:NT\$|NTD|TWD|\$|＄)|[,，\s元]|(?:NTD|TWD)$"


def parse_amounts(values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(amounts rounded to cents, not-a-number mask, negative mask); blanks
    are neither (the blank check reports them). Thousands separators,
    NT$/$ and 元 are tolerated; (100) is -100."""
    arrow = privacy.text_array(values)
    blank = pc.equal(arrow, "")
    filled = pc.if_else(blank, "0", arrow)
    try:
        numbers = pc.cast(filled, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        cleaned = pc.replace_substring_regex(filled, _AMOUNT_NOISE, "")
        cleaned = pc.replace_substring_regex(cleaned, r"^\((.*)\)$", r"-\1")
        numbers = pd.to_numeric(cleaned.to_numpy(zero_copy_only=False), errors="coerce").astype(
            np.float64
        )
    numbers = np.asarray(numbers, dtype=np.float64)
    finite = np.isfinite(numbers)
    bad = ~finite & ~_np(blank)
    negative = finite & (numbers < 0)
    return np.round(np.where(finite, numbers, np.nan), 2), bad, negative


def canonical_statuses(values) -> tuple[pa.Array, np.ndarray]:
    """(paid/pending/refunded or '', unknown mask). The synonyms are looked
    up once per distinct value."""
    encoded = pc.dictionary_encode(privacy.text_array(values))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    mapped = pa.array(
        [schema.canonical_payment_status(v) or "" for v in encoded.dictionary.to_pylist()],
        pa.string(),
    )
    statuses = pc.take(mapped, encoded.indices)
    unknown = _np(pc.equal(statuses, "")) & ~_np(pc.equal(privacy.text_array(values), ""))
    return statuses, unknown


def duplicate_mask(values) -> np.ndarray:
    """Rows whose non-blank order_id appears more than once in the file."""
    arrow = privacy.text_array(values)
    counts = pc.value_counts(arrow)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    repeated = pc.filter(repeated, pc.not_equal(repeated, ""))
    if len(repeated) == 0:
        return np.zeros(len(arrow), dtype=bool)
    return _np(pc.is_in(arrow, value_set=repeated))


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


# --- Arrow helpers --------------------------------------------------------------------


def _np(array) -> np.ndarray:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)
