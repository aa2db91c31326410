"""Bytes → a table of strings, plus the file-level problems.

The type comes from the bytes, never from the name or the Content-Type:

* XLSX: a zip holding ``[Content_Types].xml`` and ``xl/workbook.xml``;
  ODS: a zip whose ``mimetype`` says so. Both are checked for zip bombs
  (declared sizes, compression ratio, entry count) before anything is
  inflated, then for their extent as the XML streams by (the declared
  dimension, the highest cell reference, rows × columns, ODS repeat counts,
  the longest cell), and only then read with python-calamine — in a child
  process with an address-space limit (``sheet_reader.py``), so a trick the
  cheap facts miss costs the child, not this process.
* An OLE container (``D0 CF 11 E0``) is either a password-protected XLSX
  (it holds an ``EncryptedPackage`` stream) or a legacy ``.xls``; the latter
  is accepted only when calamine reads it cleanly.
* Known binary formats (PDF, images, archives…) and anything with NUL bytes
  are refused; everything else is CSV: strict UTF-8 (BOM stripped), UTF-16
  with a BOM (Excel's "Unicode text"), else CP950/Big5 as Taiwanese Excel
  writes it. The delimiter (``,`` ``;`` tab) and the header row (which may
  sit below title rows) are found together: the row, among the first few,
  that names the most schema columns.

Every cell comes back as a string ('' when empty) in an Arrow-backed pandas
frame whose columns are numbered by position; ``row_numbers`` holds the row
each data row has in Excel (title and header rows counted, first row is 1).
Mapping headers to schema columns and every check on values is
``validation.py``'s job. Problems are raised as ``FileProblem(code, **params)``
and nothing else escapes ``read_upload``.
"""

import codecs
import csv
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc  # noqa: F401 - pa.ipc
from django.conf import settings

from reconciliation.file_problem import FileProblem
from reconciliation.ndjson_table import NdjsonProblem, read_records
from reconciliation.sheet_extent import check_sheet_extent
from reconciliation.sheet_reader import HEADER_SEARCH_ROWS, MEMORY_ERROR_EXIT, find_header

BASE_DIR = Path(__file__).resolve().parent.parent

logger = logging.getLogger(__name__)

STRING = pd.ArrowDtype(pa.string())
SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t")

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
BINARY_MAGICS = (
    (b"%PDF", "PDF"),
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"RIFF", "RIFF"),
    (b"\x1f\x8b", "gzip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!", "RAR"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ", "xz"),
    (b"\x7fELF", "ELF"),
    (b"MZ", "EXE"),
    (b"{\\rtf", "RTF"),
    (b"<?xml", "XML"),
)


@dataclass
class RawTable:
    kind: str  # csv | xlsx | xls | ods
    headers: list[str]
    frame: pd.DataFrame  # columns 0..n-1, Arrow strings, '' for empty
    row_numbers: np.ndarray  # int64, the Excel row of each frame row
    header_row: int  # the Excel row of the header
    encoding: str = ""
    delimiter: str = ""
    sheet: str = ""
    # CSV records whose field count differs from the header: (row, fields).
    ragged_rows: list[tuple[int, int]] = field(default_factory=list)


def _limit_mb(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def read_upload(path: Path, *, max_rows: int | None = None) -> RawTable:
    """Read a kept upload. Raises FileProblem and nothing else."""
    max_rows = max_rows if max_rows is not None else int(settings.MAX_ROWS)
    try:
        return _read(Path(path), max_rows)
    except FileProblem:
        raise
    except MemoryError:
        raise FileProblem(
            "too_large", size_mb=_size_mb(path), limit_mb=settings.MAX_UPLOAD_MB
        ) from None
    except Exception as exc:  # noqa: BLE001 - a parser's crash is the file's problem
        # The exception text may quote cell contents, so only its type is logged.
        logger.warning("unreadable upload %s: %s", Path(path).name, type(exc).__name__)
        raise FileProblem("unreadable_file", reason="damaged") from exc


def _size_mb(path) -> float:
    try:
        return round(Path(path).stat().st_size / 1_048_576, 1)
    except OSError:
        return 0.0


def sniff_kind(head: bytes) -> str:
    """csv | zip | ole | a binary format's name (refused)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    if head.startswith(OLE_MAGIC):
        return "ole"
    for magic, name in BINARY_MAGICS:
        if head.startswith(magic):
            return name
    return "csv"


def _read(path: Path, max_rows: int) -> RawTable:
    size = path.stat().st_size
    if size == 0:
        raise FileProblem("empty_file")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    kind = sniff_kind(head)
    if kind == "zip":
        return _read_zip(path, max_rows)
    if kind == "ole":
        return _read_ole(path, max_rows)
    if kind != "csv":
        raise FileProblem("unsupported_type", kind=kind)
    if head.lstrip()[:1] == b"{":
        return read_ndjson(path, max_rows)
    return _read_csv(path.read_bytes(), max_rows)


def read_ndjson(path: Path, max_rows: int) -> RawTable:
    """One JSON object a line (what a sync keeps): the same table of strings
    as a CSV (``ndjson_table.read_records``); a record's line is its row."""
    try:
        headers, columns, count = read_records(path, max_rows=max_rows)
    except NdjsonProblem as problem:
        raise FileProblem(problem.code, **problem.params) from None
    frame = pd.DataFrame({i: pd.Series(column, dtype=STRING) for i, column in enumerate(columns)})
    return RawTable(
        kind="ndjson",
        headers=headers,
        frame=frame,
        row_numbers=np.arange(1, count + 1, dtype=np.int64),
        header_row=0,
        encoding="utf-8",
    )


# --- Spreadsheets -------------------------------------------------------------


def check_zip_bomb(archive: zipfile.ZipFile) -> None:
    """Refuse before inflating anything: too many entries, a total declared
    size beyond MAX_XLSX_UNCOMPRESSED_MB, or an entry whose declared ratio is
    beyond XLSX_MAX_COMPRESSION_RATIO (small entries may compress as they
    like: they cannot hurt)."""
    limit = _limit_mb("MAX_XLSX_UNCOMPRESSED_MB", 1024) * 1_048_576
    ratio_limit = float(getattr(settings, "XLSX_MAX_COMPRESSION_RATIO", 200))
    entries = archive.infolist()
    if len(entries) > int(getattr(settings, "XLSX_MAX_ENTRIES", 10_000)):
        raise FileProblem("zip_bomb", detail=f"{len(entries)} entries")
    total = 0
    for info in entries:
        total += info.file_size
        if info.file_size > 1_048_576 and info.file_size > ratio_limit * max(info.compress_size, 1):
            raise FileProblem(
                "zip_bomb", detail=f"1:{info.file_size // max(info.compress_size, 1)}"
            )
    if total > limit:
        raise FileProblem("zip_bomb", detail=f"{total // 1_048_576} MB")


def _read_zip(path: Path, max_rows: int) -> RawTable:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileProblem("unreadable_file", reason="truncated") from exc
    with archive:
        names = set(archive.namelist())
        if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
            kind = "xlsx"
        elif "mimetype" in names and archive.read("mimetype").strip() == ODS_MIMETYPE:
            kind = "ods"
        else:
            raise FileProblem("unsupported_type", kind="ZIP")
        check_zip_bomb(archive)
        # The reader child starts now and the extent check runs beside it
        # (the two cores): an extent refused stops the child.
        with _SheetReader(path, kind, max_rows) as reader:
            check_sheet_extent(archive, kind, max_rows)
            return reader.table()


def _read_ole(path: Path, max_rows: int) -> RawTable:
    data = path.read_bytes()
    if ENCRYPTED_PACKAGE in data:
        raise FileProblem("encrypted_xlsx")
    try:
        with _SheetReader(path, "xls", max_rows) as reader:
            return reader.table()
    except FileProblem as exc:
        if exc.code == "too_many_rows":
            raise
        # Neither a readable .xls nor a recognisable encrypted workbook.
        raise FileProblem("encrypted_xlsx") from exc


class _SheetReader:
    """The first worksheet whose top rows carry the schema headers, read by
    ``sheet_reader`` in a child process under an address-space limit.
    Started on entering; ``table()`` waits for its answer; leaving without
    one (an exception) kills the child."""

    def __init__(self, path: Path, kind: str, max_rows: int):
        self.path, self.kind = path, kind
        self.memory_mb = int(getattr(settings, "SHEET_READER_MEMORY_MB", 2048))
        self.timeout = float(getattr(settings, "SHEET_READER_TIMEOUT_SECONDS", 600))
        self.folder = tempfile.TemporaryDirectory(prefix="sheet-")
        self.out = Path(self.folder.name) / "sheet.arrow"
        env = {
            key: value
            for key, value in os.environ.items()
            if key in ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME")
        }
        # The system allocator: jemalloc/mimalloc reserve address space up front.
        env.update(
            PYTHONPATH=str(BASE_DIR),
            ARROW_DEFAULT_MEMORY_POOL="system",
            OMP_NUM_THREADS="1",
            RAYON_NUM_THREADS="1",
        )
        self.args = [
            sys.executable,
            "-m",
            "reconciliation.sheet_reader",
            str(path),
            str(self.out),
            kind,
            str(max_rows),
            str(self.memory_mb),
        ]
        self.env = env
        self.child = None

    def __enter__(self):
        self.child = subprocess.Popen(  # noqa: S603 - our own module, no shell
            self.args,
            env=self.env,
            cwd=str(BASE_DIR),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return self

    def __exit__(self, *exc_info):
        if self.child.poll() is None:
            self.child.kill()
            self.child.communicate()
        self.folder.cleanup()

    def table(self) -> RawTable:
        try:
            stdout, stderr = self.child.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise FileProblem("sheet_too_large", detail=f"> {self.timeout:.0f} s") from None
        answer = _child_answer(stdout)
        returncode = self.child.returncode
        if returncode != 0 or answer is None:
            logger.warning("spreadsheet reader for %s ended with %s", self.path.name, returncode)
            # Killed or aborted by the address-space limit (a Rust allocation
            # failure aborts), or a MemoryError in Python.
            if (
                returncode < 0
                or returncode == MEMORY_ERROR_EXIT
                or b"MemoryError" in stderr[-4096:]
            ):
                raise FileProblem("sheet_too_large", detail=f"> {self.memory_mb:,} MB")
            raise FileProblem("unreadable_file", reason="damaged")
        if not answer.get("ok"):
            raise FileProblem(answer.get("code", "unreadable_file"), **answer.get("params", {}))
        with pa.OSFile(str(self.out), "rb") as source:  # a copy: the folder goes next
            table = pa.ipc.open_file(source).read_all()
        return _raw_sheet(self.kind, answer, table)


def _raw_sheet(kind: str, answer: dict, table) -> RawTable:
    headers = answer["headers"]
    index = int(answer["header_index"])
    rows = table.num_rows
    columns = {
        position: pd.array(table.column(f"c{position}").combine_chunks(), dtype=STRING)
        for position in range(len(headers))
    }
    frame = pd.DataFrame(columns, index=pd.RangeIndex(rows))
    return RawTable(
        kind=kind,
        headers=headers,
        frame=frame,
        row_numbers=np.arange(index + 2, index + 2 + rows, dtype=np.int64),
        header_row=index + 1,
        sheet=answer.get("sheet", ""),
    )


def _child_answer(stdout: bytes) -> dict | None:
    try:
        line = stdout.decode("utf-8").strip().splitlines()[-1]
        answer = json.loads(line)
    except (UnicodeDecodeError, IndexError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


# --- CSV ------------------------------------------------------------------------


def _decode_head(head: bytes) -> tuple[str, str]:
    """(encoding, text of the first bytes) — strict UTF-8 first, then CP950."""
    for encoding in ("utf-8", "cp950"):
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            return encoding, decoder.decode(head, final=False)
        except UnicodeDecodeError:
            continue
    raise FileProblem("unreadable_file", reason="encoding")


def _to_utf8(data: bytes) -> tuple[bytes, str]:
    """Strip the BOM; UTF-16 becomes UTF-8. Returns (bytes, encoding guess)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:], "utf-8-sig"
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[2:].decode(encoding).encode("utf-8"), "utf-16"
            except UnicodeDecodeError as exc:
                raise FileProblem("unreadable_file", reason="encoding") from exc
    return data, ""


def _sniff_layout(text: str) -> tuple[str, int, list[str], int]:
    """(delimiter, header record index, header cells, physical lines up to and
    including the header) from the first lines of the file."""
    best = None
    for delimiter in DELIMITERS:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        rows, lines = [], []
        try:
            for row in reader:
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) >= HEADER_SEARCH_ROWS:
                    break
        except csv.Error:
            pass
        if not rows:
            continue
        index, score = find_header(rows)
        key = (score, len(rows[index]))
        if best is None or key > best[0]:
            best = (key, delimiter, index, rows[index], lines[index])
    if best is None:
        raise FileProblem("empty_file")
    _, delimiter, index, header, lines = best
    return delimiter, index, header, lines


def _line_offset(data: bytes, lines: int) -> int:
    """Byte offset just after the first `lines` physical lines."""
    newline = b"\n" if b"\n" in data[:SNIFF_BYTES] or b"\r" not in data[:SNIFF_BYTES] else b"\r"
    offset = 0
    for _ in range(lines):
        found = data.find(newline, offset)
        if found < 0:
            return len(data)
        offset = found + 1
    return offset


def _read_csv(data: bytes, max_rows: int) -> RawTable:
    if b"\x00" in data[:SNIFF_BYTES] and not data.startswith(
        (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    ):
        raise FileProblem("unsupported_type", kind="binary")
    data, bom_encoding = _to_utf8(data)
    if not _SOMETHING.search(data):
        raise FileProblem("empty_file")
    encoding, head_text = _decode_head(data[:SNIFF_BYTES])
    if encoding == "cp950":
        data = _cp950_to_utf8(data)
        head_text = data[:SNIFF_BYTES].decode("utf-8", errors="ignore")
    delimiter, header_index, header, header_lines = _sniff_layout(head_text)
    if not any(h.strip() for h in header):
        raise FileProblem("empty_file")
    offset = _line_offset(data, header_lines)
    try:
        frame, ragged = _arrow_csv(data, offset, delimiter, len(header))
    except _NotUtf8:
        # The first bytes were UTF-8 (plain ASCII, most likely) but later ones
        # are not: the whole file is CP950.
        if encoding == "cp950":
            raise FileProblem("unreadable_file", reason="encoding") from None
        encoding = "cp950"
        data = _cp950_to_utf8(data)
        offset = _line_offset(data, header_lines)
        frame, ragged = _arrow_csv(data, offset, delimiter, len(header))
    first = header_index + 2
    ragged_rows = []
    if ragged:
        # Records whose field count differs cannot be placed by the fast
        # reader; the csv module numbers every record exactly.
        frame, ragged_at = _python_csv(data, offset, delimiter, len(header))
        row_numbers = first + frame.pop("__row__").to_numpy(dtype=np.int64)
        ragged_rows = [(first + index, fields) for index, fields in ragged_at]
    else:
        row_numbers = np.arange(first, first + len(frame), dtype=np.int64)
    if len(frame) > max_rows:
        raise FileProblem("too_many_rows", rows=len(frame), limit=max_rows)
    frame.index = pd.RangeIndex(len(frame))
    return RawTable(
        kind="csv",
        headers=[h.strip() for h in header],
        frame=frame,
        row_numbers=row_numbers,
        header_row=header_index + 1,
        encoding=bom_encoding or encoding,
        delimiter=delimiter,
        ragged_rows=ragged_rows,
    )


_SOMETHING = re.compile(rb"[^\s\x00]")


class _NotUtf8(Exception):
    pass


def _cp950_to_utf8(data: bytes) -> bytes:
    try:
        return data.decode("cp950").encode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem("unreadable_file", reason="encoding") from exc


def _arrow_csv(data: bytes, offset: int, delimiter: str, width: int):
    """The fast path: Arrow's multi-threaded reader, every column a string.
    Returns (frame, whether some records had the wrong field count)."""
    names = [f"c{i}" for i in range(width)]
    ragged = []

    def on_invalid(row):
        ragged.append(row.actual_columns)
        return "skip"

    buffer = pa.py_buffer(data).slice(offset)
    if buffer.size == 0:
        return pd.DataFrame({i: pd.array([], dtype=STRING) for i in range(width)}), False
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(buffer),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=8 << 20),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=b'"' in data,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
                check_utf8=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            raise _NotUtf8 from exc
        raise
    frame = pd.DataFrame(
        {i: pd.Series(table.column(name), dtype=STRING) for i, name in enumerate(names)}
    )
    return frame, bool(ragged)


def _python_csv(data: bytes, offset: int, delimiter: str, width: int):
    """The exact path for files with ragged records: every record numbered as
    Excel shows it; records with the wrong field count are set aside."""
    text = data[offset:].decode("utf-8", errors="replace")
    columns: list[list[str]] = [[] for _ in range(width)]
    numbers: list[int] = []
    ragged: list[tuple[int, int]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for record_index, record in enumerate(reader):
        if len(record) != width and any(cell.strip() for cell in record):
            ragged.append((record_index, len(record)))
            continue
        for position in range(width):
            columns[position].append(record[position] if position < len(record) else "")
        numbers.append(record_index)
    frame = pd.DataFrame({i: pd.array(columns[i], dtype=STRING) for i in range(width)})
    frame["__row__"] = np.asarray(numbers, dtype=np.int64)
    return frame, ragged
