"""The scorecard (the seed's escalation HTML, live) as data, for the page, the
exports and `GET /api/kolable/reconciliation/latest`.

Reads only small rows: the project, its current request, the order book's
stored BookSummary, the imports that built the book (with what each
changed) and Louis's latest decision — never orders or rows, so the page
costs the same with 28,000 or 1,000,000 orders.

The guard: with no verified import the revenue status is
`unverified` and `totals` is None; nothing here exposes a paid-revenue figure
until then."""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from reconciliation.models import (
    BookSummary,
    DataRequest,
    Profile,
    Project,
    ReconciliationImport,
    RevenueDecision,
)
from reconciliation.permissions import Role
from reconciliation.selectors import evidence as queue
from reconciliation.selectors.dispatch import (
    JobType,
    NextJob,
    Rule,
    next_job,
    verified_repository,
)
from reconciliation.selectors.memo import memoised
from reconciliation.selectors.people import with_people
from reconciliation.selectors.settlement import (
    SETTLEMENT_EXCEPTION_LABELS,
    settlement_exceptions,
    settlement_figures,
)
from reconciliation.services.requests import DEFAULT_PERIOD
from reconciliation.services.revenue import (
    ExceptionCode,
    RevenueStatus,
    book_for,
    decision_delta,
    latest_decision,
    revenue_status,
)

Status = DataRequest.Status

# The longest daily chart: about two months of bars.
CHART_MAX_DAYS = 62


@dataclass
class Card:
    key: str
    label: str
    value: str
    tone: str  # bad / warn / ok / blue: the seed's colours
    note: str


@dataclass
class FlowStep:
    code: str
    text: str
    state: str  # done / current / blocked / waiting
    state_label: str
    detail: str


@dataclass
class RuleRow:
    rule: str
    condition: str
    do: str
    dont: str
    current: bool = False


@dataclass
class Scorecard:
    project: Project | None
    data_request: DataRequest | None
    owner: Profile | None
    data_owner: Profile | None
    verifier: Profile | None
    period: tuple[date, date]
    revenue_status: str
    reconciliation_import: ReconciliationImport | None = None
    summary: BookSummary | None = None
    decision: RevenueDecision | None = None
    # The imports that built the book, oldest first, each with its `book`
    # record (new / changed / unchanged / missing); the one the page was
    # opened for is marked.
    imports: list[dict] = field(default_factory=list)
    highlighted_import: str = ""
    changed_since_decision: bool = False
    delta: dict | None = None
    coverage: tuple[int, int] | None = None
    # The settled rung (None before any settlement import: no 實收 anywhere).
    settlement: dict | None = None
    next_job: NextJob | None = None
    cards: list[Card] = field(default_factory=list)
    flow: list[FlowStep] = field(default_factory=list)
    rules: list[RuleRow] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.reconciliation_import is not None and self.summary is not None

    @property
    def revenue_status_label(self) -> str:
        return RevenueStatus(self.revenue_status).label

    @property
    def totals(self) -> dict | None:
        """None until a verified import exists (the guard)."""
        if not self.verified:
            return None
        public = {k: v for k, v in self.summary.totals.items() if k != "import_time"}
        return public

    def dimension(self, field_name: str) -> list[dict] | None:
        if not self.verified:
            return None
        return getattr(self.summary, field_name)

    @property
    def exceptions(self) -> list[dict]:
        """The first exceptions the summary keeps, with owner and label."""
        if not self.verified:
            return []
        return self.describe_exceptions(self.summary.exceptions)

    @property
    def settlement_exceptions(self) -> list[dict]:
        """The settlement exceptions (missing, orphan, mismatch) with owner."""
        if not self.verified:
            return []
        return self.describe_exceptions(settlement_exceptions(self.settlement))

    def describe_exceptions(self, entries: list[dict]) -> list[dict]:
        people = {
            Role.LOUIS.value: self.owner,
            Role.WADE.value: self.data_owner,
            Role.HUBER.value: self.verifier,
        }
        labels = {**dict(ExceptionCode.choices), **SETTLEMENT_EXCEPTION_LABELS}
        return [
            {
                **entry,
                "owner_name": str(people.get(entry["owner"]) or entry["owner"]),
                "label": str(labels.get(entry["code"], entry["code"])),
            }
            for entry in entries
        ]

    @property
    def decision_outdated(self) -> bool:
        """The book moved (an import, a tag) after Louis's decision: the
        decision stands, and the page asks him to confirm it again."""
        return self.verified and self.changed_since_decision

    @property
    def exception_owners(self) -> list[tuple[str, int]]:
        """(person, number of open exceptions) — who has to act."""
        if not self.verified:
            return []
        people = {
            Role.LOUIS.value: self.owner,
            Role.WADE.value: self.data_owner,
            Role.HUBER.value: self.verifier,
        }
        owners = dict(self.summary.totals.get("exceptions_by_owner", {}))
        for entry in settlement_exceptions(self.settlement):
            owners[entry["owner"]] = owners.get(entry["owner"], 0) + entry["count"]
        return [(str(people.get(role) or role), n) for role, n in sorted(owners.items()) if n]

    @property
    def chart_span(self) -> tuple[date, date]:
        """The days the daily chart shows: the period, when it is a few weeks
        (5/12–5/21: zeros where no order). A longer period — the API sync's
        standing request covers every year — narrows to the days that have
        orders, and then to the last CHART_MAX_DAYS of those: a bar per day
        of a century would be a 6 MB page nobody can read."""
        start, end = self.period
        if (end - start).days < CHART_MAX_DAYS:
            return start, end
        keys = [
            row["key"]
            for row in self.summary.by_day
            if start.isoformat() <= row["key"] <= end.isoformat()
        ]
        if keys:
            start, end = date.fromisoformat(min(keys)), date.fromisoformat(max(keys))
        return max(start, end - timedelta(days=CHART_MAX_DAYS - 1)), end

    @property
    def chart_days(self) -> list[dict]:
        """One entry per day of chart_span, zeros where no order."""
        if not self.verified:
            return []
        by_key = {row["key"]: row for row in self.summary.by_day}
        start, end = self.chart_span
        days = []
        day = start
        while day <= end:
            key = day.isoformat()
            row = by_key.get(key, {})
            days.append(
                {
                    "key": key,
                    "label": f"{day.month}/{day.day}",
                    "paid_amount": row.get("paid_amount", 0),
                    "held_amount": row.get("held_amount", 0),
                    "pending_amount": row.get("pending_amount", 0),
                    "refunded_amount": row.get("refunded_amount", 0),
                    "orders": row.get("orders", 0),
                }
            )
            day += timedelta(days=1)
        return days

    @property
    def discount_conversion(self) -> dict | None:
        rows = self.dimension("by_discount_code")
        if rows is None:
            return None
        coded = [r for r in rows if r["key"]]
        orders = sum(r["orders"] for r in coded)
        paid = sum(r["paid_orders"] for r in coded)
        return {
            "codes": [
                {**r, "conversion": (r["paid_orders"] / r["orders"]) if r["orders"] else 0.0}
                for r in coded
            ],
            "orders": orders,
            "paid_orders": paid,
            "conversion": (paid / orders) if orders else None,
            "paid_amount": round(sum(r["paid_amount"] for r in coded), 2),
        }


def default_project() -> Project | None:
    """The project the scorecard shows, with its people, in one query."""
    return with_project_people(Project.objects.order_by("created_at")).first()


def with_project_people(projects):
    return with_people(projects, "owner_profile", "data_owner_profile", "verifier_profile")


def _people_loaded(project: Project) -> bool:
    cached = project._state.fields_cache
    return all(
        name in cached for name in ("owner_profile", "data_owner_profile", "verifier_profile")
    )


def current_request(project: Project) -> DataRequest | None:
    base = with_people(
        DataRequest.objects.filter(project=project, kind=DataRequest.Kind.ORDERS),
        "data_owner_profile",
        "requested_by_profile",
    )
    return (
        base.exclude(status=Status.CLOSED).order_by("-created_at").first()
        or base.order_by("-created_at").first()
    )


def book_imports(project: Project) -> list[dict]:
    """Every import of the project's orders, oldest first, with what it did
    to the book."""
    # Only the columns the list shows: each import's summary also keeps its
    # own totals and breakdowns (~80 KB of JSON), which the book already has.
    imports = (
        ReconciliationImport.objects.filter(data_request__project=project)
        .select_related("summary", "upload")
        .only(
            "id",
            "data_request_id",
            "upload_id",
            "status",
            "row_count",
            "duplicate_count",
            "created_at",
            "scorecard_ref",
            "summary__book",
            "upload__original_name",
            "upload__mode",
        )
        .order_by("created_at", "id")
    )
    out = []
    for imp in imports:
        book = getattr(getattr(imp, "summary", None), "book", None) or {}
        out.append(
            {
                "id": imp.pk,
                "data_request_id": imp.data_request_id,
                "upload_id": imp.upload_id,
                "name": imp.upload.original_name,
                "mode": book.get("mode", imp.upload.mode),
                "status": imp.status,
                "status_label": imp.get_status_display(),
                "row_count": imp.row_count,
                "duplicate_count": imp.duplicate_count,
                "new_orders": book.get("new_orders", 0),
                "changed_orders": book.get("changed_orders", 0),
                "unchanged_orders": book.get("unchanged_orders", 0),
                "missing_from_snapshot": book.get("missing_from_snapshot", 0),
                "changes": book.get("changes", {}),
                "created_at": imp.created_at,
                "scorecard_ref": imp.scorecard_ref,
            }
        )
    return out


def _coverage(book: BookSummary) -> tuple[int, int]:
    """(tagged, total) orders of the training programme."""
    counts = queue.tag_counts(book, queue.training_program_id(book))
    return counts.tagged, counts.total


def current_scorecard(*, import_id=None) -> Scorecard:
    """The scorecard of the default project now: the page, its exports and
    `/latest` under load share one reading per second and database state."""
    return memoised(
        "scorecard", (import_id,), lambda: scorecard(default_project(), import_id=import_id)
    )


def scorecard(project: Project | None, *, import_id=None, now=None) -> Scorecard:
    now = now or timezone.now()
    if project is None:
        return Scorecard(None, None, None, None, None, DEFAULT_PERIOD, RevenueStatus.UNVERIFIED)
    if not _people_loaded(project):
        project = with_project_people(Project.objects).get(pk=project.pk)
    data_request = current_request(project)
    book = book_for(project)
    decision = latest_decision(project) if book is not None else None
    reconciliation_import = book.as_of_import if book is not None else None
    period = (
        (data_request.period_start, data_request.period_end) if data_request else DEFAULT_PERIOD
    )
    if reconciliation_import is not None:
        req = reconciliation_import.data_request
        period = (req.period_start, req.period_end)
    state = decision_delta(book, decision)
    card = Scorecard(
        project=project,
        data_request=data_request,
        owner=project.owner_profile,
        data_owner=(data_request.data_owner_profile if data_request else None)
        or project.data_owner_profile,
        verifier=project.verifier_profile,
        period=period,
        revenue_status=revenue_status(book, decision),
        reconciliation_import=reconciliation_import,
        summary=book,
        decision=decision,
        next_job=next_job(project, now=now),
        imports=book_imports(project) if book is not None else [],
        highlighted_import=str(import_id or ""),
        changed_since_decision=state["changed_since_decision"],
        delta=state["delta"],
        coverage=_coverage(book) if book is not None else None,
        settlement=settlement_figures(project, now=now),
    )
    card.cards = _cards(card, now)
    card.flow = _flow(card, project, now)
    card.rules = _rules(card.next_job)
    return card


# --- 本輪狀態 --------------------------------------------------------------------


def _cards(card: Scorecard, now) -> list[Card]:
    request = card.data_request
    data_owner = str(card.data_owner or "Wade")
    if card.reconciliation_import is None and (request is None or request.status == Status.OPEN):
        data = Card(
            "data",
            _("資料狀態"),
            _("未回收"),
            "bad",
            _("尚無 %(owner)s 的 CSV/XLSX 或 API/repo。") % {"owner": data_owner}
            + (
                _("期限 %(due)s。") % {"due": _taipei(request.due_at)}
                if request is not None
                else ""
            ),
        )
    elif request.status == Status.UPLOADED:
        data = Card("data", _("資料狀態"), _("已上傳"), "warn", _("檔案已收到，欄位驗證中。"))
    elif request.status == Status.SCHEMA_FAILED:
        missing = "、".join(request.missing_fields or [])
        data = Card(
            "data",
            _("資料狀態"),
            _("欄位不符"),
            "bad",
            (_("缺少欄位：%(fields)s。") % {"fields": missing} if missing else "")
            + _("已把錯誤清單回傳給 %(owner)s。") % {"owner": data_owner},
        )
    elif request.status == Status.ACCEPTED or card.reconciliation_import is not None:
        data = Card(
            "data",
            _("資料狀態"),
            _("已驗收"),
            "ok",
            _("檔案已通過欄位驗證。")
            + (
                _("對帳匯入 %(rows)s 列。") % {"rows": f"{card.reconciliation_import.row_count:,}"}
                if card.reconciliation_import
                else _("等待對帳匯入。")
            ),
        )
    elif request.status == Status.ESCALATED:
        data = Card(
            "data",
            _("資料狀態"),
            _("已升級"),
            "bad",
            _("%(owner)s 逾期未交檔（期限 %(due)s），已送 Louis blocker card。")
            % {"owner": data_owner, "due": _taipei(request.due_at)},
        )
    else:
        data = Card("data", _("資料狀態"), _("已結案"), "ok", _("Louis 已結案這個資料請求。"))

    project = card.project
    if project.previous_pack_ref:
        previous = Card(
            "previous",
            _("上一輪成果"),
            _("對帳工具箱"),
            "ok",
            _("已建立匯入模板與分類規則。"),
        )
    else:
        previous = Card(
            "previous",
            _("上一輪成果"),
            _("未記錄"),
            "warn",
            _("尚未記錄上一輪的對帳成果。"),
        )

    job = card.next_job
    if job.rule in (Rule.NO_FILE, Rule.SCHEMA_ERRORS):
        value, tone = "Escalation", "warn"
    elif job.job_type == JobType.RECONCILIATION_IMPORT:
        value, tone = "Reconciliation", "blue"
    elif job.rule == Rule.HAS_DATA:
        value, tone = "Scorecard", "ok"
    elif job.rule == Rule.NO_SETTLEMENT:
        value, tone = "Settlement", "warn"
    else:
        value, tone = job.job_type, "blue"
    escalation = Card("escalation", _("本輪升級"), value, tone, job.reason)

    status = card.revenue_status
    if status == RevenueStatus.UNVERIFIED:
        signal = Card(
            "signal",
            _("驗收"),
            "Next Signal",
            "blue",
            _("%(owner)s upload 或 Louis repo/API。營收維持未驗證。") % {"owner": data_owner},
        )
    elif status == RevenueStatus.VERIFIED:
        signal = Card(
            "signal",
            _("驗收"),
            _("待 Louis 決定"),
            "blue",
            _("對帳已驗證；Louis 認列或暫停營收。"),
        )
    elif status == RevenueStatus.RECOGNISED:
        signal = Card(
            "signal",
            _("驗收"),
            _("已認列"),
            "ok",
            _("%(who)s 於 %(when)s 認列。")
            % {"who": card.decision.decided_by, "when": _taipei(card.decision.created_at)},
        )
    else:
        signal = Card(
            "signal",
            _("驗收"),
            _("暫停認列"),
            "warn",
            _("%(who)s 於 %(when)s 暫停認列。")
            % {"who": card.decision.decided_by, "when": _taipei(card.decision.created_at)},
        )
    return [data, previous, escalation, signal]


# --- D1 / D7 / D14 / D30 ---------------------------------------------------------

_STATE_LABELS = {
    "done": gettext_lazy("完成"),
    "current": gettext_lazy("進行中"),
    "blocked": gettext_lazy("受阻"),
    "waiting": gettext_lazy("未開始"),
}


def _step(code, text, state, detail) -> FlowStep:
    return FlowStep(code, text, state, str(_STATE_LABELS[state]), detail)


def _flow(card: Scorecard, project: Project, now) -> list[FlowStep]:
    request = card.data_request
    data_owner = str(card.data_owner or "Wade")
    imported = card.reconciliation_import
    # next_job already looked the repository up: it routes to repo_change
    # exactly when a verified one exists.
    job = card.next_job
    repository = (
        verified_repository(project) if job is not None and job.rule == Rule.HAS_REPO else None
    )

    if request is None:
        d1 = _step(
            "D1",
            _("建立 P0 escalation：Wade 交檔；Huber 標 28,000 退刷/重買；Louis 判定是否停算營收。"),
            "current",
            _("尚未建立資料請求。"),
        )
    else:
        d1 = _step(
            "D1",
            _("建立 P0 escalation：Wade 交檔；Huber 標 28,000 退刷/重買；Louis 判定是否停算營收。"),
            "done",
            _("%(when)s 建立，%(owner)s 須於 %(due)s 前交檔。")
            % {
                "when": _taipei(request.created_at),
                "owner": data_owner,
                "due": _taipei(request.due_at),
            },
        )

    d7_text = _("PLS 自動偵測 overdue export，未交即每日追資料，交檔即跑 reconciliation import。")
    if imported is not None:
        d7 = _step(
            "D7",
            d7_text,
            "done",
            _("%(when)s 完成對帳匯入（%(status)s）。")
            % {"when": _taipei(imported.created_at), "status": imported.get_status_display()},
        )
    elif request is None:
        d7 = _step("D7", d7_text, "waiting", _("等資料請求建立。"))
    elif request.status == Status.ESCALATED or request.is_overdue:
        d7 = _step(
            "D7",
            d7_text,
            "blocked",
            _("已逾期，PLS 每日提醒 %(owner)s。") % {"owner": data_owner},
        )
    elif request.status == Status.SCHEMA_FAILED:
        d7 = _step(
            "D7", d7_text, "blocked", _("檔案欄位不符，等 %(owner)s 重傳。") % {"owner": data_owner}
        )
    else:
        d7 = _step("D7", d7_text, "current", _("等 %(owner)s 交檔。") % {"owner": data_owner})

    d14_text = _("接 Kolable API/repo，讓訂單付款狀態每日同步並產出 exception owner list。")
    if repository is not None:
        d14 = _step(
            "D14", d14_text, "done", _("已驗證 repo/API：%(url)s") % {"url": repository.url}
        )
    elif imported is not None:
        d14 = _step(
            "D14",
            d14_text,
            "current",
            _("例外清單已產出（%(n)s 筆）；尚無驗證過的 Kolable API/repo。")
            % {"n": card.summary.exception_count},
        )
    else:
        d14 = _step("D14", d14_text, "waiting", _("尚無驗證過的 Kolable API/repo。"))

    d30_text = _("形成直播商業儀表板：GMV、實收、退款、重買、折扣碼轉換、素材合規。")
    if card.revenue_status == RevenueStatus.RECOGNISED:
        d30 = _step("D30", d30_text, "done", _("儀表板數字已由 Louis 認列。"))
    elif imported is not None:
        d30 = _step("D30", d30_text, "current", _("儀表板已有已驗證數字，等 Louis 認列。"))
    else:
        d30 = _step("D30", d30_text, "waiting", _("沒有已驗收的匯入前，不顯示任何營收數字。"))
    return [d1, d7, d14, d30]


# --- PLS 下一步自動化規則 ----------------------------------------------------------


def _rules(job: NextJob | None) -> list[RuleRow]:
    rows = [
        RuleRow(
            Rule.NO_FILE,
            _("無 CSV/XLSX"),
            _("建立 Wade P0 data request，due 24h，通知 Louis。"),
            _("不得再產 generic strategy pack。"),
        ),
        RuleRow(
            Rule.SCHEMA_ERRORS,
            _("有檔案但缺欄位"),
            _("回傳 row/schema error 給 Wade。"),
            _("不得人工猜欄位或補假資料。"),
        ),
        RuleRow(
            Rule.HAS_DATA,
            _("有 paid/refunded/pending"),
            _("跑 revenue recognition scorecard，再向 Wade 要金流撥款檔。"),
            _("不得把 pending/refunded 或未撥款的金額算進實收。"),
        ),
        RuleRow(
            Rule.HAS_REPO,
            _("有 repo/API"),
            _("派 repo_change 實作 import endpoint。"),
            _("不得 claim deployment/PR without URL。"),
        ),
    ]
    if job is not None:
        for row in rows:
            # Asking for the settlement file is what "has data" leads to
            # once the orders are reconciled.
            rule = Rule.HAS_DATA if job.rule == Rule.NO_SETTLEMENT else job.rule
            row.current = row.rule == rule
    return rows


def _taipei(dt) -> str:
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M")
