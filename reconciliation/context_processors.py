from reconciliation.models import Notification
from reconciliation.permissions import Action, can


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    unread = Notification.objects.filter(
        recipient__user=user, channel=Notification.Channel.INBOX, read_at__isnull=True
    ).count()
    return {
        "nav_unread": unread,
        "nav_can": {action.name.lower(): can(user, action) for action in Action},
    }
