"""The vectorised/SQL helpers the services share: a row's fingerprint, one
"column IN (values)" with a single parameter, and plain-SQL reads into a
DataFrame. Nothing here knows about requests, uploads or people."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection

from reconciliation.services.columns import arrow_text, utc_naive

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


def sql_frame(sql: str, params: list, columns) -> pd.DataFrame:
    """The rows of a plain-SQL query as a DataFrame (amount as float64,
    created_at parsed as a column: the ORM's per-value converters cost more
    than the query on 100,000+ rows)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        frame = pd.DataFrame.from_records(cursor.fetchall(), columns=list(columns))
    if "amount" in frame:
        frame["amount"] = frame["amount"].astype(np.float64)
    if "created_at" in frame:
        frame["created_at"] = pd.to_datetime(
            frame["created_at"], utc=True, format="ISO8601", cache=False
        )
    return frame


def quoted_columns(model, prefix: str, fields) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{prefix}.{quote(model._meta.get_field(f).column)}" for f in fields)
