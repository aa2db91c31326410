"""The vectorised/SQL helpers the services share: a row's fingerprint, one
"column IN (values)" with a single parameter, and plain-SQL reads into a
DataFrame. Nothing here knows about requests, uploads or people."""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection

from reconciliation.models import OrderRow
from reconciliation.services.columns import (
    CONTRACT_COLUMNS,
    arrow_text,
    object_slice,
    timestamp_text,
    utc_naive,
)

INSERT_BATCH = 20_000
# An OrderRow as inserted: the frame's columns, what classification derived,
# and the fingerprint of the version.
ROW_COLUMNS = (*CONTRACT_COLUMNS, "classification", "rebuy_of", "exception_code", "fingerprint")

# The fields that make a version of an order: two rows with the same values
# here are the same version (unchanged); any difference is a change.
FINGERPRINT_FIELDS = (
    "created_at",
    "customer_key",
    "program_id",
    "amount",
    "payment_status",
    "payment_ref",
    "discount_code",
    "source_event",
    "owner_note",
)
# The fields whose change a person reads by name; the rest are "other".
TRACKED_CHANGES = ("payment_status", "amount")


def fingerprints(frame: pd.DataFrame) -> np.ndarray:
    """An int64 hash of each row's FINGERPRINT_FIELDS, vectorised: the
    timestamp as UTC microseconds, the amount as integer cents, text as is."""
    if len(frame) == 0:
        return np.zeros(0, dtype=np.int64)
    parts = []
    for name in FINGERPRINT_FIELDS:
        if name == "created_at":
            micros = utc_naive(frame[name]).astype("datetime64[us]").view(np.int64)
            parts.append(pc.cast(pa.array(micros), pa.string()))
        elif name == "amount":
            cents = np.rint(frame[name].to_numpy(np.float64) * 100).astype(np.int64)
            parts.append(pc.cast(pa.array(cents), pa.string()))
        else:
            parts.append(arrow_text(frame[name]))
    joined = pc.binary_join_element_wise(*parts, "\x1f")
    hashed = pd.util.hash_array(joined.to_numpy(zero_copy_only=False), categorize=False)
    return hashed.view(np.int64)


def in_list(column: str, values: list) -> tuple[str, object]:
    """`column IN (values)` with one parameter, whatever the number of values."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", list(values)
    return f"{column} IN (SELECT value FROM json_each(%s))", json.dumps(list(values))  # noqa: S608


def db_value(model, field_name: str, value):
    """A Python value as the database stores it in model.field (UUIDs are
    hex text on SQLite)."""
    return model._meta.get_field(field_name).get_db_prep_value(value, connection)


def q(name: str) -> str:
    """A table or column name quoted for the database in use."""
    return connection.ops.quote_name(name)


def analyze_table(model) -> None:
    """Fresh statistics for a table a bulk write just grew, so the SQL that
    follows (in the same transaction, and every page once it commits) gets a
    sensible plan: PostgreSQL has none for a million rows it has not seen
    yet, and autovacuum comes minutes later; SQLite keeps none unless asked
    (without them it reads the every-programme queue page of a 1,000,000-order
    book off the project index and sorts it: 480 ms instead of 19)."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {q(model._meta.db_table)}")  # noqa: S608 - fixed name


def sql_frame(sql: str, params: list, columns) -> pd.DataFrame:
    """The rows of a plain-SQL query as a DataFrame (amount as float64,
    created_at parsed as a column: the ORM's per-value converters cost more
    than the query on 100,000+ rows)."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            _raw_values(cursor.cursor)
        cursor.execute(sql, params)
        frame = pd.DataFrame.from_records(cursor.fetchall(), columns=list(columns))
        # PostgreSQL names each column's type; SQLite's driver hands back
        # naive UTC datetimes without saying so: by name, created_at only.
        stamps = (
            {
                name
                for name, column in zip(frame.columns, cursor.description, strict=True)
                if column.type_code in _TIMESTAMP_OIDS
            }
            if postgres
            else {"created_at"}
        )
    if "amount" in frame:
        frame["amount"] = frame["amount"].astype(np.float64)
    for name in stamps & set(frame.columns):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601", cache=False)
    return frame


_TIMESTAMP_OIDS = frozenset({1114, 1184})  # timestamp, timestamptz


def _raw_values(cursor) -> None:
    """On this psycopg cursor, timestamps come back as their text and
    numerics as floats: the frame parses the text in one vectorised pass,
    where a datetime or Decimal per value cost ~5 µs each (0.8 s for the
    170,000 refunded and changed orders a 1,000,000-order snapshot reads)."""
    from psycopg.types.numeric import FloatLoader
    from psycopg.types.string import TextLoader

    for name in ("timestamptz", "timestamp"):
        cursor.adapters.register_loader(name, TextLoader)
    cursor.adapters.register_loader("numeric", FloatLoader)


def quoted_columns(model, prefix: str, fields) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{prefix}.{quote(model._meta.get_field(f).column)}" for f in fields)


# --- The bulk insert of an import's rows -----------------------------------------


TEXT_COLUMNS = (
    "order_id",
    "customer_key",
    "program_id",
    "payment_status",
    "payment_ref",
    "discount_code",
    "source_event",
    "owner_note",
)


# Text columns whose values repeat: on SQLite they go to the driver as
# references to one Python str per distinct value, not a new str per cell.
REPEATING = frozenset(
    {"customer_key", "program_id", "payment_status", "discount_code", "source_event", "owner_note"}
)
DERIVED = frozenset({"classification", "rebuy_of", "exception_code"})


def insert_order(frame: pd.DataFrame) -> np.ndarray:
    """The order rows are inserted in: by order_id (file order where the file
    already is). The (import, order_id) index then only appends, and the
    book's (project, order_id) index after it: rows inserted out of that
    order land in the middle of both indexes, page splits and all."""
    order = arrow_text(frame["order_id"])
    n = len(order)
    if n < 2 or pc.all(pc.greater_equal(order.slice(1), order.slice(0, n - 1))).as_py():
        return np.arange(n, dtype=np.int64)
    return pc.sort_indices(order).to_numpy().astype(np.int64)


def _columns(frame: pd.DataFrame, *, postgres: bool) -> dict:
    """The row columns, in insert order, as Arrow arrays (text; escaped for
    COPY on PostgreSQL), numpy arrays (numbers, timestamps, the derived
    columns) or, on SQLite, (codes, distinct values) for repeating text."""
    order = insert_order(frame)
    take = pa.array(order)
    columns = {}
    for name in ROW_COLUMNS:
        if name == "row_number":
            columns[name] = frame[name].to_numpy(np.int64)[order]
        elif name == "amount":
            columns[name] = frame[name].to_numpy(np.float64).round(2)[order]
        elif name == "fingerprint":
            columns[name] = frame[name].to_numpy(np.int64)[order]
        elif name == "created_at":
            columns[name] = utc_naive(frame[name])[order]
        elif postgres:
            columns[name] = _copy_text(arrow_text(frame[name]).take(take))
        elif name in DERIVED:
            columns[name] = frame[name].to_numpy(dtype=object)[order]
        elif name in REPEATING:
            encoded = pc.dictionary_encode(arrow_text(frame[name]).take(take))
            columns[name] = (
                encoded.indices.to_numpy(zero_copy_only=False),
                np.array(encoded.dictionary.to_pylist(), dtype=object),
            )
        else:
            columns[name] = arrow_text(frame[name]).take(take)
    return columns


_COPY_SPECIAL = r"[\\\t\n\r]"


def _copy_text(array: pa.Array) -> pa.Array:
    """A text column escaped for COPY's text format (backslash, tab, newline,
    carriage return), untouched when it has none of them."""
    if not pc.any(pc.match_substring_regex(array, _COPY_SPECIAL)).as_py():
        return array
    for char, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        array = pc.replace_substring(array, char, escaped)
    return array


def insert_rows(reconciliation_import, frame: pd.DataFrame) -> None:
    """All rows of the import in batches: COPY on PostgreSQL (one text buffer
    per batch, built by Arrow), executemany on SQLite."""
    postgres = connection.vendor == "postgresql"
    import_id = type(reconciliation_import)._meta.pk.get_db_prep_value(
        reconciliation_import.pk, connection
    )
    table = OrderRow._meta.db_table
    names = ", ".join(["reconciliation_import_id", *ROW_COLUMNS])
    columns = _columns(frame, postgres=postgres)
    n = len(frame)
    spans = [(start, min(start + INSERT_BATCH, n)) for start in range(0, n, INSERT_BATCH)]
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the driver's own cursor: no per-row wrapper work
        if postgres:
            with raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # noqa: S608 - fixed names
                for buffer in _prepared(_copy_batch, columns, str(import_id), spans):
                    copy.write(buffer)
        else:
            marks = ", ".join("?" * (len(ROW_COLUMNS) + 1))
            sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 - fixed names
            for batch in _prepared(_row_batch, columns, import_id, spans):
                raw.executemany(sql, batch)


def _prepared(build, columns: dict, import_id, spans):
    """Yield build(...) for each span, building the next batch in a second
    thread while the database works on the current one (the drivers release
    the GIL while the database inserts)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-batch") as pool:
        pending = None
        for index, (start, stop) in enumerate(spans):
            current = pending.result() if pending else build(columns, import_id, start, stop)
            if index + 1 < len(spans):
                pending = pool.submit(build, columns, import_id, *spans[index + 1])
            yield current


def _row_batch(columns: dict, import_id, start: int, stop: int) -> list[tuple]:
    values = []
    for name in ROW_COLUMNS:
        column = columns[name]
        if name == "created_at":
            text = timestamp_text(column[start:stop])
            values.append(text.astype(f"U{text.dtype.itemsize}").tolist())
        else:
            values.append(object_slice(column, start, stop))
    return list(zip([import_id] * (stop - start), *values, strict=True))


def _copy_batch(columns: dict, import_id: str, start: int, stop: int) -> memoryview:
    parts = []
    for name in ROW_COLUMNS:
        column = columns[name]
        if name == "created_at":
            text = timestamp_text(column[start:stop], suffix="+00")
            parts.append(pa.array(text, pa.binary()).cast(pa.string()))
        elif isinstance(column, pa.Array):
            parts.append(column.slice(start, stop - start))
        elif isinstance(column, np.ndarray) and column.dtype == object:
            parts.append(pa.array(column[start:stop], pa.string()))
        else:
            parts.append(pc.cast(pa.array(column[start:stop]), pa.string()))
    lines = pc.binary_join_element_wise(import_id, *parts, "\t")
    lines = pc.binary_join_element_wise(lines, "", "\n")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    data = lines.buffers()[2]
    return memoryview(data)[offsets[lines.offset] : offsets[lines.offset + len(lines)]]


# --- A generic bulk insert (settlement lines) ---------------------------------------

NULL_COPY = "\\N"


def insert_columns(table: str, columns: dict) -> None:
    """Insert rows given as whole columns {db column: values}: text as Arrow
    arrays ('' kept as ''), numbers as numpy arrays, timestamps as naive UTC
    datetime64 arrays (NaT → NULL), nullable integers as float arrays (NaN →
    NULL). COPY on PostgreSQL, executemany on SQLite, in batches."""
    postgres = connection.vendor == "postgresql"
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    spans = [(start, min(start + INSERT_BATCH, n)) for start in range(0, n, INSERT_BATCH)]
    quoted = ", ".join(connection.ops.quote_name(c) for c in names)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        if postgres:
            with raw.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:  # noqa: S608
                for start, stop in spans:
                    copy.write(_copy_columns(columns, start, stop))
        else:
            marks = ", ".join("?" * len(names))
            sql = f"INSERT INTO {table} ({quoted}) VALUES ({marks})"  # noqa: S608
            for start, stop in spans:
                raw.executemany(sql, _sqlite_rows(columns, start, stop))


def _cell_texts(values, start: int, stop: int, *, postgres: bool) -> pa.Array:
    """One column's slice as Arrow text, NULL where the value is missing."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        part = values.slice(start, stop - start)
        if isinstance(part, pa.ChunkedArray):
            part = part.combine_chunks()
        if part.type != pa.string():
            return pc.cast(part, pa.string())
        return _copy_text(part) if postgres else part
    part = np.asarray(values)[start:stop]
    if np.issubdtype(part.dtype, np.datetime64):
        text = timestamp_text(part, suffix="+00" if postgres else "")
        out = pa.array(text, pa.binary()).cast(pa.string())
        return pc.if_else(pa.array(np.isnat(part)), pa.scalar(None, pa.string()), out)
    if np.issubdtype(part.dtype, np.floating):
        out = pc.cast(pa.array(np.round(part, 2)), pa.string())
        return pc.if_else(pa.array(np.isnan(part)), pa.scalar(None, pa.string()), out)
    return pc.cast(pa.array(part), pa.string())


def _copy_columns(columns: dict, start: int, stop: int) -> memoryview:
    parts = [
        pc.fill_null(_cell_texts(v, start, stop, postgres=True), NULL_COPY)
        for v in columns.values()
    ]
    lines = pc.binary_join_element_wise(*parts, "\t")
    lines = pc.binary_join_element_wise(lines, "", "\n")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    data = lines.buffers()[2]
    return memoryview(data)[offsets[lines.offset] : offsets[lines.offset + len(lines)]]


def _sqlite_rows(columns: dict, start: int, stop: int) -> list[tuple]:
    values = []
    for column in columns.values():
        if isinstance(column, pa.Array | pa.ChunkedArray):
            values.append(column.slice(start, stop - start).to_pylist())
            continue
        part = np.asarray(column)[start:stop]
        if np.issubdtype(part.dtype, np.datetime64):
            text = _cell_texts(part, 0, len(part), postgres=False)
            values.append(text.to_pylist())
        elif np.issubdtype(part.dtype, np.floating):
            missing = np.isnan(part)
            values.append(
                np.where(missing, None, np.round(part, 2).astype(object)).tolist()
                if missing.any()
                else np.round(part, 2).tolist()
            )
        else:
            values.append(part.tolist())
    return list(zip(*values, strict=True))
