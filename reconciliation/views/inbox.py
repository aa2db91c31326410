from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from reconciliation.models import Notification


def inbox(request):
    """The signed-in person's in-app messages (every role has an inbox, an
    outsider's is simply empty)."""
    items = (
        Notification.objects.filter(
            recipient__user=request.user, channel=Notification.Channel.INBOX
        )
        .select_related("data_request")
        .order_by("-created_at")[:200]
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
