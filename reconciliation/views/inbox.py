from datetime import timedelta

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from reconciliation.errors import DomainError
from reconciliation.forms import ExtendDueForm
from reconciliation.models import Notification
from reconciliation.permissions import Action, can
from reconciliation.selectors.requests import blocker_decisions, inbox_items
from reconciliation.services.revenue import record_revenue_decision
from reconciliation.views.common import permission_required


def inbox(request):
    """The signed-in person's in-app messages (every role has an inbox, an
    outsider's is simply empty). A blocker card about a request that still
    owes a file carries Louis's two answers: extend, or pause recognition."""
    items = inbox_items(request.user)
    decisions = blocker_decisions(
        items,
        can_extend=can(request.user, Action.CLOSE_REQUEST),
        can_pause=can(request.user, Action.DECIDE_REVENUE),
    )
    for item in items:
        item.decision = decisions.get(item.pk)
        if item.decision and item.decision.get("extend"):
            item.extend_form = ExtendDueForm(
                initial={"due_at": timezone.localtime() + timedelta(hours=24)},
                auto_id=f"id_%s_{item.pk.hex[:8]}",
            )
    return render(request, "reconciliation/inbox.html", {"items": items})


@require_POST
def inbox_mark_read(request, pk=None):
    unread = Notification.objects.filter(
        recipient__user=request.user, channel=Notification.Channel.INBOX, read_at__isnull=True
    )
    if pk is not None:
        unread = unread.filter(pk=pk)
    unread.update(read_at=timezone.now())
    return redirect("inbox")


@require_POST
@permission_required(Action.DECIDE_REVENUE)
def inbox_pause_revenue(request, pk):
    """The blocker card's 暫停認列: Louis's pause decision, as on the scorecard."""
    card = get_object_or_404(
        Notification, pk=pk, recipient__user=request.user, kind=Notification.Kind.BLOCKER_CARD
    )
    try:
        record_revenue_decision(
            decided_by=request.user,
            decision="pause",
            note=_("從阻塞卡暫停：%(dataset)s 逾期未交") % {"dataset": card.data_request},
            project=card.data_request.project if card.data_request_id else None,
        )
    except DomainError as exc:
        messages.error(request, exc.detail if isinstance(exc.detail, str) else str(exc.detail))
    else:
        Notification.objects.filter(pk=card.pk, read_at__isnull=True).update(read_at=timezone.now())
        messages.success(request, _("已暫停認列營收；對帳成績單會顯示「暫停認列」。"))
    return redirect("inbox")
