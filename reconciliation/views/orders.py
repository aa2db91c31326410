"""One order of the book: its current state, every version the files
brought and its evidence (reached from the queue, the exceptions and the
scorecard)."""

from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from reconciliation.errors import DomainError
from reconciliation.models import OrderEvidence, OrderRow
from reconciliation.permissions import Action
from reconciliation.selectors import evidence as queue
from reconciliation.selectors.orders import order_detail
from reconciliation.services.revenue import ExceptionCode
from reconciliation.views.common import permission_required
from reconciliation.views.settlement import settlement_context

CHANGE_LABELS = {
    "new": gettext_lazy("新訂單"),
    "changed": gettext_lazy("變更"),
    "unchanged": gettext_lazy("未變"),
    "duplicate": gettext_lazy("檔內重複"),
}


@permission_required(Action.VIEW_EVIDENCE)
def order_page(request, order_id):
    try:
        book = queue.resolve_book()
    except DomainError as exc:
        raise Http404(str(exc.detail)) from exc
    detail = order_detail(book.project, order_id)
    if detail is None:
        raise Http404(_("找不到這筆訂單。"))
    return render(
        request,
        "reconciliation/order.html",
        {
            "detail": detail,
            "order": detail.row,
            "change_labels": {k: str(v) for k, v in CHANGE_LABELS.items()},
            "tag_labels": dict(OrderEvidence.Tag.choices),
            "class_labels": dict(OrderRow.Classification.choices),
            "exception_label": dict(ExceptionCode.choices).get(detail.row.exception_code, ""),
            **settlement_context(detail.order, request.user),
        },
    )
