"""Files of the evidence queue: the tag-file template, reading a tag file
Huber sends back, and exports of the queue with its tags.

The tag file's columns are one definition (TAG_FILE_COLUMNS) that the
template, the reader and the export all use, so an export can be edited and
imported again as it is."""

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

from reconciliation import schema
from reconciliation.error_codes import file_error
from reconciliation.models import OrderEvidence
from reconciliation.privacy import safe_cell
from reconciliation.readers import STRING, FileProblem, read_upload


@dataclass(frozen=True)
class TagColumn:
    name: str
    required: bool
    label_zh: str
    help_zh: str
    aliases: tuple[str, ...] = ()


TAG_FILE_COLUMNS: tuple[TagColumn, ...] = (
    TagColumn(
        "order_id",
        True,
        "訂單編號",
        "最新已驗收匯入裡的訂單編號。",
        (*schema.BY_NAME["order_id"].aliases,),
    ),
    TagColumn(
        "tag",
        True,
        "標記",
        "paid / refunded / rebought / unresolved（或 已付款 / 已退款 / 重買 / 待釐清）。",
        ("標記", "佐證標記", "佐證狀態", "evidence tag", "evidence status"),
    ),
    TagColumn(
        "payment_ref",
        False,
        "付款單號",
        "金流付款單號（標 paid 時附上）。",
        ("付款單號", "付款參考", "金流單號", "交易編號", "payment reference"),
    ),
    TagColumn(
        "refund_ref",
        False,
        "退款單號",
        "退款/退刷單號（標 refunded、rebought 時附上）。",
        ("退款單號", "退刷單號", "退款參考", "refund reference", "refund id"),
    ),
    TagColumn(
        "evidence_ref",
        False,
        "佐證編號",
        "其他佐證：對帳單、截圖或工單編號。",
        ("佐證編號", "佐證", "佐證連結", "佐證參考", "evidence", "evidence reference"),
    ),
    TagColumn("note", False, "備註", "補充說明，可留白。", ("備註", "說明", "notes", "remark")),
)
TAG_FILE_COLUMN_NAMES = tuple(c.name for c in TAG_FILE_COLUMNS)
REQUIRED_TAG_COLUMNS = tuple(c.name for c in TAG_FILE_COLUMNS if c.required)

_HEADER_ALIASES: dict[str, str] = {}
for _column in TAG_FILE_COLUMNS:
    for _alias in (_column.name, _column.label_zh, *_column.aliases):
        _HEADER_ALIASES.setdefault(schema.normalize_header(_alias), _column.name)

TAG_SYNONYMS: dict[str, str] = {
    "paid": OrderEvidence.Tag.PAID,
    "已付款": OrderEvidence.Tag.PAID,
    "已付": OrderEvidence.Tag.PAID,
    "付款": OrderEvidence.Tag.PAID,
    "refunded": OrderEvidence.Tag.REFUNDED,
    "refund": OrderEvidence.Tag.REFUNDED,
    "已退款": OrderEvidence.Tag.REFUNDED,
    "退款": OrderEvidence.Tag.REFUNDED,
    "已退刷": OrderEvidence.Tag.REFUNDED,
    "退刷": OrderEvidence.Tag.REFUNDED,
    "rebought": OrderEvidence.Tag.REBOUGHT,
    "rebuy": OrderEvidence.Tag.REBOUGHT,
    "重買": OrderEvidence.Tag.REBOUGHT,
    "已重買": OrderEvidence.Tag.REBOUGHT,
    "重購": OrderEvidence.Tag.REBOUGHT,
    "unresolved": OrderEvidence.Tag.UNRESOLVED,
    "待釐清": OrderEvidence.Tag.UNRESOLVED,
    "未解決": OrderEvidence.Tag.UNRESOLVED,
    "待查": OrderEvidence.Tag.UNRESOLVED,
    "unknown": OrderEvidence.Tag.UNRESOLVED,
}


def canonical_tag(value) -> str | None:
    return TAG_SYNONYMS.get(schema.normalize_header(value))


# --- Reading ---------------------------------------------------------------------


@dataclass
class TagTable:
    """A tag file read into strings: one column per known header, and the
    row number each data row has in Excel or the CSV."""

    frame: pd.DataFrame | None
    row_numbers: list[int] = field(default_factory=list)
    file_errors: list[dict] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    kind: str = ""


def _file_error(code: str, message: str) -> dict:
    return {"code": code, "message": message}


def read_tag_table(path: Path) -> TagTable:
    """A kept tag file → TagTable. Bytes are read by the uploads' reader
    (type from the bytes, CSV encodings and delimiters, XLSX with title rows,
    zip-bomb and encryption checks); this maps the tag file's own headers,
    which may be in Chinese, and ignores extra columns."""
    try:
        raw = read_upload(path)
    except FileProblem as problem:
        return TagTable(None, file_errors=[file_error(problem.code, **problem.params)])
    mapping: dict[int, str] = {}
    for position, header in enumerate(raw.headers):
        name = _HEADER_ALIASES.get(schema.normalize_header(header))
        if name and name not in mapping.values():
            mapping[position] = name
    missing = [name for name in REQUIRED_TAG_COLUMNS if name not in mapping.values()]
    if missing:
        return TagTable(
            None,
            file_errors=[
                _file_error(
                    "missing_columns",
                    _("缺少欄位：%(cols)s（標題列應有 order_id 與 tag）。")
                    % {"cols": ", ".join(missing)},
                )
            ],
            missing_columns=missing,
            kind=raw.kind,
        )
    # Trimmed in Arrow (C++), not cell by cell in Python.
    columns = {
        name: pd.Series(
            pd.arrays.ArrowExtensionArray(
                pc.fill_null(pc.utf8_trim_whitespace(pa.array(raw.frame[position].array)), "")
            )
        )
        for position, name in mapping.items()
    }
    body = pd.DataFrame(columns)
    nul_rows = [
        int(raw.row_numbers[i])
        for i in np.flatnonzero(
            np.logical_or.reduce(
                [
                    pc.fill_null(
                        pc.match_substring(pa.array(body[c].array), "\x00"), False
                    ).to_numpy(zero_copy_only=False)
                    for c in body.columns
                ]
            )
        )[:20]
    ]
    if nul_rows:
        # No database text column takes a NUL: the file goes back to Huber.
        return TagTable(
            None,
            file_errors=[
                _file_error(
                    "nul_character",
                    _("第 %(rows)s 列含有 NUL 控制字元（\\0）；刪掉那些格重新輸入後再上傳。")
                    % {"rows": "、".join(str(r) for r in nul_rows)},
                )
            ],
            kind=raw.kind,
        )
    for name in TAG_FILE_COLUMN_NAMES:
        if name not in body.columns:
            body[name] = pd.Series([""] * len(body), dtype=STRING)
    body = body[list(TAG_FILE_COLUMN_NAMES)]
    keep = ~(body == "").all(axis=1).to_numpy()
    body = body[keep].reset_index(drop=True)
    numbers = [int(n) for n in raw.row_numbers[keep]]
    if body.empty:
        return TagTable(
            None,
            file_errors=[_file_error("header_only", _("檔案只有標題列，沒有資料。"))],
            kind=raw.kind,
        )
    return TagTable(body, row_numbers=numbers, kind=raw.kind)


# --- Template ---------------------------------------------------------------------

EXAMPLE_ROWS = (
    ("KOL-20260512-0001", "paid", "PAY-88231", "", "", ""),
    ("KOL-20260512-0002", "refunded", "", "RF-10023", "", "5/14 退刷"),
    ("KOL-20260512-0003", "rebought", "", "RF-10024", "KOL-20260515-0420", "退刷後重買"),
    ("KOL-20260512-0004", "unresolved", "", "", "", "金流查無紀錄"),
)


def tag_template_csv() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(TAG_FILE_COLUMN_NAMES)
    writer.writerows(EXAMPLE_ROWS)
    # BOM so Excel on Windows opens it as UTF-8.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def tag_template_xlsx() -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "tags"
    sheet.append(list(TAG_FILE_COLUMN_NAMES))
    for row in EXAMPLE_ROWS:
        sheet.append(list(row))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="EEF2F7")
    for letter, width in zip("ABCDEF", (22, 14, 18, 18, 24, 30), strict=True):
        sheet.column_dimensions[letter].width = width
    validation = DataValidation(
        type="list",
        formula1='"' + ",".join(OrderEvidence.Tag.values) + '"',
        allow_blank=False,
        showErrorMessage=True,
        errorTitle="tag",
        error="paid / refunded / rebought / unresolved",
    )
    validation.add("B2:B200000")
    sheet.add_data_validation(validation)
    sheet.freeze_panes = "A2"
    guide = workbook.create_sheet("說明 guide")
    guide.append(["欄位 column", "中文名稱", "必填 required", "說明"])
    for cell in guide[1]:
        cell.font = Font(bold=True)
    for column in TAG_FILE_COLUMNS:
        guide.append(
            [column.name, column.label_zh, "是 yes" if column.required else "否 no", column.help_zh]
        )
    guide.append([])
    guide.append(
        [
            "",
            "",
            "",
            "paid、refunded、rebought 需附 payment_ref、refund_ref 或 evidence_ref 至少一項。",
        ]
    )
    for letter, width in zip("ABCD", (16, 12, 12, 70), strict=True):
        guide.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- Exports ----------------------------------------------------------------------

# The tag file's columns first (so an export can be edited and imported back),
# then what Huber needs to decide, read-only.
EXPORT_COLUMNS = (
    *TAG_FILE_COLUMN_NAMES,
    "created_at",
    "program_id",
    "amount",
    "payment_status",
    "classification",
    "export_payment_ref",
    "discount_code",
    "source_event",
    "customer_key",
    "tagged_by",
    "tagged_at",
)
_HASHED_KEY = re.compile(r"[0-9a-f]{64}")


def _local(dt) -> str:
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M:%S") if dt else ""


def export_record(row) -> list:
    """One export line of a selectors.evidence.QueueRow."""
    return [
        row.order_id,
        row.tag or "",
        row.ev_payment_ref or "",
        row.ev_refund_ref or "",
        row.ev_evidence_ref or "",
        row.ev_note or "",
        _local(row.created_at),
        row.program_id,
        row.amount,
        row.payment_status,
        row.classification,
        row.payment_ref,
        row.discount_code,
        row.source_event,
        # Only the hashed key ever leaves the app; anything else is withheld.
        row.customer_key if _HASHED_KEY.fullmatch(row.customer_key or "") else "",
        row.tagged_by,
        _local(row.ev_created_at),
    ]


class _Echo:
    def write(self, value):
        return value


def export_csv_chunks(rows: Iterable) -> Iterator[str]:
    """CSV text in chunks, for a streaming response; every cell formula-safe."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(EXPORT_COLUMNS)
    batch = []
    for row in rows:
        batch.append(writer.writerow([safe_cell(v) for v in export_record(row)]))
        if len(batch) >= 1000:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def export_xlsx(rows: Iterable) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("evidence")
    sheet.append(list(EXPORT_COLUMNS))
    for row in rows:
        record = export_record(row)
        # Amounts stay numbers in Excel; every text cell is formula-safe.
        sheet.append(
            [
                float(v) if i == EXPORT_COLUMNS.index("amount") else safe_cell(v)
                for i, v in enumerate(record)
            ]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
