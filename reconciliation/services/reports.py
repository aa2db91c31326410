"""The error report of an upload, as XLSX and CSV (Wade downloads it from
the upload page; PLS from the API).

One line per problem: file-level errors first, then the row errors in row
order (the first ROW_ERRORS_REPORTED; beyond that one total line per code,
so a file whose every row is wrong cannot fill the disk), then the
warnings. Values are already
masked by the validator; every text cell still goes through the
formula-injection guard (``privacy.safe_cell``, here applied column-wise)
so nothing in a report runs as a formula when Excel opens it.

A file whose every row has the same mistake has as many error lines as
rows, so both files are built in chunks with vectorised string operations:
the message of a (code, column) pair is made once and each value spliced
in, and the XLSX sheet is streamed as plain SpreadsheetML (inline strings)
into the zip. A cell-by-cell writer (openpyxl, XlsxWriter) needs about a
minute for 200,000 lines on this machine; this needs seconds.
"""

import io
import os
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.utils.translation import gettext as _

from reconciliation.error_codes import describe, message_params
from reconciliation.privacy import FORMULA_PREFIXES, PLAIN_NUMBER, safe_cell
from reconciliation.validation import ValidationResult

REPORT_DIR = "reports"
CHUNK = 50_000
EXCEL_MAX_ROWS = 1_048_576
COLUMNS = ("type", "row", "column", "code", "value", "message", "hint")
WIDTHS = (8, 10, 16, 22, 26, 48, 60)
# Characters XML 1.0 cannot carry; an export can hold them in any cell.
XML_ILLEGAL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{fffe}\x{ffff}]"


def report_headers() -> list[str]:
    return [
        _("類型 type"),
        _("Excel 列號 row"),
        _("欄位 column"),
        _("代碼 code"),
        _("內容（已遮罩）value"),
        _("問題 problem"),
        _("如何修正 how to fix"),
    ]


def report_paths(upload_id) -> tuple[Path, Path]:
    base = Path(settings.DATA_DIR) / REPORT_DIR
    return base / f"{upload_id}.xlsx", base / f"{upload_id}.csv"


def write_reports(*, upload_id, original_name: str, result: ValidationResult) -> str:
    """Write both files; returns the XLSX path relative to DATA_DIR."""
    xlsx_path, csv_path = report_paths(upload_id)
    xlsx_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic(csv_path, lambda handle: _write_csv(handle, result))
    _atomic(xlsx_path, lambda handle: _write_xlsx(handle, result, original_name))
    return str(xlsx_path.relative_to(Path(settings.DATA_DIR)))


# --- The lines -------------------------------------------------------------------------


def report_chunks(result: ValidationResult):
    """The report's lines as DataFrames of COLUMNS ('row' is an int, 0 for
    lines that are not about one row), not yet made formula-safe."""
    kind_file, kind_row, kind_warning = _("檔案"), _("資料列"), _("提醒")
    if result.file_errors:
        yield pd.DataFrame(
            [
                [kind_file, 0, e.get("column", ""), e["code"], "", e["message"], e["hint"]]
                for e in result.file_errors
            ],
            columns=COLUMNS,
        )
    errors = result.row_errors
    for start in range(0, len(errors), CHUNK):
        yield _row_error_lines(errors.iloc[start : start + CHUNK], kind_row)
    if result.row_errors_truncated:
        # The rest are counted, not described: one line per code.
        kind_total = _("合計")
        yield pd.DataFrame(
            [
                [
                    kind_total,
                    0,
                    "",
                    code,
                    f"{count}",
                    _("%(code)s 共 %(count)s 筆；本報告只列出前 %(shown)s 筆錯誤。")
                    % {"code": code, "count": f"{count:,}", "shown": f"{len(errors):,}"},
                    "",
                ]
                for code, count in sorted(result.row_error_totals.items())
            ],
            columns=COLUMNS,
        )
    if result.warnings:
        yield pd.DataFrame(
            [
                [
                    kind_warning,
                    0,
                    "",
                    w["code"],
                    ", ".join(str(r) for r in w.get("rows", [])),
                    w["message"],
                    "",
                ]
                for w in result.warnings
            ],
            columns=COLUMNS,
        )


def _row_error_lines(chunk: pd.DataFrame, kind: str) -> pd.DataFrame:
    values = chunk["value"].astype(object).fillna("").astype(str)
    messages = pd.Series("", index=chunk.index, dtype=object)
    hints = pd.Series("", index=chunk.index, dtype=object)
    for (code, column), group in chunk.groupby(["code", "column"], sort=False):
        where = group.index
        marker = "\x00"
        message, hint = describe(code, {"column": column, "value": marker})
        hints[where] = hint
        if message_params(code, "1/1") or message.count(marker) > 1:
            # Parameters hidden in the value: described line by line (rare).
            messages[where] = [
                describe(code, {"column": column, "value": v, **message_params(code, v)})[0]
                for v in values[where]
            ]
        elif marker in message:
            before, _, after = message.partition(marker)
            messages[where] = before + values[where] + after
        else:
            messages[where] = message
    return pd.DataFrame(
        {
            "type": kind,
            "row": chunk["row"].astype("int64"),
            "column": chunk["column"].astype(str),
            "code": chunk["code"].astype(str),
            "value": values,
            "message": messages,
            "hint": hints,
        }
    )


def _formula_safe(text: pd.Series) -> pd.Series:
    """safe_cell over a column: text Excel would run as a formula gets a
    leading apostrophe."""
    text = text.astype(object).fillna("").astype(str)
    risky = text.str.startswith(FORMULA_PREFIXES) & ~text.str.fullmatch(PLAIN_NUMBER.pattern)
    if risky.any():
        text = text.where(~risky, "'" + text)
    return text


# --- CSV ---------------------------------------------------------------------------------


def _write_csv(handle, result: ValidationResult) -> None:
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    # BOM: Excel on Windows then opens it as UTF-8, Chinese intact.
    text.write("\ufeff")
    pd.DataFrame([[safe_cell(h) for h in report_headers()]]).to_csv(
        text, header=False, index=False, lineterminator="\r\n"
    )
    for chunk in report_chunks(result):
        out = chunk.copy()
        for column in ("type", "column", "code", "value", "message", "hint"):
            out[column] = _formula_safe(out[column])
        out["row"] = out["row"].map(lambda r: str(r) if r else "")
        out.to_csv(text, header=False, index=False, lineterminator="\r\n")
    text.flush()
    text.detach()


# --- XLSX ----------------------------------------------------------------------------------

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
    "</Relationships>"
)
# Style 1 is bold (title and header rows).
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _workbook_xml(sheet_name: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name="{escape(sheet_name)}" sheetId="1" r:id="rId1"/></sheets>'
        "</workbook>"
    )


def _cell(ref: str, text: str, style: int = 0) -> str:
    s = f' s="{style}"' if style else ""
    return (
        f'<c r="{ref}" t="inlineStr"{s}><is><t xml:space="preserve">{_xml_text(text)}</t></is></c>'
    )


def _xml_text(text: str) -> str:
    return escape(pc.replace_substring_regex(pa.array([str(text)]), XML_ILLEGAL, "")[0].as_py())


def _write_xlsx(handle, result: ValidationResult, original_name: str) -> None:
    letters = "ABCDEFG"
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _workbook_xml(_("錯誤報告")))
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/styles.xml", _STYLES)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            head = [
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                '<sheetViews><sheetView workbookViewId="0"><pane ySplit="3" topLeftCell="A4" '
                'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews><cols>'
            ]
            head += [
                f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
                for i, w in enumerate(WIDTHS, start=1)
            ]
            head.append("</cols><sheetData>")
            title = safe_cell(_("上傳檔案：%(name)s") % {"name": original_name})
            summary = safe_cell(
                _(
                    "結果：%(status)s；檔案錯誤 %(files)s 項，資料列錯誤 %(rows)s 筆，提醒 %(warnings)s 項。"
                )
                % {
                    "status": result.schema_status,
                    "files": len(result.file_errors),
                    "rows": f"{result.row_error_count:,}",
                    "warnings": len(result.warnings),
                }
            )
            head.append(f'<row r="1">{_cell("A1", title, 1)}</row>')
            head.append(f'<row r="2">{_cell("A2", summary)}</row>')
            head.append(
                '<row r="3">'
                + "".join(
                    _cell(f"{letters[i]}3", safe_cell(h), 1) for i, h in enumerate(report_headers())
                )
                + "</row>"
            )
            sheet.write("".join(head).encode("utf-8"))
            next_row = 4
            for chunk in report_chunks(result):
                room = EXCEL_MAX_ROWS - next_row
                if room <= 0:
                    break
                if len(chunk) > room:
                    chunk = chunk.iloc[: room - 1]
                    sheet.write(_rows_xml(chunk, next_row))
                    next_row += len(chunk)
                    note = safe_cell(_("（Excel 一張工作表放不下全部；完整清單請下載 CSV 報告。）"))
                    sheet.write(f'<row r="{next_row}">{_cell(f"A{next_row}", note)}</row>'.encode())
                    next_row += 1
                    break
                sheet.write(_rows_xml(chunk, next_row))
                next_row += len(chunk)
            sheet.write(b"</sheetData></worksheet>")


def _rows_xml(chunk: pd.DataFrame, first_row: int) -> bytes:
    """One chunk of lines as <row> elements, built column-wise in Arrow."""
    n = len(chunk)
    numbers = pa.array(np.arange(first_row, first_row + n).astype(str))
    parts = [pc.binary_join_element_wise('<row r="', numbers, '">', "")]
    for index, column in enumerate(COLUMNS):
        letter = "ABCDEFG"[index]
        ref = pc.binary_join_element_wise(letter, numbers, "")
        if column == "row":
            row = chunk["row"].to_numpy()
            shown = pa.array(np.where(row > 0, row.astype(str), ""))
            numeric = pc.binary_join_element_wise('<c r="', ref, '"><v>', shown, "</v></c>", "")
            parts.append(pc.if_else(pc.equal(shown, ""), "", numeric))
            continue
        text = pa.array(_formula_safe(chunk[column]).to_numpy(dtype=object), pa.string())
        text = pc.replace_substring_regex(text, XML_ILLEGAL, "")
        text = pc.replace_substring(text, "&", "&amp;")
        text = pc.replace_substring(text, "<", "&lt;")
        text = pc.replace_substring(text, ">", "&gt;")
        parts.append(
            pc.binary_join_element_wise(
                '<c r="',
                ref,
                '" t="inlineStr"><is><t xml:space="preserve">',
                text,
                "</t></is></c>",
                "",
            )
        )
    parts.append(pa.array(["</row>"] * n))
    rows = pc.binary_join_element_wise(*parts, "")
    return "".join(rows.to_pylist()).encode("utf-8")


def _atomic(path: Path, write) -> None:
    temporary = path.with_suffix(path.suffix + ".part")
    with temporary.open("wb") as handle:
        write(handle)
    os.replace(temporary, path)
