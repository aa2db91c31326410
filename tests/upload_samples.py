"""Order/payment export files made in the tests (never downloaded): CSV in
every encoding and layout the readers accept, XLSX with title rows, and the
broken kinds the validator refuses."""

import csv
import hashlib
import io
import zipfile
from datetime import datetime

from openpyxl import Workbook

from reconciliation import schema

HEADERS = list(schema.COLUMN_NAMES)
ZH_HEADERS = [
    "訂單編號",
    "建立時間",
    "客戶代碼",
    "課程代碼",
    "金額",
    "付款狀態",
    "付款單號",
    "折扣碼",
    "直播場次",
    "備註",
]


def key(n: int) -> str:
    return hashlib.sha256(f"customer-{n}".encode()).hexdigest()


def good_row(n: int = 1, **overrides) -> dict:
    row = {
        "order_id": f"KOL-20260512-{n:06d}",
        "created_at": f"2026-05-{12 + n % 10:02d} 20:{n % 60:02d}:00",
        "customer_key": key(n),
        "program_id": "TRAIN-28000",
        "amount": "28000",
        "payment_status": ("paid", "pending", "refunded")[n % 3],
        "payment_ref": f"PAY-{880000 + n}",
        "discount_code": "LIVE512" if n % 2 else "",
        "source_event": "LIVE-0512",
        "owner_note": "",
    }
    row.update(overrides)
    return row


def good_rows(count: int, start: int = 1) -> list[dict]:
    return [good_row(n) for n in range(start, start + count)]


def csv_text(
    rows: list[dict],
    headers: list[str] | None = None,
    *,
    delimiter: str = ",",
    title_rows: tuple[str, ...] = (),
    columns: list[str] | None = None,
) -> str:
    """`columns` picks which row keys go out (in order), `headers` how they
    are titled."""
    columns = columns or HEADERS
    headers = headers or columns
    buffer = io.StringIO()
    for title in title_rows:
        buffer.write(title + "\r\n")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return buffer.getvalue()


def csv_bytes(rows, headers=None, *, encoding="utf-8", bom=False, **kwargs) -> bytes:
    text = csv_text(rows, headers, **kwargs)
    data = text.encode(encoding)
    if bom:
        data = {"utf-8": b"\xef\xbb\xbf", "utf-16-le": b"\xff\xfe"}[encoding] + data
    return data


def xlsx_bytes(
    rows: list[dict],
    headers: list[str] | None = None,
    *,
    title_rows: tuple[tuple, ...] = (),
    typed: bool = True,
    cover_sheet: bool = False,
    columns: list[str] | None = None,
) -> bytes:
    """An XLSX as Excel users make them: optional cover sheet first, title
    rows above the header, real dates and numbers when `typed`."""
    columns = columns or HEADERS
    headers = headers or columns
    workbook = Workbook()
    sheet = workbook.active
    if cover_sheet:
        sheet.title = "封面"
        sheet.append(["Kolable 5/12-5/21 訂單付款匯出"])
        sheet.append(["說明：資料在下一個工作表"])
        sheet = workbook.create_sheet("orders")
    for title in title_rows:
        sheet.append(list(title))
    sheet.append(headers)
    for row in rows:
        values = []
        for column in columns:
            value = row.get(column, "")
            if typed and column == "created_at" and isinstance(value, str) and len(value) == 19:
                value = datetime.fromisoformat(value)
            elif typed and column == "amount" and isinstance(value, str):
                try:
                    value = float(value) if "." in value else int(value)
                except ValueError:
                    pass
            values.append(value)
        sheet.append(values)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def zip_bomb_xlsx(inflated_mb: int = 8) -> bytes:
    """Looks like an XLSX; one entry declares megabytes of zeros that
    compress about a thousandfold."""
    return zip_bytes(
        {
            "[Content_Types].xml": b"<Types/>",
            "xl/workbook.xml": b"<workbook/>",
            "xl/worksheets/sheet1.xml": b"\0" * (inflated_mb * 1_048_576),
        }
    )


def encrypted_xlsx() -> bytes:
    """What Excel writes for a password-protected workbook: an OLE compound
    file holding EncryptionInfo and EncryptedPackage streams."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504
    directory = "EncryptionInfo".encode("utf-16-le") + b"\0" * 50
    directory += "EncryptedPackage".encode("utf-16-le") + b"\0" * 50
    return header + directory + b"\x13" * 2048


def legacy_garbage_xls() -> bytes:
    """An OLE container that is no readable workbook."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00\x01" * 1000


def ods_bytes(rows: list[dict], headers: list[str] | None = None) -> bytes:
    """A minimal OpenDocument spreadsheet (what LibreOffice saves), strings
    and numbers as typed cells."""
    from xml.sax.saxutils import escape

    def cell(value):
        if isinstance(value, (int, float)):
            return (
                f'<table:table-cell office:value-type="float" office:value="{value}">'
                f"<text:p>{value}</text:p></table:table-cell>"
            )
        return (
            f'<table:table-cell office:value-type="string"><text:p>{escape(str(value))}'
            "</text:p></table:table-cell>"
        )

    headers = headers or HEADERS
    lines = ["<table:table-row>" + "".join(cell(h) for h in headers) + "</table:table-row>"]
    for row in rows:
        values = [
            int(row[c]) if c == "amount" and str(row.get(c, "")).isdigit() else row.get(c, "")
            for c in HEADERS
        ]
        lines.append("<table:table-row>" + "".join(cell(v) for v in values) + "</table:table-row>")
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        '<office:body><office:spreadsheet><table:table table:name="orders">'
        + "".join(lines)
        + "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet"
        )
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
