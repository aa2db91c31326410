"""The guard and Louis's decision: the revenue status, the decision taken
as of a book version, and what changed since."""

from decimal import Decimal

from django.db import models, transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from reconciliation.errors import Conflict, Forbidden, InvalidInput
from reconciliation.models import (
    AuditEvent,
    BookSummary,
    Order,
    Project,
    ReconciliationImport,
    RevenueDecision,
)
from reconciliation.permissions import Action, can
from reconciliation.selectors.people import with_people
from reconciliation.services.audit import record_audit
from reconciliation.services.profiles import profile_for

# --- The guard and Louis's decision ---------------------------------------------------


class RevenueStatus(models.TextChoices):
    UNVERIFIED = "unverified", _("未驗證")
    VERIFIED = "verified", _("已驗證，待認列")
    RECOGNISED = "recognised", _("已認列")
    PAUSED = "paused", _("暫停認列")


def book_for(project: Project | None) -> BookSummary | None:
    """The project's book when a verified (accepted or partial) import built
    it. None means the period's revenue is unverified."""
    if project is None:
        return None
    # Not joined to the project: the caller has it (with its people loaded,
    # often), and it is set on the summary below.
    query = (
        BookSummary.objects.filter(project=project)
        .select_related("as_of_import__data_request", "as_of_import__upload")
        .defer(
            "as_of_import__upload__row_errors",
            "as_of_import__upload__file_errors",
            "as_of_import__upload__warnings",
        )
    )
    summary = query.first()
    if summary is None and Order.objects.filter(project=project).exists():
        # A book the 0008 migration built from earlier imports has no
        # summary yet: computed once, from its orders.
        from reconciliation.services.revenue.summary import rebuild_book_summary

        rebuild_book_summary(project=project)
        summary = query.first()
    if summary is None or summary.effective_status == ReconciliationImport.Status.FAILED:
        return None
    summary.project = project
    return summary


def latest_decision(project: Project | None) -> RevenueDecision | None:
    if project is None:
        return None
    return (
        with_people(RevenueDecision.objects.filter(project=project), "decided_by")
        .order_by("-created_at", "-id")
        .first()
    )


def revenue_status(book_summary, decision: RevenueDecision | None) -> str:
    if book_summary is None:
        return RevenueStatus.UNVERIFIED
    if decision is None:
        return RevenueStatus.VERIFIED
    if decision.decision == RevenueDecision.Decision.APPROVE:
        return RevenueStatus.RECOGNISED
    return RevenueStatus.PAUSED


def decision_delta(book_summary: BookSummary | None, decision: RevenueDecision | None) -> dict:
    """Whether the book moved since Louis's decision, and by how much."""
    if book_summary is None or decision is None:
        return {"changed_since_decision": False, "delta": None}
    changed = decision.book_version is None or decision.book_version < book_summary.version
    paid_amount = round(float(book_summary.totals.get("paid_amount", 0)), 2)
    paid_orders = int(book_summary.totals.get("paid_orders", 0))
    before_amount = float(decision.verified_amount or 0)
    before_orders = int(decision.verified_orders or 0)
    return {
        "changed_since_decision": changed,
        "delta": {
            "paid_amount": round(paid_amount - before_amount, 2),
            "paid_orders": paid_orders - before_orders,
            "book_versions": book_summary.version - (decision.book_version or 0),
        }
        if changed
        else None,
    }


def _tell_louis_if_changed(book_summary: BookSummary, *, cause: dict) -> None:
    """cause: {"kind": "import", "file_name": …}, {"kind": "tags", "count": n} or
    {"kind": "settlement", "order_id": …} (a settlement matched or accepted by hand)."""
    decision = latest_decision(book_summary.project)
    if decision is None:
        return
    state = decision_delta(book_summary, decision)
    if not state["changed_since_decision"]:
        return
    from reconciliation.services.notify import sync_book_changed

    sync_book_changed(
        project=book_summary.project,
        louis=book_summary.project.owner_profile or decision.decided_by,
        version=book_summary.version,
        delta=state["delta"],
        cause=cause,
    )


def record_revenue_decision(
    *,
    decided_by,
    decision: str,
    note: str = "",
    project: Project | None = None,
    expected_version: int | None = None,
) -> RevenueDecision:
    """Louis approves (recognised) or pauses (paused) recognition of the
    book as it is now. Partial books are approved for their unblocked orders
    only: the decision freezes the book version, the recognised amount, the
    verified orders and the number held back. With `expected_version` (the
    version the page showed him) a book that moved since is refused (409):
    he approves what he saw."""
    if not can(decided_by, Action.DECIDE_REVENUE):
        raise Forbidden("forbidden", gettext("只有 Louis 能決定營收認列。"))
    if decision not in RevenueDecision.Decision.values:
        raise InvalidInput("invalid_decision", gettext("decision 必須是 approve 或 pause。"))
    note = (note or "").strip()
    if project is None:
        from reconciliation.services.requests import default_project

        project = default_project()
    actor = profile_for(decided_by)
    with transaction.atomic():
        if book_for(project) is None:
            raise Conflict(
                "nothing_verified",
                gettext("尚無已驗收的對帳匯入：營收仍未驗證，沒有可以認列或暫停的數字。"),
            )
        book_summary = BookSummary.objects.select_for_update().get(pk=project.pk)
        if expected_version is not None and expected_version != book_summary.version:
            raise Conflict(
                "book_changed",
                gettext("你看到的數字之後訂單簿又變了，請重新檢視再決定。"),
            )
        approve = decision == RevenueDecision.Decision.APPROVE
        paid_amount = Decimal(str(book_summary.totals.get("paid_amount", 0))).quantize(
            Decimal("0.01")
        )
        paid_orders = int(book_summary.totals.get("paid_orders", 0))
        held_rows = int(book_summary.totals.get("held_orders", 0))
        from reconciliation.selectors.settlement import recognised_split

        settled, unsettled = recognised_split(project, paid_amount if approve else None)
        made = RevenueDecision.objects.create(
            settled_amount=settled,
            unsettled_amount=unsettled,
            reconciliation_import=book_summary.as_of_import,
            project=project,
            book_version=book_summary.version,
            verified_amount=paid_amount,
            verified_orders=paid_orders,
            decision=decision,
            note=note,
            recognised_amount=paid_amount if approve else None,
            held_back_rows=held_rows,
            decided_by=actor,
        )
        record_audit(
            verb=AuditEvent.Verb.REVENUE_DECIDED,
            actor=actor,
            data_request=book_summary.as_of_import.data_request,
            message=(
                (
                    gettext("%(actor)s 認列已驗證營收 NT$%(amount)s（%(orders)s 筆）")
                    % {
                        "actor": actor,
                        "amount": f"{paid_amount:,.0f}",
                        "orders": f"{paid_orders:,}",
                    }
                    + (
                        gettext("，保留 %(n)s 筆待釐清訂單") % {"n": f"{held_rows:,}"}
                        if held_rows
                        else ""
                    )
                    + (
                        gettext("；其中金流已撥款 NT$%(settled)s、尚未撥款 NT$%(unsettled)s")
                        % {"settled": f"{settled:,.0f}", "unsettled": f"{unsettled:,.0f}"}
                        if settled is not None
                        else gettext("；尚無金流撥款檔，無法確認已撥款的部分")
                    )
                )
                if approve
                else gettext("%(actor)s 暫停認列營收") % {"actor": actor}
            )
            + (gettext("。備註：%(note)s") % {"note": note} if note else "。"),
            decision=decision,
            import_id=str(book_summary.as_of_import_id),
            book_version=book_summary.version,
            recognised_amount=str(paid_amount) if approve else None,
            verified_orders=paid_orders,
            held_back_rows=held_rows,
            settled_amount=str(settled) if settled is not None else None,
            unsettled_amount=str(unsettled) if unsettled is not None else None,
            note=note,
        )
    return made
