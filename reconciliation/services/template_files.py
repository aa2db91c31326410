"""The export template Wade downloads, built from schema.py."""

import csv
import io

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

from reconciliation import schema

EXAMPLE_ROW = {
    "order_id": "KOL-20260512-0001",
    "created_at": "2026-05-12 20:15",
    "customer_key": "9f2c" + "0" * 60,
    "program_id": "TRAIN-28000",
    "amount": 28000,
    "payment_status": "paid",
    "payment_ref": "PAY-88231",
    "discount_code": "LIVE512",
    "source_event": "LIVE-0512",
    "owner_note": "",
}


def template_xlsx() -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "orders"
    sheet.append(list(schema.COLUMN_NAMES))
    sheet.append([EXAMPLE_ROW[name] for name in schema.COLUMN_NAMES])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="EEF2F7")
    for index, name in enumerate(schema.COLUMN_NAMES, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = max(
            14, len(name) + 4
        )
    status_col = sheet.cell(
        row=1, column=schema.COLUMN_NAMES.index("payment_status") + 1
    ).column_letter
    validation = DataValidation(
        type="list",
        formula1='"' + ",".join(schema.PAYMENT_STATUSES) + '"',
        allow_blank=False,
        showErrorMessage=True,
        errorTitle="payment_status",
        error="paid / pending / refunded",
    )
    validation.add(f"{status_col}2:{status_col}100000")
    sheet.add_data_validation(validation)
    sheet.freeze_panes = "A2"

    guide = workbook.create_sheet("說明 guide")
    guide.append(
        ["欄位 column", "中文名稱", "必填 required", "可空白 blank ok", "說明", "Description"]
    )
    for cell in guide[1]:
        cell.font = Font(bold=True)
    for column in schema.COLUMNS:
        guide.append(
            [
                column.name,
                column.label_zh,
                "是 yes" if column.required else "否 no",
                "是 yes" if column.allow_blank else "否 no",
                column.help_zh,
                column.help_en,
            ]
        )
    for letter, width in zip("ABCDEF", (16, 14, 12, 14, 60, 60), strict=True):
        guide.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def template_csv() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(schema.COLUMN_NAMES)
    writer.writerow([EXAMPLE_ROW[name] for name in schema.COLUMN_NAMES])
    # BOM so Excel on Windows opens it as UTF-8.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


SETTLEMENT_EXAMPLE_ROWS = (
    {
        "payment_ref": "PAY-88231",
        "gross_amount": 28000,
        "txn_date": "2026-05-12 20:15",
        "provider_txn_id": "ECP-0001",
        "txn_type": "charge",
        "fee_amount": 770,
        "net_amount": 27230,
        "settlement_date": "2026-05-15",
        "payout_id": "PO-20260515",
        "settlement_status": "settled",
        "provider": "ECPay",
    },
    {
        "payment_ref": "PAY-88231",
        "gross_amount": -8000,
        "txn_date": "2026-05-18 11:00",
        "provider_txn_id": "ECP-0002",
        "txn_type": "refund",
        "fee_amount": 0,
        "net_amount": -8000,
        "settlement_date": "2026-05-19",
        "payout_id": "PO-20260519",
        "settlement_status": "settled",
        "provider": "ECPay",
    },
)


def settlement_template_xlsx() -> bytes:
    """The settlement file's template: the canonical names, two example
    lines (a charge and a partial refund) and the column guide."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "settlement"
    sheet.append(list(schema.SETTLEMENT_COLUMN_NAMES))
    for row in SETTLEMENT_EXAMPLE_ROWS:
        sheet.append([row[name] for name in schema.SETTLEMENT_COLUMN_NAMES])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="EEF2F7")
    sheet.freeze_panes = "A2"
    guide = workbook.create_sheet("說明 guide")
    guide.append(["欄位 column", "中文名稱", "必填 required", "說明", "Description"])
    for cell in guide[1]:
        cell.font = Font(bold=True)
    for column in schema.SETTLEMENT_COLUMNS:
        guide.append(
            [
                column.name,
                column.label_zh,
                "是 yes" if column.required else "否 no",
                column.help_zh,
                column.help_en,
            ]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def settlement_template_csv() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(schema.SETTLEMENT_COLUMN_NAMES)
    for row in SETTLEMENT_EXAMPLE_ROWS:
        writer.writerow([row[name] for name in schema.SETTLEMENT_COLUMN_NAMES])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
