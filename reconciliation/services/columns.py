"""Column helpers for million-row frames. The accepted frame's text columns
are Arrow-backed (see validation.py); iterating them through pandas costs
microseconds per cell, so the import works on Arrow arrays and integer codes
and converts to Python objects only batch by batch, where a database driver
needs them."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reconciliation import schema

# The frame an accepted upload hands the import: the Excel row number, then
# the schema's ten columns.
CONTRACT_COLUMNS = ("row_number", *schema.COLUMN_NAMES)


def arrow_text(values) -> pa.Array:
    """A string column as one Arrow array ('' for missing), zero-copy when it
    already is Arrow-backed."""
    if isinstance(values, pa.ChunkedArray | pa.Array):
        array = values
    elif isinstance(values, pd.Series) and isinstance(values.dtype, pd.ArrowDtype):
        array = pa.array(values.array)
    else:
        if isinstance(values, pd.Series):
            values = values.to_numpy(dtype=object)
        array = pa.array(values, type=pa.string(), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.string():
        array = pc.cast(array, pa.string())
    if array.null_count:
        array = pc.fill_null(array, "")
    return array


def with_arrow_text(frame: pd.DataFrame, names) -> pd.DataFrame:
    """The frame with the named text columns Arrow-backed (a million Python
    str objects per column cost ~70 MB; the Arrow column a fraction)."""
    out = frame.copy(deep=False)
    for name in names:
        if not isinstance(out[name].dtype, pd.ArrowDtype):
            out[name] = pd.Series(
                pd.arrays.ArrowExtensionArray(arrow_text(out[name])), index=out.index
            )
    return out


def timestamp_text(naive_utc: np.ndarray, *, suffix: str = "") -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS[.ffffff]' + suffix for naive UTC datetime64 values,
    as a bytes array, digit by digit in numpy (np.datetime_as_string and
    strftime cost several times more on a million rows)."""
    naive_utc = np.asarray(naive_utc, dtype="datetime64[us]")
    seconds = naive_utc.astype("datetime64[s]")
    micro = (naive_utc - seconds).astype(np.int64)
    days = seconds.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    fields = [
        (months.astype("datetime64[Y]").astype(np.int64) + 1970, 4, b"-"),
        (months.astype(np.int64) % 12 + 1, 2, b"-"),
        ((days - months).astype(np.int64) + 1, 2, b" "),
    ]
    hour, rest = np.divmod((seconds - days).astype(np.int64), 3600)
    minute, second = np.divmod(rest, 60)
    fields += [(hour, 2, b":"), (minute, 2, b":"), (second, 2, b"")]
    if micro.any():
        fields[-1] = (second, 2, b".")
        fields.append((micro, 6, b""))
    tail = suffix.encode()
    width = sum(d + len(sep) for _v, d, sep in fields) + len(tail)
    out = np.empty((len(naive_utc), width), dtype=np.uint8)
    col = 0
    for value, digits, sep in fields:
        for k in range(digits):
            out[:, col + digits - 1 - k] = 48 + (value // 10**k) % 10
        col += digits
        for byte in sep:
            out[:, col] = byte
            col += 1
    for byte in tail:
        out[:, col] = byte
        col += 1
    return out.view(f"S{width}").ravel()


def codes(values) -> tuple[np.ndarray, list]:
    """Integer codes and the distinct values, in order of first appearance."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(np.int64), [str(c) for c in values.cat.categories]
    if isinstance(values, pd.Series) and values.dtype == object and len(values) < 100_000:
        found, uniques = pd.factorize(values, sort=False)
        return found.astype(np.int64), [str(u) for u in uniques]
    encoded = pc.dictionary_encode(arrow_text(values))
    return (
        encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        encoded.dictionary.to_pylist(),
    )


def utc_naive(created_at: pd.Series) -> np.ndarray:
    """Timestamps as naive UTC datetime64[ns], without per-cell work for a
    tz-aware column."""
    if isinstance(created_at.dtype, pd.DatetimeTZDtype):
        return created_at.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    return pd.to_datetime(created_at, utc=True).dt.tz_localize(None).to_numpy()


def object_slice(column, start: int, stop: int) -> list:
    """Python values of rows [start, stop) of an Arrow column, a numpy column
    or a (codes, distinct values) pair."""
    if isinstance(column, tuple):
        found, values = column
        return values[found[start:stop]].tolist()
    if isinstance(column, pa.Array):
        return column.slice(start, stop - start).to_numpy(zero_copy_only=False).tolist()
    return column[start:stop].tolist()
