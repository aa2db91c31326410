"""A spreadsheet's extent from cheap facts, checked as its XML streams by
before anything is inflated into memory: the declared dimension, the
highest row and column any cell names, ODS repeats, and the longest run of
cell text. A sheet beyond SHEET_MAX_* is `sheet_too_large`."""

import re
import zipfile
from operator import itemgetter

from django.conf import settings

from reconciliation.file_problem import FileProblem
from reconciliation.sheet_reader import HEADER_SEARCH_ROWS

_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\b[^>]*?\bref=\"([^\"]{1,40})\"")
_CELL_REF = re.compile(rb"<(?:\w+:)?c\b[^>]{0,200}?\br=\"([A-Za-z]{1,4})([0-9]{1,9})\"")
_ROW_REF = re.compile(rb"<(?:\w+:)?row\b[^>]{0,200}?\br=\"([0-9]{1,9})\"")
_REF = re.compile(r"\$?([A-Za-z]{1,4})\$?([0-9]{1,9})")
_LETTERS, _DIGITS = itemgetter(0), itemgetter(1)
SCAN_CHUNK = 1 << 20
SCAN_OVERLAP = 512


def _column_number(letters: bytes | str) -> int:
    number = 0
    for char in letters.upper() if isinstance(letters, str) else letters.decode().upper():
        number = number * 26 + (ord(char) - 64)
    return number


def _sheet_limits(max_rows: int) -> tuple[int, int, int, int]:
    return (
        max_rows + HEADER_SEARCH_ROWS,
        int(getattr(settings, "SHEET_MAX_COLUMNS", 256)),
        int(getattr(settings, "SHEET_MAX_CELLS", 30_000_000)),
        int(getattr(settings, "SHEET_MAX_CELL_BYTES", 131_072)),
    )


def _check_extent(rows: int, columns: int, max_rows: int) -> None:
    row_limit, column_limit, cell_limit, _ = _sheet_limits(max_rows)
    if rows > row_limit or columns > column_limit or rows * columns > cell_limit:
        raise FileProblem("sheet_too_large", detail=f"{rows:,} × {columns:,}")


def _scan_chunks(handle):
    """(previous tail, chunk) of an inflated entry: a reference that spans
    the boundary is still seen in tail + chunk."""
    tail = b""
    while True:
        chunk = handle.read(SCAN_CHUNK)
        if not chunk:
            return
        yield tail, chunk
        tail = chunk[-SCAN_OVERLAP:]


IN_TAG = -1  # a buffer that ends inside a tag


def _check_text_runs(buffer: bytes, carry: int, cell_limit: int) -> int:
    """The longest run of text between two tags is the longest cell. Returns
    the length of the run still open at the end of `buffer` (IN_TAG when it
    ends inside a tag); `carry` is that of the buffer before.

    Each piece between two '<' is a tag's rest, then its text after the
    first '>'; a piece without '>' is inside a tag. No piece longer than the
    limit means no run is (one C pass); only then are pieces looked into."""
    if carry == IN_TAG:
        end = buffer.find(b">")
        if end < 0:
            return IN_TAG
        buffer, carry = buffer[end + 1 :], 0
    pieces = buffer.split(b"<")
    first = carry + len(pieces[0])
    if first > cell_limit:
        raise FileProblem("sheet_too_large", detail=f"{first // 1024:,} KB")
    if len(pieces) == 1:
        return first
    if max(map(len, pieces)) > cell_limit:
        for piece in pieces[1:]:
            run = _text_after_tag(piece)
            if run > cell_limit:
                raise FileProblem("sheet_too_large", detail=f"{run // 1024:,} KB")
    return _text_after_tag(pieces[-1])


def _text_after_tag(piece: bytes) -> int:
    end = piece.find(b">")
    return IN_TAG if end < 0 else len(piece) - end - 1


def check_sheet_extent(archive: zipfile.ZipFile, kind: str, max_rows: int) -> None:
    """Refuse a spreadsheet whose declared or actual extent (highest row and
    column, rows × columns) or longest cell is beyond the limits, from the
    XML as it streams by: nothing dense is built, memory stays constant."""
    if kind == "ods":
        _check_ods_extent(archive, max_rows)
        return
    _, _, _, cell_limit = _sheet_limits(max_rows)
    for info in archive.infolist():
        name = info.filename
        if not name.lower().endswith(".xml") or not name.startswith("xl/"):
            continue
        is_sheet = name.startswith("xl/worksheets/")
        max_row = max_column = 0
        carry = 0
        seen_dimension = False
        with archive.open(info) as handle:
            for tail, chunk in _scan_chunks(handle):
                carry = _check_text_runs(chunk, carry, cell_limit)
                if not is_sheet:
                    continue
                buffer = tail + chunk
                if not seen_dimension:
                    found = _DIMENSION.search(buffer)
                    if found:
                        seen_dimension = True
                        refs = _REF.findall(found.group(1).decode("ascii", "replace"))
                        if refs:
                            letters, digits = refs[-1]
                            _check_extent(int(digits), _column_number(letters), max_rows)
                rows = _ROW_REF.findall(buffer)
                if rows:
                    max_row = max(max_row, max(map(int, rows)))
                cells = _CELL_REF.findall(buffer)
                if cells:
                    # map/itemgetter: C loops over a chunk's ~280,000 cells.
                    max_row = max(max_row, max(map(int, map(_DIGITS, cells))))
                    columns = set(map(_LETTERS, cells))
                    max_column = max(max_column, max(map(_column_number, columns)))
                if max_row or max_column:
                    _check_extent(max_row, max(max_column, 1), max_rows)


_ODS_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_ODS_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"


def _check_ods_extent(archive: zipfile.ZipFile, max_rows: int) -> None:
    """ODS repeats rows and cells by count (``number-rows-repeated``,
    ``number-columns-repeated``): a few bytes can stand for a million rows.
    Walk content.xml as a stream and add up the rows and columns that carry
    something (trailing empty repeats are what LibreOffice always writes and
    cost nothing)."""
    from xml.etree.ElementTree import iterparse  # noqa: S405 - expat, entities bounded

    _, _, _, cell_limit = _sheet_limits(max_rows)
    if "content.xml" not in archive.namelist():
        return
    row_tag, cell_tag = _ODS_TABLE + "table-row", _ODS_TABLE + "table-cell"
    covered = _ODS_TABLE + "covered-table-cell"
    table_tag = _ODS_TABLE + "table"
    rows_repeat = _ODS_TABLE + "number-rows-repeated"
    columns_repeat = _ODS_TABLE + "number-columns-repeated"
    value_type = _ODS_OFFICE + "value-type"
    with archive.open("content.xml") as handle:
        extent_rows = 0
        width = 0
        for event, element in iterparse(handle, events=("start", "end")):  # noqa: S314
            if event == "start":
                if element.tag == table_tag:
                    extent_rows = 0
                continue
            if element.tag == row_tag:
                column = 0
                last_filled = 0
                for cell in element:
                    if cell.tag not in (cell_tag, covered):
                        continue
                    repeat = int(cell.get(columns_repeat) or 1)
                    column += repeat
                    text = "".join(cell.itertext())
                    if len(text.encode("utf-8")) > cell_limit:
                        raise FileProblem("sheet_too_large", detail=f"{len(text) // 1024:,} KB")
                    if text or cell.get(value_type):
                        last_filled = column
                repeat = int(element.get(rows_repeat) or 1)
                if last_filled:
                    extent_rows += repeat
                    width = max(width, last_filled)
                    _check_extent(extent_rows, width, max_rows)
                else:
                    # Empty rows count only when something follows them.
                    extent_rows += min(repeat, max_rows + HEADER_SEARCH_ROWS + 1)
                element.clear()
            elif element.tag == table_tag:
                element.clear()
