"""A hostile-file corpus, generated: each builder returns the bytes of one
file an attacker (or a broken exporter) could send. Small on the wire, most
of them ask a naive reader for gigabytes."""

import io
import zipfile

from tests import upload_samples as samples

HEADER = samples.HEADERS
CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    b"</Types>"
)
ROOT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    b"</Relationships>"
)
WORKBOOK = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    b'<sheets><sheet name="orders" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    b"</Relationships>"
)


def _column(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def raw_xlsx(rows_xml: str, *, dimension: str | None = None) -> bytes:
    """An XLSX written by hand: the header row, then `rows_xml` as given."""
    header = "".join(_inline(f"{_column(i + 1)}1", h) for i, h in enumerate(HEADER))
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'{dim}<sheetData><row r="1">{header}</row>{rows_xml}</sheetData></worksheet>'
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
    return buffer.getvalue()


def sparse_xlsx(ref: str = "XFD1048576") -> bytes:
    """One data cell at the last cell of the sheet (or `ref`)."""
    row = "".join(ch for ch in ref if ch.isdigit())
    return raw_xlsx(f'<row r="{row}">{_inline(ref, "x")}</row>')


def declared_dimension_xlsx() -> bytes:
    """A tidy sheet whose declared dimension says it is the whole grid."""
    return raw_xlsx("", dimension="A1:XFD1048576")


def huge_cell_xlsx(megabytes: int = 4) -> bytes:
    """One cell of megabytes of text that does not compress (no zip bomb)."""
    import random

    rng = random.Random(11)
    text = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=megabytes * 1_048_576))
    return raw_xlsx(f'<row r="2">{_inline("A2", text)}</row>')


def repeated_ods(rows: int = 1_000_000, columns: int = 1024) -> bytes:
    """One row holding a value, repeated a million times, each cell repeated
    across a thousand columns: ~1 KB of XML for a billion cells."""
    cells = "".join(
        f'<table:table-cell office:value-type="string"><text:p>{h}</text:p></table:table-cell>'
        for h in HEADER
    )
    body = (
        f'<table:table-row table:number-rows-repeated="{rows}">'
        f'<table:table-cell table:number-columns-repeated="{columns}" office:value-type="string">'
        "<text:p>x</text:p></table:table-cell></table:table-row>"
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        "<office:body><office:spreadsheet>"
        f'<table:table table:name="orders"><table:table-row>{cells}</table:table-row>{body}'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"), b"application/vnd.oasis.opendocument.spreadsheet"
        )
        archive.writestr("content.xml", content)
        archive.writestr(
            "META-INF/manifest.xml",
            b'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
            b'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>',
        )
    return buffer.getvalue()


def deep_zip(depth: int = 30) -> bytes:
    """A zip inside a zip inside a zip…, dressed as an XLSX at the top."""
    inner = b"order_id\n1\n"
    for level in range(depth):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            if level == depth - 1:
                archive.writestr("[Content_Types].xml", CONTENT_TYPES)
                archive.writestr("xl/workbook.xml", WORKBOOK)
            archive.writestr(f"level{level}.zip", inner)
        inner = buffer.getvalue()
    return inner


def nul_csv(after_bytes: int = 70_000) -> bytes:
    """A good CSV with a NUL byte in a cell after the first `after_bytes`."""
    rows = samples.good_rows(max(2, after_bytes // 120))
    rows[-1]["owner_note"] = "before\x00after"
    return samples.csv_bytes(rows)


def huge_cell_csv(megabytes: int = 8) -> bytes:
    rows = samples.good_rows(2)
    rows[1]["owner_note"] = "N" * (megabytes * 1_048_576)
    return samples.csv_bytes(rows)


def extreme_dates_csv() -> bytes:
    rows = samples.good_rows(3)
    rows[0]["created_at"] = "9999-12-31 23:59:59"
    rows[1]["created_at"] = "0001-01-01 00:00:00"
    return samples.csv_bytes(rows)


def card_number_csv() -> bytes:
    rows = samples.good_rows(3)
    rows[1]["payment_ref"] = "4111 1111 1111 1111"
    return samples.csv_bytes(rows)


def every_row_bad_csv(rows: int) -> bytes:
    data = samples.good_rows(rows)
    for row in data:
        row["amount"] = "abc"
        row["payment_status"] = "maybe"
        row["created_at"] = "not a date"
    return samples.csv_bytes(data)


# name → (bytes builder, file name sent)
UPLOAD_CORPUS = {
    "sparse_xfd1048576": (sparse_xlsx, "sparse.xlsx"),
    "sparse_xfd1500": (lambda: sparse_xlsx("XFD1500"), "sparse1500.xlsx"),
    "declared_dimension": (declared_dimension_xlsx, "dimension.xlsx"),
    "huge_cell_xlsx": (huge_cell_xlsx, "cell.xlsx"),
    "repeated_ods": (repeated_ods, "repeat.ods"),
    "deep_zip": (deep_zip, "deep.xlsx"),
    "nul_csv": (nul_csv, "nul.csv"),
    "huge_cell_csv": (huge_cell_csv, "cell.csv"),
    "extreme_dates": (extreme_dates_csv, "dates.csv"),
    "card_number": (card_number_csv, "card.csv"),
    "long_name": (lambda: samples.csv_bytes(samples.good_rows(2)) + b"x,\n", "n" * 300 + ".csv"),
}
