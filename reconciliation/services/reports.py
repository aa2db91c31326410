"""The error report of an upload, as XLSX and CSV (Wade downloads it from
the upload page; PLS from the API).

One line per problem: file-level errors first, then every row error in row
order, then the warnings. Values are already masked by the validator; every
cell still goes through ``privacy.safe_cell`` so nothing in a report runs as
a formula when Excel opens it. The CSV always holds the full list; the XLSX
holds it up to ``UPLOAD_REPORT_XLSX_MAX_ROWS`` lines (a million-line
workbook takes minutes to write and Excel struggles to open it) and then
says where the rest is.
"""

import csv
import io
import os
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from reconciliation.privacy import safe_cell
from reconciliation.validation import ValidationResult, describe, message_params

REPORT_DIR = "reports"
CHUNK = 50_000


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


def report_lines(result: ValidationResult):
    """Every line of the report, as lists of plain values (not yet made safe)."""
    kind_file, kind_row, kind_warning = _("檔案"), _("資料列"), _("提醒")
    for error in result.file_errors:
        yield [
            kind_file,
            "",
            error.get("column", ""),
            error["code"],
            "",
            error["message"],
            error["hint"],
        ]
    errors = result.row_errors
    for start in range(0, len(errors), CHUNK):
        chunk = errors.iloc[start : start + CHUNK]
        for row, column, code, value in chunk.itertuples(index=False, name=None):
            message, hint = describe(
                code, {"column": column, "value": value, **message_params(code, value)}
            )
            yield [kind_row, int(row), column, code, value, message, hint]
    for warning in result.warnings:
        rows = ", ".join(str(r) for r in warning.get("rows", []))
        yield [kind_warning, rows, "", warning["code"], "", warning["message"], ""]


def report_paths(upload_id) -> tuple[Path, Path]:
    base = Path(settings.DATA_DIR) / REPORT_DIR
    return base / f"{upload_id}.xlsx", base / f"{upload_id}.csv"


def write_reports(*, upload_id, original_name: str, result: ValidationResult) -> str:
    """Write both files; returns the XLSX path relative to DATA_DIR."""
    xlsx_path, csv_path = report_paths(upload_id)
    xlsx_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(csv_path, _csv_bytes(result))
    _atomic_write(xlsx_path, _xlsx_bytes(result, original_name))
    return str(xlsx_path.relative_to(Path(settings.DATA_DIR)))


def _csv_bytes(result: ValidationResult) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in report_headers()])
    for line in report_lines(result):
        writer.writerow([safe_cell(v) for v in line])
    # BOM: Excel on Windows then opens it as UTF-8, Chinese intact.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _xlsx_bytes(result: ValidationResult, original_name: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    limit = int(getattr(settings, "UPLOAD_REPORT_XLSX_MAX_ROWS", 200_000))
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("錯誤報告"))
    for letter, width in zip("ABCDEFG", (8, 10, 16, 22, 26, 48, 60), strict=True):
        sheet.column_dimensions[letter].width = width
    title = WriteOnlyCell(sheet, value=safe_cell(_("上傳檔案：%(name)s") % {"name": original_name}))
    title.font = Font(bold=True)
    sheet.append([title])
    summary = _(
        "結果：%(status)s；檔案錯誤 %(files)s 項，資料列錯誤 %(rows)s 筆，提醒 %(warnings)s 項。"
    ) % {
        "status": result.schema_status,
        "files": len(result.file_errors),
        "rows": f"{result.row_error_count:,}",
        "warnings": len(result.warnings),
    }
    sheet.append([safe_cell(summary)])
    header = []
    for text in report_headers():
        cell = WriteOnlyCell(sheet, value=safe_cell(text))
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    written = 0
    for line in report_lines(result):
        if written >= limit:
            sheet.append(
                [
                    safe_cell(
                        _("（只列出前 %(limit)s 筆；完整清單請下載 CSV 報告。）")
                        % {"limit": f"{limit:,}"}
                    )
                ]
            )
            break
        sheet.append([safe_cell(v) for v in line])
        written += 1
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(path.suffix + ".part")
    temporary.write_bytes(data)
    os.replace(temporary, path)
