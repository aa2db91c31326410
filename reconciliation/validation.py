"""A table of strings → file- and row-level errors, warnings and the
normalised frame (SPEC §4, seed test C).

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
from reconciliation.readers import STRING, FileProblem, RawTable, read_upload

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
    "card_number": (
        gettext_lazy("%(column)s 含有信用卡號 %(value)s。"),
        gettext_lazy("刪除卡號再上傳；付款單號請填金流交易編號。系統不保存卡號。"),
    ),
    "payment_token": (
        gettext_lazy("%(column)s 含有付款 token %(value)s。"),
        gettext_lazy("刪除付款 token，改填金流交易編號。系統不保存 token。"),
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

    @property
    def accepted(self) -> bool:
        return not self.missing_fields and not self.file_errors and self.row_errors.empty

    @property
    def schema_status(self) -> str:
        return "accepted" if self.accepted else "schema_failed"

    @property
    def row_error_count(self) -> int:
        return len(self.row_errors)

    def row_error_dicts(self, limit: int | None = None) -> list[dict]:
        """[{row, column, code, message, hint, value}] in row order."""
        errors = self.row_errors if limit is None else self.row_errors.head(limit)
        out = []
        for row, column, code, value in errors.itertuples(index=False, name=None):
            message, hint = describe(
                code, {"column": column, "value": value, **_extra(code, value)}
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


def _extra(code: str, value: str) -> dict:
    """Parameters some messages carry inside the stored value."""
    if code == "wrong_field_count" and "/" in value:
        actual, expected = value.split("/", 1)
        return {"actual": actual, "expected": expected}
    if code == "too_long":
        return {"limit": value}
    return {}


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
    frame, row_numbers = _drop_blank_rows(raw.frame, raw.row_numbers)
    result.row_count = len(frame)
    if result.row_count == 0 and not raw.ragged_rows:
        result.file_errors.append(file_error("header_only"))
    if extras:
        result.warnings.append(
            _warning("extra_columns", len(extras), columns="、".join(extras[:20]))
        )
    errors = _RowErrors(row_numbers)
    for row, fields in raw.ragged_rows:
        errors.single(row, "", "wrong_field_count", f"{fields}/{len(raw.headers)}")

    columns = {name: _strip(frame[pos]) for name, pos in positions.items()}
    # Errors in extra columns name the column by its header.
    names = {
        position: (
            schema.canonical_column(header)
            if positions.get(schema.canonical_column(header) or "") == position
            else (privacy.redact(str(header).strip())[:SHOWN_VALUE_CHARS] or f"#{position + 1}")
        )
        for position, header in enumerate(raw.headers)
        if position in frame.columns
    }
    keys = columns["customer_key"].to_numpy(dtype=object) if "customer_key" in columns else None
    errors.flagged = _scan_sensitive(frame, names, keys, errors)

    for name, values in columns.items():
        column = schema.BY_NAME[name]
        blank = _np(pc.equal(_arrow(values), ""))
        if not column.allow_blank and blank.any():
            code = "blank_order_id" if name == "order_id" else "blank_value"
            errors.add(blank, name, code, None)
        if name in MAX_LENGTHS:
            too_long = _np(pc.greater(pc.utf8_length(_arrow(values)), MAX_LENGTHS[name]))
            if too_long.any():
                errors.add(too_long, name, "too_long", str(MAX_LENGTHS[name]))

    normal = {"row_number": row_numbers}
    if "created_at" in columns:
        stamps, bad = parse_datetimes(columns["created_at"])
        errors.add(bad, "created_at", "bad_date", columns["created_at"])
        normal["created_at"] = stamps
        if period is not None:
            _period_warning(stamps, bad, period, row_numbers, result)
    if "amount" in columns:
        amounts, bad, negative = parse_amounts(columns["amount"])
        errors.add(bad, "amount", "bad_amount", columns["amount"])
        errors.add(negative, "amount", "negative_amount", columns["amount"])
        normal["amount"] = amounts
    if "payment_status" in columns:
        statuses, unknown = canonical_statuses(columns["payment_status"])
        errors.add(unknown, "payment_status", "unknown_payment_status", columns["payment_status"])
        normal["payment_status"] = statuses
    if "customer_key" in columns:
        keys, raw_keys = privacy.hash_customer_keys(columns["customer_key"])
        if raw_keys.any():
            result.warnings.append(_warning("customer_key_hashed", int(raw_keys.sum())))
        normal["customer_key"] = keys
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

    result.row_errors = errors.frame()
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


def _drop_blank_rows(frame: pd.DataFrame, row_numbers: np.ndarray):
    """Rows with nothing in any cell (Excel's trailing formatted rows, blank
    lines) are not data."""
    if frame.shape[1] == 0 or len(frame) == 0:
        return frame.iloc[:0], row_numbers[:0]
    lengths = None
    for position in frame.columns:
        length = pc.utf8_length(pc.utf8_trim_whitespace(_arrow(frame[position])))
        lengths = length if lengths is None else pc.add(lengths, length)
    keep = _np(pc.greater(lengths, 0))
    if keep.all():
        return frame, row_numbers
    return frame[keep].reset_index(drop=True), row_numbers[keep]


def _strip(values: pd.Series) -> pd.Series:
    """Spaces and tabs around values go (TikTok puts a tab after long ids)."""
    return pd.Series(pd.array(pc.utf8_trim_whitespace(_arrow(values)), dtype=STRING))


def _scan_sensitive(frame: pd.DataFrame, names: dict, keys, errors: "_RowErrors") -> np.ndarray:
    """Card numbers and payment tokens in any cell of any column (extra
    columns included). Returns the mask of rows that hold one."""
    flagged = np.zeros(len(frame), dtype=bool)
    if len(frame) == 0 or frame.shape[1] == 0:
        return flagged
    candidates = privacy.candidate_rows([frame[p] for p in frame.columns])
    if candidates.size == 0:
        return flagged
    cells = frame.take(candidates).to_numpy(dtype=object)
    positions = list(frame.columns)
    for index, row in zip(candidates.tolist(), cells, strict=True):
        for position, text in zip(positions, row, strict=True):
            name = names[position]
            if name == "customer_key" and privacy.is_hashed_key(str(keys[index])):
                continue  # a digest's digits are not a card
            for code, masked in privacy.find_sensitive(text):
                errors.single_at(index, name, code, masked)
                flagged[index] = True
    return flagged


class _RowErrors:
    """Collects error blocks (one per check) and builds the error frame."""

    def __init__(self, row_numbers: np.ndarray):
        self.row_numbers = row_numbers
        self.blocks: list[pd.DataFrame] = []
        self.singles: list[tuple[int, str, str, str]] = []
        self.flagged = np.zeros(len(row_numbers), dtype=bool)

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
            shown = values.to_numpy(dtype=object)[where]
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
    text = "" if value is None else str(value)
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


def parse_datetimes(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(UTC timestamps, mask of non-blank values that are not dates).

    Accepted: ISO 8601 (with T or a space, seconds optional, an offset or Z
    optional), the same with slashes (2026/05/12 20:15, unpadded too), the
    zh-TW Excel form "2026/5/12 下午 08:15:00", AM/PM, and Excel serial day
    numbers. Times without an offset are Asia/Taipei."""
    n = len(values)
    arrow = _arrow(values)
    blank = _np(pc.equal(arrow, ""))
    text = pd.Series(pd.array(pc.replace_substring(arrow, "/", "-"), dtype=STRING))
    aware = _np(pc.match_substring_regex(_arrow(text), _TZ_SUFFIX))
    nanos = np.full(n, NAT, dtype=np.int64)  # UTC nanoseconds
    naive = ~aware & ~blank
    if naive.any():
        parsed = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        parsed = parsed.dt.tz_localize(TAIPEI, ambiguous="NaT", nonexistent="NaT")
        nanos[naive] = parsed.dt.tz_convert("UTC").array.asi8
    if aware.any():
        parsed = pd.to_datetime(
            text[aware].astype(object), format="ISO8601", errors="coerce", utc=True
        )
        nanos[aware] = parsed.array.asi8
    left = np.flatnonzero((nanos == NAT) & ~blank)
    if left.size:
        original = values.to_numpy(dtype=object)
        nanos[left] = [_parse_odd_datetime(original[i]) for i in left]
    stamps = pd.Series(pd.to_datetime(nanos, utc=True))
    years = stamps.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    out_of_range = (years < YEAR_RANGE[0]) | (years > YEAR_RANGE[1])
    if out_of_range.any():
        nanos[out_of_range] = NAT
        stamps = pd.Series(pd.to_datetime(nanos, utc=True))
    bad = (nanos == NAT) & ~blank
    return stamps, bad


def _parse_odd_datetime(text: str):
    """The forms pandas' ISO parser does not take, one value at a time (only
    for the values it could not parse): UTC nanoseconds, or NAT."""
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
        try:
            local = datetime(int(year), int(month), int(day), hour, int(minute), int(second or 0))
        except ValueError:
            return NAT
        return _utc_nanos(local)
    try:
        serial = float(text)
    except ValueError:
        return NAT
    if EXCEL_SERIAL_RANGE[0] <= serial <= EXCEL_SERIAL_RANGE[1]:
        local = EXCEL_EPOCH + timedelta(days=serial)
        local = local.replace(microsecond=0) + timedelta(seconds=round(local.microsecond / 1e6))
        return _utc_nanos(local)
    return NAT


def _utc_nanos(local: datetime) -> int:
    return pd.Timestamp(local).tz_localize(TAIPEI).tz_convert("UTC").value


_AMOUNT_NOISE = r"^(?:NT\$|NTD|TWD|\$|＄)|[,，\s元]|(?:NTD|TWD)$"


def parse_amounts(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(amounts rounded to cents, not-a-number mask, negative mask); blanks
    are neither (the blank check reports them). Thousands separators,
    NT$/$ and 元 are tolerated; (100) is -100."""
    arrow = _arrow(values)
    blank = _np(pc.equal(arrow, ""))
    filled = pc.if_else(pc.equal(arrow, ""), "0", arrow)
    try:
        numbers = pc.cast(filled, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        cleaned = pc.replace_substring_regex(filled, _AMOUNT_NOISE, "")
        cleaned = pc.replace_substring_regex(cleaned, r"^\((.*)\)$", r"-\1")
        numbers = pd.to_numeric(
            pd.Series(pd.array(cleaned, dtype=STRING)).astype(object), errors="coerce"
        ).to_numpy(dtype=np.float64)
    numbers = np.asarray(numbers, dtype=np.float64)
    bad = ~np.isfinite(numbers) & ~blank
    negative = np.isfinite(numbers) & (numbers < 0)
    return np.round(np.where(np.isfinite(numbers), numbers, np.nan), 2), bad, negative


def canonical_statuses(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(paid/pending/refunded or '', unknown mask). The mapping runs once per
    distinct value."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    mapped = np.array(
        [schema.canonical_payment_status(u) or "" for u in uniques] + [""], dtype=object
    )
    statuses = mapped[codes]
    blank = values.to_numpy(dtype=object) == ""
    unknown = (statuses == "") & ~blank
    return statuses, unknown


def duplicate_mask(values: pd.Series) -> np.ndarray:
    """Rows whose non-blank order_id appears more than once in the file."""
    arrow = _arrow(values)
    counts = pc.value_counts(arrow)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    repeated = pc.filter(repeated, pc.not_equal(repeated, ""))
    if len(repeated) == 0:
        return np.zeros(len(values), dtype=bool)
    return _np(pc.is_in(arrow, value_set=repeated))


def _period_warning(stamps, bad, period, row_numbers, result) -> None:
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
    """The contract's columns, in its order, Arrow-backed strings."""
    n = len(normal["row_number"])
    empty = pd.array([""] * n, dtype=STRING)
    frame = pd.DataFrame(
        {
            "row_number": np.asarray(normal["row_number"], dtype=np.int64),
            "order_id": _values(normal.get("order_id"), empty),
            "created_at": (
                normal["created_at"].array
                if "created_at" in normal
                else pd.array([pd.NaT] * n, dtype="datetime64[ns, UTC]")
            ),
            "customer_key": _values(normal.get("customer_key"), empty),
            "program_id": _values(normal.get("program_id"), empty),
            "amount": np.asarray(normal.get("amount", np.zeros(n)), dtype=np.float64),
            "payment_status": pd.array(
                normal["payment_status"] if "payment_status" in normal else empty, dtype=STRING
            ),
            "payment_ref": _values(normal.get("payment_ref"), empty),
            "discount_code": _values(normal.get("discount_code"), empty),
            "source_event": _values(normal.get("source_event"), empty),
            "owner_note": _values(normal.get("owner_note"), empty),
        }
    )
    return frame


def _values(series, empty):
    return empty if series is None else pd.array(series, dtype=STRING)


# --- Arrow helpers --------------------------------------------------------------------


def _arrow(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    array = pa.array(values.array if isinstance(values, pd.Series) else values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.string():
        array = pc.cast(array, pa.string())
    return array


def _np(array) -> np.ndarray:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)
