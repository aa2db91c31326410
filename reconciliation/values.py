"""Vectorised parsers of cell values: dates, amounts, payment statuses and
in-file duplicates, each over a whole Arrow/NumPy column at once.

Times without an offset are Asia/Taipei; years outside 1970..2100 are not
dates; amounts are rounded to cents.
"""

import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reconciliation import privacy, schema

TAIPEI = "Asia/Taipei"


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
    blank = as_mask(pc.equal(text, ""))
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
            good = as_mask(pc.is_valid(parsed)) & _fields_match(subset, parsed)
            if good.any():
                seconds = pc.filter(parsed, pa.array(good)).cast(pa.int64()).to_numpy()
                nanos[index[good]] = seconds * 1_000_000_000
            index = index[~good]
    left = (nanos == NAT) & ~blank
    if left.any():
        index = np.flatnonzero(left)
        rest = pc.take(text, pa.array(index)).to_numpy(zero_copy_only=False)
        has_zone = as_mask(pc.match_substring_regex(pa.array(rest, pa.string()), _TZ_SUFFIX))
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
        ok &= as_mask(pc.equal(written, component(parsed)))
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
    bad = ~finite & ~as_mask(blank)
    negative = finite & (numbers < 0)
    return np.round(np.where(finite, numbers, np.nan), 2), bad, negative


def too_large(amounts: np.ndarray) -> np.ndarray:
    """Amounts the book cannot store (schema.MAX_AMOUNT), either sign."""
    return np.isfinite(amounts) & (np.abs(amounts) >= schema.MAX_AMOUNT)


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
    unknown = as_mask(pc.equal(statuses, "")) & ~as_mask(pc.equal(privacy.text_array(values), ""))
    return statuses, unknown


def duplicate_mask(values) -> np.ndarray:
    """Rows whose non-blank order_id appears more than once in the file."""
    arrow = privacy.text_array(values)
    counts = pc.value_counts(arrow)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    repeated = pc.filter(repeated, pc.not_equal(repeated, ""))
    if len(repeated) == 0:
        return np.zeros(len(arrow), dtype=bool)
    return as_mask(pc.is_in(arrow, value_set=repeated))


def as_mask(array) -> np.ndarray:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)
