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


# Amounts are stored with 14 digits, two of them cents (PostgreSQL refuses
# more): an amount of this size or above is the row's error.
MAX_AMOUNT = 10**12

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


# --- The settlement file (the payment provider's view of the money) ---------------

SETTLEMENT_COLUMNS: tuple[Column, ...] = (
    Column(
        "payment_ref",
        True,
        False,
        "付款單號",
        "與訂單匯出檔相同的付款單號（金流交易編號），用來對到訂單。",
        "The payment reference the order export carries; it matches the line to its order.",
    ),
    Column(
        "gross_amount",
        True,
        False,
        "交易金額",
        "交易金額（新台幣）；退款或拒付為負數。",
        "Transaction amount in TWD; a refund or chargeback is negative.",
    ),
    Column(
        "txn_date",
        True,
        False,
        "交易日期",
        "交易時間，例如 2026-05-12 或 20260512；未標時區者視為台北時間。",
        "Transaction time, e.g. 2026-05-12 or 20260512; times without a zone are Asia/Taipei.",
    ),
    Column(
        "provider_txn_id",
        False,
        True,
        "金流交易序號",
        "金流平台自己的交易序號（授權單號）；同一序號只算一次。",
        "The provider's own transaction id; the same id counts once.",
    ),
    Column(
        "txn_type",
        False,
        True,
        "交易類別",
        "charge / refund / chargeback / fee / adjustment；空白時依金額正負判斷。",
        "charge / refund / chargeback / fee / adjustment; blank: from the amount's sign.",
    ),
    Column(
        "fee_amount",
        False,
        True,
        "手續費",
        "金流手續費（新台幣），空白為 0。",
        "The provider's fee in TWD; blank is 0.",
    ),
    Column(
        "net_amount",
        False,
        True,
        "撥款金額",
        "實際撥款金額；空白時為交易金額減手續費。",
        "The amount paid out; blank: gross minus fee.",
    ),
    Column(
        "settlement_date",
        False,
        True,
        "撥款日期",
        "請款或撥款日期，可空白。",
        "The settlement or payout date; may be blank.",
    ),
    Column(
        "payout_id",
        False,
        True,
        "撥款批號",
        "撥款批次編號，可空白。",
        "The payout batch id; may be blank.",
    ),
    Column(
        "settlement_status",
        False,
        True,
        "撥款狀態",
        "settled / unsettled / on_hold（或 已撥款 / 未撥款 / 暫停撥款）；空白為已撥款。",
        "settled / unsettled / on_hold (or 已撥款 / 未撥款 / 暫停撥款); blank is settled.",
    ),
    Column(
        "provider",
        False,
        True,
        "金流平台",
        "金流平台名稱，例如 ECPay；空白時依檔案格式判斷。",
        "The payment provider, e.g. ECPay; blank: from the file's layout.",
    ),
)
SETTLEMENT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in SETTLEMENT_COLUMNS)
SETTLEMENT_REQUIRED: tuple[str, ...] = tuple(c.name for c in SETTLEMENT_COLUMNS if c.required)
SETTLEMENT_BY_NAME = {c.name: c for c in SETTLEMENT_COLUMNS}
DEFAULT_SETTLEMENT_DATASET = "2026-05-12..2026-05-21 payment settlement file"

# Provider layouts, recognised by their headers: header → column, in order of
# preference (a later header fills the cells an earlier one left blank).
SETTLEMENT_LAYOUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "canonical": {c.name: (c.name, c.label_zh) for c in SETTLEMENT_COLUMNS},
    "ecpay": {
        "payment_ref": ("訂單編號", "特店訂單編號", "廠商訂單編號"),
        "provider_txn_id": ("授權單號", "綠界交易序號"),
        "txn_date": ("交易日期", "付款時間", "交易時間"),
        "settlement_date": ("請款日期", "撥款日期"),
        "gross_amount": ("交易金額", "請款金額"),
        "fee_amount": ("手續費", "服務費", "交易手續費"),
        "net_amount": ("撥款金額", "實際撥款金額"),
        "txn_type": ("交易類別", "款項類別"),
        "settlement_status": ("撥款狀態",),
        "payout_id": ("撥款批號",),
    },
    "stripe": {
        "payment_ref": ("payment_intent_id", "charge_id", "source_id"),
        "provider_txn_id": ("balance_transaction_id",),
        "txn_date": ("created_utc", "created"),
        "settlement_date": ("available_on_utc", "available_on", "automatic_payout_effective_at"),
        "gross_amount": ("gross",),
        "fee_amount": ("fee",),
        "net_amount": ("net",),
        "txn_type": ("reporting_category",),
        "payout_id": ("automatic_payout_id",),
    },
    "newebpay": {
        "payment_ref": ("MerchantOrderNo",),
        "provider_txn_id": ("TradeNo",),
        "txn_date": ("PayTime", "TradeTime", "CreateTime"),
        "settlement_date": ("FundTime", "SettleDate"),
        "gross_amount": ("Amt",),
        "fee_amount": ("Fee", "TradeFee"),
        "net_amount": ("FundAmt", "NetAmt"),
        "txn_type": ("TradeType", "TradeStatus"),
        "payout_id": ("FundNo",),
    },
}
# The headers only one provider writes: they tell the layout apart.
LAYOUT_MARKERS: dict[str, tuple[str, ...]] = {
    "ecpay": ("授權單號", "撥款金額", "請款日期", "特店訂單編號"),
    "stripe": ("balance_transaction_id", "reporting_category", "automatic_payout_id"),
    "newebpay": ("MerchantOrderNo", "TradeNo", "Amt"),
}
PROVIDER_NAMES = {"ecpay": "ECPay", "stripe": "Stripe", "newebpay": "NewebPay", "canonical": ""}

TXN_TYPES: tuple[str, ...] = ("charge", "refund", "chargeback", "fee", "adjustment")
TXN_TYPE_SYNONYMS: dict[str, str] = {
    **{t: t for t in TXN_TYPES},
    "payment": "charge",
    "sale": "charge",
    "capture": "charge",
    "授權": "charge",
    "請款": "charge",
    "付款": "charge",
    "刷卡": "charge",
    "交易": "charge",
    "退款": "refund",
    "退刷": "refund",
    "partial refund": "refund",
    "dispute": "chargeback",
    "拒付": "chargeback",
    "爭議款": "chargeback",
    "dispute reversal": "adjustment",
    "other adjustment": "adjustment",
    "refund failure": "adjustment",
    "partial capture reversal": "adjustment",
    "調整": "adjustment",
    "手續費": "fee",
    "stripe fee": "fee",
    "network cost": "fee",
}
SETTLEMENT_STATUSES: tuple[str, ...] = ("settled", "unsettled", "on_hold")
SETTLEMENT_STATUS_SYNONYMS: dict[str, str] = {
    **{s: s for s in SETTLEMENT_STATUSES},
    "on hold": "on_hold",
    "已撥款": "settled",
    "已請款": "settled",
    "撥款完成": "settled",
    "available": "settled",
    "paid": "settled",
    "未撥款": "unsettled",
    "未請款": "unsettled",
    "待撥款": "unsettled",
    "pending": "unsettled",
    "暫停撥款": "on_hold",
    "凍結": "on_hold",
    "hold": "on_hold",
}


def _layout_keys(layout: dict[str, tuple[str, ...]]) -> dict[str, str]:
    keys = {}
    for name, headers in layout.items():
        for header in headers:
            keys.setdefault(normalize_header(header), name)
    return keys


SETTLEMENT_LAYOUT_KEYS = {name: _layout_keys(layout) for name, layout in SETTLEMENT_LAYOUTS.items()}


def recognise_layout(headers) -> str:
    """The settlement layout a header row is written in: the provider whose
    own headers it carries, else the canonical names."""
    present = {normalize_header(h) for h in headers if str(h).strip()}
    best, best_score = "canonical", 0
    for name, markers in LAYOUT_MARKERS.items():
        score = sum(normalize_header(m) in present for m in markers)
        if score > best_score:
            best, best_score = name, score
    return best


def settlement_header_score(cells) -> int:
    """How many settlement columns a row names, in its best layout (finding
    the header row below a provider's title rows)."""
    present = {normalize_header(c) for c in cells if str(c).strip()}
    return max(
        len({keys[h] for h in present if h in keys}) for keys in SETTLEMENT_LAYOUT_KEYS.values()
    )


def column_info(name: str) -> Column | None:
    """The column of either schema a name refers to."""
    return BY_NAME.get(name) or SETTLEMENT_BY_NAME.get(name)


def settlement_as_api() -> list[dict]:
    return [
        {"name": c.name, "required": c.required, "allow_blank": c.allow_blank, "label": c.label_zh}
        for c in SETTLEMENT_COLUMNS
    ]
