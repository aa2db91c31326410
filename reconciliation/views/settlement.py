"""The settlement pages: the orphan lines with their suggestions, where
Huber or Louis match one to an order by hand (and undo it); and the
settlement part of an order's page, where Louis accepts (or no longer
accepts) a settled amount that differs from the order's."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from reconciliation.errors import DomainError
from reconciliation.models import OrderSettlement, SettlementMatch
from reconciliation.permissions import Action
from reconciliation.selectors import settlement as selectors
from reconciliation.selectors.scorecard import default_project
from reconciliation.services.settlement.acceptance import (
    accept_difference,
    may_accept,
    undo_acceptance,
)
from reconciliation.services.settlement.manual import match_line, may_match, undo_match
from reconciliation.views.common import permission_required

TXN_TYPE_LABELS = {
    "charge": gettext_lazy("收款"),
    "refund": gettext_lazy("退款"),
    "chargeback": gettext_lazy("拒付"),
    "fee": gettext_lazy("手續費"),
    "adjustment": gettext_lazy("調整"),
}


def _detail_text(exc: DomainError) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        return str(detail.get("message") or detail)
    return str(detail)


def settlement_context(order, user=None) -> dict:
    """What the order page shows of the order's settlement: an accepted
    difference keeps its reason (the amounts) in view."""
    if order is None:
        return {}
    outcome = selectors.order_settlement(order)
    reason = outcome.reason
    if reason is not None and reason["fee_rate"] is not None:
        reason = {**reason, "fee_rate_text": f"{reason['fee_rate'] * 100:.2f}%"}
    lines = [
        {**line, "txn_type_label": str(TXN_TYPE_LABELS.get(line["txn_type"], line["txn_type"]))}
        for line in outcome.lines
    ]
    louis = user is not None and may_accept(user)
    return {
        "settlement_state": outcome.state,
        "settlement_label": dict(OrderSettlement.State.choices).get(outcome.state, ""),
        "settlement_reason": reason,
        "settlement_accepted": outcome.difference_accepted,
        "settlement_acceptance": outcome.acceptance,
        "can_accept": outcome.mismatch and louis,
        "can_undo_acceptance": outcome.acceptance is not None and louis,
        "settlement_lines": lines,
    }


@permission_required(Action.VIEW_DASHBOARD)
def settlement_orphans(request):
    project = default_project()
    lines = []
    if project is not None:
        for line in selectors.orphan_lines(project)[:200]:
            lines.append(
                {
                    **selectors.line_out(line),
                    "txn_type_label": str(TXN_TYPE_LABELS.get(line.txn_type, line.txn_type)),
                    "suggestions": selectors.suggestions(project, line),
                }
            )
    matches = (
        SettlementMatch.objects.filter(project=project, undone_at__isnull=True)
        .select_related("line", "order", "created_by")
        .order_by("-id")[:200]
        if project is not None
        else []
    )
    return render(
        request,
        "reconciliation/settlement_orphans.html",
        {"lines": lines, "matches": matches, "can_match": may_match(request.user)},
    )


@require_POST
@permission_required(Action.VIEW_DASHBOARD)
def settlement_match(request):
    try:
        line_id = int(request.POST.get("line_id", ""))
        match = match_line(
            actor=request.user,
            line_id=line_id,
            order_id=request.POST.get("order_id", "").strip()[:100],
            note=request.POST.get("note", "")[:500],
            accept_difference=request.POST.get("accept_difference") == "1",
        )
    except ValueError:
        messages.error(request, _("找不到這筆撥款明細。"))
    except DomainError as exc:
        messages.error(request, _detail_text(exc))
    else:
        messages.success(
            request,
            _("已把撥款明細 %(ref)s 對到訂單 %(order)s。")
            % {"ref": match.line.payment_ref, "order": match.order.order_id},
        )
    return redirect("settlement-orphans")


@require_POST
@permission_required(Action.VIEW_DASHBOARD)
def settlement_undo(request, match_id: int):
    try:
        match = undo_match(actor=request.user, match_id=match_id, note=request.POST.get("note", ""))
    except DomainError as exc:
        messages.error(request, _detail_text(exc))
    else:
        messages.success(
            request,
            _("已取消撥款明細 %(ref)s 的人工對帳。") % {"ref": match.line.payment_ref},
        )
    return redirect("settlement-orphans")


@require_POST
@permission_required(Action.VIEW_DASHBOARD)
def settlement_accept(request):
    order_id = request.POST.get("order_id", "").strip()[:100]
    try:
        accept_difference(
            actor=request.user,
            project=default_project(),
            order_id=order_id,
            note=request.POST.get("note", "")[:500],
        )
    except DomainError as exc:
        messages.error(request, _detail_text(exc))
    else:
        messages.success(request, _("已接受訂單 %(order)s 的撥款差額。") % {"order": order_id})
    return redirect("order-detail", order_id=order_id) if order_id else redirect("scorecard")


@require_POST
@permission_required(Action.VIEW_DASHBOARD)
def settlement_unaccept(request, acceptance_id: int):
    try:
        acceptance = undo_acceptance(
            actor=request.user, acceptance_id=acceptance_id, note=request.POST.get("note", "")
        )
    except DomainError as exc:
        messages.error(request, _detail_text(exc))
        return redirect("scorecard")
    messages.success(
        request,
        _("已取消接受訂單 %(order)s 的撥款差額。") % {"order": acceptance.order.order_id},
    )
    return redirect("order-detail", order_id=acceptance.order.order_id)
