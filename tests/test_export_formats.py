"""The exports' number formats: money as whole NT$ integers with headers that
say what each column is, and error reports that show a negative amount as
the number it is (a plain signed number is not a formula) while real
formulas stay neutralised."""

import csv
import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from openpyxl import load_workbook

from reconciliation.services.imports import import_frame
from reconciliation.services.requests import create_data_request
from reconciliation.services.uploads import receive_upload
from tests.imp_frames import accepted_upload, frame, order


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_scorecard_csv_writes_money_as_integers_under_named_columns(louis, wade):
    request = create_data_request(requested_by=louis)
    import_frame(
        upload=accepted_upload(request, wade),
        frame=frame(
            order("K-1", "paid", 28000, source="LIVE-0512"),
            order("K-2", "paid", 1990, source="LIVE-0513", code="LIVE50"),
            order("K-3", "pending", 28000),
        ),
    )
    text = signed_in(louis).get("/scorecard/export.csv").content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    cells = [c for row in rows for c in row]
    assert "鍵" not in cells
    assert not any(c.endswith(".0") for c in cells), [c for c in cells if c.endswith(".0")]
    overview = {row[0]: row[1] for row in rows if len(row) == 2}
    assert overview["已驗證營收（NT$）"] == "29990"
    assert overview["GMV（NT$）"] == "57990"
    headers = [row for row in rows if row and row[0] == "直播場次/來源"]
    assert headers and "已驗證營收（NT$）" in headers[0]
    by_source = {row[0]: row for row in rows if row and row[0].startswith("LIVE-")}
    paid_column = headers[0].index("已驗證營收（NT$）")
    assert by_source["LIVE-0512"][paid_column] == "28000"
    assert {row[0] for row in rows if row and row[0] in ("日期", "課程代碼", "折扣碼")} == {
        "日期",
        "課程代碼",
        "折扣碼",
    }


def test_scorecard_xlsx_cells_are_integers(louis, wade):
    request = create_data_request(requested_by=louis)
    import_frame(upload=accepted_upload(request, wade), frame=frame(order("K-1", "paid", 28000)))
    book = load_workbook(io.BytesIO(signed_in(louis).get("/scorecard/export.xlsx").content))
    overview = {row[0]: row[1] for row in book.worksheets[0].iter_rows(values_only=True)}
    assert overview["已驗證營收（NT$）"] == 28000
    assert isinstance(overview["已驗證營收（NT$）"], int)


def test_error_report_shows_a_negative_amount_without_an_apostrophe(louis, wade):
    request = create_data_request(requested_by=louis)
    row = order("K-1", "paid", -28000)
    formula = order("K-2", "paid", "=HYPERLINK(1)")
    header = list(row)
    content = "\n".join(
        [",".join(header)] + [",".join(str(r[h]) for h in header) for r in (row, formula)]
    ).encode()
    upload = receive_upload(
        data_request=request,
        uploaded_by=wade,
        file=SimpleUploadedFile("bad.csv", content, content_type="text/csv"),
        original_name="bad.csv",
    ).upload
    assert upload.schema_status == "schema_failed"
    response = signed_in(wade).get(f"/uploads/{upload.pk}/report.xlsx")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    values = [c for sheet in book.worksheets for r in sheet.iter_rows(values_only=True) for c in r]
    assert "-28000" in values or -28000 in values
    assert "'-28000" not in values
    assert "'=HYPERLINK(1)" in values

    report = signed_in(wade).get(f"/uploads/{upload.pk}/report.csv")
    csv_text = b"".join(report.streaming_content).decode("utf-8-sig")
    assert "'-28000" not in csv_text and "-28000" in csv_text
    assert "'=HYPERLINK(1)" in csv_text
