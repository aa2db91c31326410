from reconciliation.models import Notification
from reconciliation.permissions import Action, can
from reconciliation.selectors.memo import memoised

# Which navigation link a page belongs to (its URL name → the link).
NAV_SECTIONS = {
    "board": "board",
    "request-create": "board",
    "request-detail": "board",
    "upload-page": "board",
    "inbox": "inbox",
    "evidence": "evidence",
    "evidence-import": "evidence",
    "scorecard": "scorecard",
    "pls": "pls",
    "sources": "sources",
    "live": "live",
    "live-stream": "live",
}


def nav_section(request) -> str:
    match = getattr(request, "resolver_match", None)
    return NAV_SECTIONS.get(match.url_name, "") if match else ""


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    unread = memoised(
        "unread",
        (user.pk,),
        Notification.objects.filter(
            recipient__user=user, channel=Notification.Channel.INBOX, read_at__isnull=True
        ).count,
    )
    return {
        "nav_section": nav_section(request),
        "nav_unread": unread,
        "nav_can": {action.name.lower(): can(user, action) for action in Action},
    }
