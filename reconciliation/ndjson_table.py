"""NDJSON (one JSON object a line: what a sync keeps of an API's pages) →
columns of strings, as ``readers`` makes of a CSV: the fields are the
headers, numbers become their text, null and missing values ''. Arrow reads
the whole file at once; no Python runs per record."""

import json
import mmap
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pa_json

# Fields whose JSON values must be strings; read as such, so an ISO 8601
# timestamp is never turned into a zone-less one on its way to validation.
TEXT_FIELDS = (
    "order_id",
    "created_at",
    "updated_at",
    "customer_key",
    "program_id",
    "payment_status",
    "payment_ref",
    "discount_code",
    "source_event",
    "owner_note",
)


class NdjsonProblem(Exception):
    """A file-level problem; `code` is one of error_codes.ERRORS."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params


def read_records(path: Path, *, max_rows: int) -> tuple[list[str], list[pa.Array], int]:
    """(headers, one Arrow string array per header, record count)."""
    schema = pa.schema([(name, pa.string()) for name in TEXT_FIELDS])
    try:
        table = pa_json.read_json(
            str(path),
            read_options=pa_json.ReadOptions(block_size=16 << 20),
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise NdjsonProblem("unreadable_file", reason="damaged") from None
    if table.num_rows > max_rows:
        raise NdjsonProblem("too_many_rows", rows=table.num_rows, limit=max_rows)
    # The explicit schema adds its fields to every table: a field counts as
    # present when its key appears anywhere in the file (null is present).
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        headers = [
            name
            for name in table.column_names
            if name not in TEXT_FIELDS or data.find(json.dumps(name).encode()) >= 0
        ]
    if table.num_rows == 0 or not headers:
        raise NdjsonProblem("empty_file")
    columns = []
    for name in headers:
        column = table.column(name)
        try:
            if not pa.types.is_string(column.type):
                column = column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise NdjsonProblem("unreadable_file", reason="damaged") from None
        columns.append(column.fill_null("").combine_chunks())
    return headers, columns, table.num_rows
