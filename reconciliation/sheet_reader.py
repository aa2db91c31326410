"""Reading a spreadsheet in a child process whose address space is limited.

A spreadsheet reader builds a dense block of rows × columns. A few bytes can
declare a block of hundreds of gigabytes (a single cell at XFD1048576, an
ODS row repeated a million times); the Rust allocator then aborts the whole
process. ``readers.py`` refuses what it can from cheap facts first; this
module is the backstop for anything those facts miss: the sheet is read by
``python -m reconciliation.sheet_reader`` under RLIMIT_AS, so an unknown
trick costs the child (a typed file error for the user), never the web
server or the worker.

Protocol: ``python -m reconciliation.sheet_reader SOURCE OUT KIND MAX_ROWS
MEMORY_MB``. The child writes the chosen sheet's body as an Arrow IPC file
to OUT (columns ``c0..cN``, strings, '' when empty) and prints one JSON line:
``{"ok": true, "headers": […], "header_index": n, "sheet": name}`` or
``{"ok": false, "code": …, "params": {…}}`` for a file problem. Anything
else (killed, aborted, a MemoryError) is the caller's to name.

This module imports neither Django nor pandas, so the child starts fast and
small; ``readers.py`` takes ``find_header`` and the cell conversions from
here (one definition).
"""

import json
import sys
from datetime import date, datetime, time, timedelta

HEADER_SEARCH_ROWS = 30
MEMORY_ERROR_EXIT = 75


def limit_address_space(memory_mb: int) -> None:
    import resource

    limit = int(memory_mb) * 1_048_576
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def find_header(rows: list[list[str]]) -> tuple[int, int]:
    """(index, score) of the row naming the most distinct columns of either
    schema (the order export's or the settlement file's); the
    first non-empty row (score 0) when none does."""
    from reconciliation import schema

    best, best_score = None, 0
    for index, row in enumerate(rows):
        names = {schema.canonical_column(cell) for cell in row if str(cell).strip()}
        names.discard(None)
        score = max(len(names), schema.settlement_header_score(row))
        if score > best_score:
            best, best_score = index, score
    if best is None:
        best = next((i for i, row in enumerate(rows) if any(str(c).strip() for c in row)), 0)
    return best, best_score


def cell_text(value) -> str:
    """One spreadsheet cell as the text a person would type for it."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def typed_texts(kind: type, values: list):
    """Cells of one type as text: whole numbers without ".0", dates as
    "2026-05-12 20:15:00"; anything odd (fractions of a second, huge or
    non-finite numbers, booleans…) cell by cell."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        if kind is float:
            numbers = pa.array(values, pa.float64())
            whole = numbers.to_numpy(zero_copy_only=False)
            if (np.isfinite(whole) & (whole == np.round(whole)) & (abs(whole) < 1e15)).all():
                return pc.cast(pc.cast(numbers, pa.int64()), pa.string()).to_numpy(
                    zero_copy_only=False
                )
        elif kind is int:
            return pc.cast(pa.array(values, pa.int64()), pa.string()).to_numpy(zero_copy_only=False)
        elif kind is datetime:
            stamps = pc.cast(pa.array(values, pa.timestamp("us")), pa.timestamp("s"))
            return pc.cast(stamps, pa.string()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass
    return np.array([cell_text(v) for v in values], dtype=object)


def text_column(values: list):
    """A column of cells as an Arrow string array. Cells of one Python type
    convert together in Arrow (dates, numbers); only odd types go cell by
    cell."""
    import numpy as np
    import pyarrow as pa

    types = np.fromiter(map(type, values), dtype=object, count=len(values))
    kinds = set(types.tolist())
    if kinds <= {str}:
        return pa.array(values, pa.string())
    if len(kinds) == 1:
        return pa.array(typed_texts(next(iter(kinds)), values), pa.string())
    cells = np.empty(len(values), dtype=object)
    cells[:] = values
    text = np.full(len(values), "", dtype=object)
    for kind in kinds:
        mask = types == kind
        part = cells[mask]
        text[mask] = part if kind is str else typed_texts(kind, part.tolist())
    return pa.array(text, pa.string())


class Problem(Exception):
    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params


def read_sheet(source: str, out: str, kind: str, max_rows: int) -> dict:
    """The first worksheet whose top rows carry the schema headers (else the
    first with anything in it) → OUT as Arrow IPC; returns the JSON answer."""
    import itertools

    import pyarrow as pa
    from python_calamine import SheetTypeEnum, load_workbook

    try:
        workbook = load_workbook(source)
        sheets = [
            s.name for s in workbook.sheets_metadata if s.typ == SheetTypeEnum.WorkSheet
        ] or list(workbook.sheet_names)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser error is the file's problem
        raise Problem("unreadable_file", reason="damaged") from exc
    chosen = None
    for name in sheets:
        try:
            sheet = workbook.get_sheet_by_name(name)
            if sheet.total_height > max_rows + HEADER_SEARCH_ROWS:
                raise Problem("too_many_rows", rows=sheet.total_height, limit=max_rows)
            rows = sheet.to_python(skip_empty_area=False)
        except (Problem, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise Problem("unreadable_file", reason="damaged") from exc
        top = [[cell_text(v) for v in row] for row in rows[:HEADER_SEARCH_ROWS]]
        index, score = find_header(top)
        if score >= 3:
            chosen = (name, rows, top, index)
            break
        if chosen is None and any(any(c.strip() for c in row) for row in top):
            chosen = (name, rows, top, index)
        del rows
    if chosen is None:
        raise Problem("empty_file")
    name, rows, top, index = chosen
    headers = [h.strip() for h in top[index]]
    body = rows[index + 1 :]
    if len(body) > max_rows:
        raise Problem("too_many_rows", rows=len(body), limit=max_rows)
    width = len(headers)
    # Transposed in C (zip), not cell by cell; calamine's rows are rectangular.
    transposed = list(itertools.zip_longest(*body, fillvalue="")) if body else []
    columns = []
    for position in range(width):
        values = list(transposed[position]) if position < len(transposed) else [""] * len(body)
        columns.append(text_column(values))
    table = pa.table(
        columns or [pa.array([], pa.string())], names=[f"c{i}" for i in range(max(width, 1))]
    )
    with pa.OSFile(out, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return {"ok": True, "headers": headers, "header_index": index, "sheet": name, "rows": len(body)}


class _WithoutPandas:
    """pyarrow imports pandas on its first ``pa.array`` when it can (half a
    second of the child's start); nothing here needs it."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError(f"{name} is not used by the sheet reader")
        return None


def main(argv: list[str]) -> int:
    source, out, kind, max_rows, memory_mb = argv
    sys.meta_path.insert(0, _WithoutPandas())
    limit_address_space(int(memory_mb))
    try:
        answer = read_sheet(source, out, kind, int(max_rows))
    except Problem as problem:
        answer = {"ok": False, "code": problem.code, "params": problem.params}
    except MemoryError:
        return MEMORY_ERROR_EXIT
    sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
