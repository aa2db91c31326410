"""The live-commerce dashboard through the API: every stream with its
figures and the period's totals, one stream beside the median stream,
Louis's compliance checklist and the viewer figures file."""

from datetime import datetime
from typing import Literal

from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from reconciliation import converters  # noqa: F401 - the anytext path converter
from reconciliation.api.common import ErrorOut, require
from reconciliation.errors import Forbidden, InvalidInput, NotFound
from reconciliation.inputs import ModelText
from reconciliation.models import ComplianceRecord
from reconciliation.permissions import Action, can
from reconciliation.selectors import live as selectors
from reconciliation.selectors.scorecard import default_project
from reconciliation.services import live_records

router = Router(tags=["live streams"])


class ChecksIn(Schema):
    claims_reviewed: bool = False
    sponsorship_disclosed: bool = False
    offer_terms_disclosed: bool = False
    refund_notice_shown: bool = False
    testimonials_genuine: bool = False
    regulated_claims_ok: bool = False


class ComplianceIn(Schema):
    checks: ChecksIn
    status: Literal["pass", "fail", "pending"]
    evidence_ref: ModelText(ComplianceRecord, "evidence_ref") = ""
    note: ModelText(ComplianceRecord, "note") = ""


class ComplianceOut(Schema):
    id: int
    source_event: str
    status: str
    checks: dict[str, bool]
    evidence_ref: str
    note: str
    recorded_by: str
    recorded_at: datetime


def compliance_out(record: ComplianceRecord | None) -> dict | None:
    if record is None:
        return None
    return {
        "id": record.pk,
        "source_event": record.source_event,
        "status": record.status,
        "checks": record.checks,
        "evidence_ref": record.evidence_ref,
        "note": record.note,
        "recorded_by": record.created_by.user.username,
        "recorded_at": record.created_at,
    }


def row_out(row: selectors.StreamRow, request) -> dict:
    figures = {
        key: row.get(key)
        for key in (*selectors.SUMMED_KEYS, "pending_orders", "buyers", "returning_buyers")
    }
    return {
        "source_event": row.source_event,
        **figures,
        "refund_rate": row.get("refund_rate"),
        "average_order_value": row.get("aov"),
        "discount_share": row.get("discount_share"),
        "settled_net": row.settled_net,
        "viewers": row.get("viewers"),
        "conversion": row.get("conversion"),
        "gmv_per_thousand_viewers": row.get("gmv_per_thousand_viewers"),
        "first_order_at": row.get("first_order_at"),
        "last_order_at": row.get("last_order_at"),
        "compliance_status": row.compliance_status or None,
        "flagged": row.flagged,
        "links": {k: request.build_absolute_uri(v) for k, v in row.links.items()},
    }


class StreamOut(Schema):
    source_event: str
    orders: int
    gmv: float
    paid_orders: int
    paid_amount: float
    pending_orders: int
    refund_count: int
    refund_amount: float
    refund_rate: float | None
    rebuys: int
    average_order_value: float | None
    buyers: int
    returning_buyers: int
    discount_orders: int
    discount_share: float | None
    settled_net: float | None = Field(description="null while no settlement file covers the book")
    viewers: int | None = Field(description="null: no viewer figures for the stream")
    conversion: float | None = Field(description="orders / viewers; null without viewers")
    gmv_per_thousand_viewers: float | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    compliance_status: str | None = Field(description="pass / fail / pending; null: no stream")
    flagged: bool = Field(description="revenue of a stream whose compliance is not pass")
    links: dict[str, str] = Field(description="the evidence queue filtered to the figure's orders")


class StreamsOut(Schema):
    book_version: int
    updating: bool = Field(
        description="an import changed the book and the figures are being rewritten: "
        "until then they show the book before it"
    )
    sort: str
    order: str
    settlement: str | None = Field(description="why settled figures are missing, or null")
    totals: dict | None
    streams: list[StreamOut]


class StreamDetailOut(Schema):
    stream: StreamOut
    median: dict = Field(description="the period's median stream, figure by figure")
    streams_in_period: int
    orders_by_hour: list[int] = Field(description="24 counts, hour 0..23 Asia/Taipei")
    programs: list[dict]
    discount_codes: list[dict]
    refund_tags: dict[str, int] = Field(description="refunded orders by current tag ('' untagged)")
    exceptions: dict[str, int]
    compliance: ComplianceOut | None
    compliance_history: list[ComplianceOut]


def _project():
    project = default_project()
    if project is None:
        raise NotFound("not_found", _("還沒有專案。"))
    return project


def _settlement_note(missing: bool) -> str | None:
    return _("尚未匯入金流撥款檔：沒有實收數字。") if missing else None


@router.get(
    "/live-streams",
    response={200: StreamsOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut},
)
def live_streams(request, sort: str = "gmv", order: Literal["asc", "desc"] = "desc"):
    """One row per source_event of the book, sortable by any figure
    (`sort`), with the period's totals."""
    require(request, Action.VIEW_EVIDENCE)
    if sort not in selectors.SORT_KEYS:
        raise InvalidInput(
            "invalid_sort", _("sort 只能是：%(keys)s") % {"keys": ", ".join(selectors.SORT_KEYS)}
        )
    board = selectors.dashboard(default_project(), sort=sort, descending=order == "desc")
    return {
        "book_version": board.book_version,
        "updating": board.behind,
        "sort": board.sort,
        "order": order,
        "settlement": _settlement_note(board.settlement_missing),
        "totals": board.totals,
        "streams": [row_out(r, request) for r in board.rows],
    }


@router.post(
    "/live-streams/{anytext:source_event}/compliance",
    response={201: ComplianceOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
)
def record_compliance(request, source_event: str, payload: ComplianceIn):
    """Louis's creative-compliance checklist for one stream; appended to its
    history (nothing is overwritten). `pass` needs every check true."""
    require(request, Action.DECIDE_REVENUE)
    live_records.check_source_event(source_event)
    record = live_records.record_compliance(
        actor=request.auth,
        project=_project(),
        source_event=source_event,
        checks=payload.checks.model_dump(),
        status=payload.status,
        evidence_ref=payload.evidence_ref,
        note=payload.note,
    )
    return 201, compliance_out(record)


@router.get(
    "/live-streams/{anytext:source_event}/compliance",
    response={200: list[ComplianceOut], 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
)
def compliance_history(request, source_event: str):
    """The stream's compliance history, newest first."""
    require(request, Action.VIEW_EVIDENCE)
    live_records.check_source_event(source_event)
    page = selectors.stream_page(_project(), source_event)
    if page is None:
        raise NotFound("unknown_stream", _("訂單簿裡沒有這個直播場次。"))
    return [compliance_out(r) for r in page.history]


@router.get(
    "/live-streams/{anytext:source_event}",
    response={200: StreamDetailOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
)
def live_stream(request, source_event: str):
    """One stream beside the period's median stream."""
    require(request, Action.VIEW_EVIDENCE)
    live_records.check_source_event(source_event)
    page = selectors.stream_page(_project(), source_event)
    if page is None:
        raise NotFound("unknown_stream", _("訂單簿裡沒有這個直播場次。"))
    return {
        "stream": row_out(page.row, request),
        "median": page.medians,
        "streams_in_period": page.streams,
        "orders_by_hour": page.hours,
        "programs": page.figures.programs,
        "discount_codes": page.figures.discount_codes,
        "refund_tags": page.figures.refund_tags,
        "exceptions": page.figures.exceptions,
        "compliance": compliance_out(page.row.compliance),
        "compliance_history": [compliance_out(r) for r in page.history],
    }


class ViewersOut(Schema):
    rows: int
    unmatched: list[str] = Field(description="source_events of the file the book does not have")


@router.post(
    "/live-viewers",
    response={200: ViewersOut, 401: ErrorOut, 403: ErrorOut, 413: ErrorOut, 422: ErrorOut},
)
def upload_viewers(request):
    """Multipart field `file`: a CSV/XLSX with source_event, started_at,
    ended_at, viewers, peak_concurrent, product_clicks (viewers required).
    All rows or none; 422 lists every problem."""
    if not (can(request.auth, Action.DECIDE_REVENUE) or can(request.auth, Action.UPLOAD_EXPORT)):
        raise Forbidden("forbidden", _("你的角色不能上傳觀看數字。"))
    uploaded = request.FILES.get("file")
    if uploaded is None:
        raise InvalidInput("file_required", _("請用 multipart/form-data 的 file 欄位附上檔案。"))
    data = live_records.read_limited(uploaded)
    return live_records.import_viewers(
        actor=request.auth, project=_project(), data=data, file_name=uploaded.name or ""
    )
