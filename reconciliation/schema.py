"""The required export schema: one definition, read by the template
download, the validator, the API docs and the people-sync messages."""

import re
import unicodedata
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    required: bool  # the column must be present
    allow_blank: bool  # its cells may be empty
    label_zh: str
    help_zh: str
    help_en: str
    aliases: tuple[str, ...] = field(default_factory=tuple)


COLUMNS: tuple[Column, ...] = (
    Column(
        "order_id",
        True,
        False,
        "訂單編號",
        "平台訂單編號，每列一筆，不可空白。",
        "Platform order id, one per row, never blank.",
        ("訂單編號", "訂單號碼", "訂單id", "orderid", "order no", "order number"),
    ),
    Column(
        "created_at",
        True,
        False,
        "建立時間",
        "下單時間，例如 2026-05-12 20:15；未標時區者視為台北時間。",
        "Order time, e.g. 2026-05-12 20:15; times without a zone are Asia/Taipei.",
        ("建立時間", "訂單日期", "下單時間", "訂單時間", "order date", "created", "created time"),
    ),
    Column(
        "customer_key",
        True,
        False,
        "客戶代碼",
        "雜湊後的客戶代碼（64 位十六進位）；若填原始 email/電話，系統會先雜湊，不保存原值。",
        "Hashed customer key (64 hex digits); raw e-mail/phone is hashed on import and never stored.",
        ("客戶代碼", "客戶編號", "會員代碼", "customer", "customer id", "buyer key"),
    ),
    Column(
        "program_id",
        True,
        False,
        "課程代碼",
        "課程或商品代碼，例如 TRAIN-28000。",
        "Programme or product code, e.g. TRAIN-28000.",
        ("課程代碼", "商品代碼", "課程編號", "program", "product id", "sku"),
    ),
    Column(
        "amount",
        True,
        False,
        "金額",
        "訂單金額（新台幣），不可為負數。",
        "Order amount in TWD, never negative.",
        ("金額", "訂單金額", "付款金額", "price", "total", "order amount"),
    ),
    Column(
        "payment_status",
        True,
        False,
        "付款狀態",
        "paid / pending / refunded（或 已付款 / 待付款 / 已退款）。",
        "paid / pending / refunded (or 已付款 / 待付款 / 已退款).",
        ("付款狀態", "金流狀態", "狀態", "financial status", "status"),
    ),
    Column(
        "payment_ref",
        True,
        False,
        "付款單號",
        "金流交易編號；不可填卡號或付款 token。",
        "Payment gateway reference; never a card number or payment token.",
        ("付款單號", "交易編號", "金流單號", "payment id", "transaction id"),
    ),
    Column(
        "discount_code",
        True,
        True,
        "折扣碼",
        "使用的折扣碼，沒有可留白。",
        "Discount code used; may be blank.",
        ("折扣碼", "優惠代碼", "優惠碼", "coupon", "coupon code", "promo code"),
    ),
    Column(
        "source_event",
        True,
        False,
        "直播場次/來源",
        "成交來源，例如直播場次 LIVE-0512。",
        "Where the sale came from, e.g. the live stream LIVE-0512.",
        ("直播場次", "來源", "直播場次/來源", "source", "event", "live event"),
    ),
    Column(
        "owner_note",
        True,
        True,
        "備註",
        "補充說明，沒有可留白。",
        "Free note; may be blank.",
        ("備註", "說明", "note", "notes", "remark"),
    ),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
BY_NAME = {c.name: c for c in COLUMNS}

PAYMENT_STATUSES: tuple[str, ...] = ("paid", "pending", "refunded")

# Values as exports write them, normalised by `normalize_header` first.
PAYMENT_STATUS_SYNONYMS: dict[str, str] = {
    "paid": "paid",
    "已付款": "paid",
    "付款完成": "paid",
    "已付": "paid",
    "success": "paid",
    "succeeded": "paid",
    "completed": "paid",
    "complete": "paid",
    "settled": "paid",
    "pending": "pending",
    "待付款": "pending",
    "未付款": "pending",
    "unpaid": "pending",
    "awaiting payment": "pending",
    "authorized": "pending",
    "processing": "pending",
    "refunded": "refunded",
    "已退款": "refunded",
    "退款": "refunded",
    "refund": "refunded",
    "退款完成": "refunded",
    "已退刷": "refunded",
    "退刷": "refunded",
    "partially refunded": "refunded",
}

_SPACES = re.compile(r"[\s_\-]+")


def normalize_header(value) -> str:
    """Case-, width-, space- and underscore-insensitive key for a header or
    a status value ('Order ID', 'order_id', 'ＯＲＤＥＲ＿ＩＤ' → 'order id')."""
    text = unicodedata.normalize("NFKC", str(value)).strip().lower()
    return _SPACES.sub(" ", text).strip()


HEADER_ALIASES: dict[str, str] = {}
for _column in COLUMNS:
    for _alias in (_column.name, _column.label_zh, *_column.aliases):
        HEADER_ALIASES.setdefault(normalize_header(_alias), _column.name)


# Fields the Kolable orders API sends beside the ten columns: read and set
# aside without an "extra column" warning (every synced record has them).
API_FIELDS_IGNORED = frozenset(normalize_header(f) for f in ("updated_at",))


def is_ignored_api_field(header) -> bool:
    return normalize_header(header) in API_FIELDS_IGNORED


def canonical_column(header) -> str | None:
    """The schema column a header names, or None for an extra column."""
    return HEADER_ALIASES.get(normalize_header(header))


def canonical_payment_status(value) -> str | None:
    return PAYMENT_STATUS_SYNONYMS.get(normalize_header(value))


def as_api() -> list[dict]:
    """The schema as the API and the people-sync payloads carry it."""
    return [
        {"name": c.name, "required": c.required, "allow_blank": c.allow_blank, "label": c.label_zh}
        for c in COLUMNS
    ]


# --- The viewer figures of live streams (a platform export, optional) --------------


@dataclass(frozen=True)
class ViewerColumn:
    name: str
    required: bool
    kind: str  # text / datetime / count
    aliases: tuple[str, ...]


VIEWER_COLUMNS: tuple[ViewerColumn, ...] = (
    ViewerColumn("source_event", True, "text", ("直播場次", "場次", "live event", "event")),
    ViewerColumn("started_at", False, "datetime", ("開始時間", "開播時間", "start time")),
    ViewerColumn("ended_at", False, "datetime", ("結束時間", "下播時間", "end time")),
    ViewerColumn("viewers", True, "count", ("觀看人數", "觀看數", "views", "viewer count")),
    ViewerColumn("peak_concurrent", False, "count", ("最高同時在線", "peak viewers")),
    ViewerColumn("product_clicks", False, "count", ("商品點擊", "product clicks")),
)
VIEWER_HEADER_ALIASES: dict[str, str] = {
    normalize_header(alias): column.name
    for column in VIEWER_COLUMNS
    for alias in (column.name, *column.aliases)
}
