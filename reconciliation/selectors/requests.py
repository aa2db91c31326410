from django.db.models import Count, Min, Prefetch, Q
from django.shortcuts import get_object_or_404

from reconciliation.models import DataRequest, Notification


def _with_relations(queryset):
    return queryset.select_related(
        "project", "data_owner_profile__user", "requested_by_profile__user"
    ).prefetch_related(
        Prefetch(
            "notifications",
            queryset=Notification.objects.select_related("recipient__user").order_by("created_at"),
        ),
        "uploads",
        "imports",
    )


def request_detail(request_id) -> DataRequest:
    return get_object_or_404(_with_relations(DataRequest.objects.all()), pk=request_id)


def request_list_for_api(*, status: str | None = None):
    queryset = DataRequest.objects.all()
    if status:
        queryset = queryset.filter(status=status)
    return _with_relations(queryset).order_by("-created_at")[:200]


def board_requests(*, status: str | None = None):
    """The board: one query, newest first, with upload counts."""
    queryset = DataRequest.objects.select_related(
        "project", "data_owner_profile__user", "requested_by_profile__user"
    ).annotate(
        upload_count=Count("uploads", distinct=True),
        failed_upload_count=Count(
            "uploads", filter=Q(uploads__schema_status="schema_failed"), distinct=True
        ),
        # When the file was handed in: a done request shows this, not a countdown.
        accepted_at=Min("uploads__created_at", filter=Q(uploads__schema_status="accepted")),
    )
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at")


def status_counts() -> dict[str, int]:
    rows = DataRequest.objects.values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def inbox_items(user, *, limit: int = 200) -> list[Notification]:
    """The person's inbox messages, newest first, with their request."""
    return list(
        Notification.objects.filter(recipient__user=user, channel=Notification.Channel.INBOX)
        .select_related("data_request__project")
        .order_by("-created_at")[:limit]
    )


def blocker_decisions(items, *, can_extend: bool, can_pause: bool) -> dict:
    """For each blocker card whose request still owes a file: which of
    Louis's answers the card offers. `pause` is "button" when there are
    verified numbers to pause, "paused" when recognition is already paused,
    and "unverified" when nothing is verified (there is nothing to pause:
    revenue is not recognised anyway)."""
    from reconciliation.services.revenue import (
        RevenueStatus,
        book_for,
        latest_decision,
        revenue_status,
    )

    decisions, states = {}, {}
    for item in items:
        data_request = item.data_request
        if item.kind != Notification.Kind.BLOCKER_CARD or data_request is None:
            continue
        if data_request.status not in DataRequest.AWAITING_FILE:
            decisions[item.pk] = {"done": data_request.get_status_display()}
            continue
        if not data_request.is_overdue:
            # Louis already extended it: this card's due time is history.
            decisions[item.pk] = {"extended_to": data_request.due_at}
            continue
        project = data_request.project
        if project.pk not in states:
            book = book_for(project)
            decision = latest_decision(project) if book is not None else None
            states[project.pk] = revenue_status(book, decision)
        state = states[project.pk]
        if state == RevenueStatus.UNVERIFIED:
            pause = "unverified"
        elif state == RevenueStatus.PAUSED:
            pause = "paused"
        else:
            pause = "button" if can_pause else ""
        decisions[item.pk] = {"extend": can_extend, "pause": pause, "request": data_request}
    return decisions


def messages_for(data_request: DataRequest, user) -> list[Notification]:
    """The messages of a request one person may read on its page: their own,
    or all of them for whoever may close requests (Louis) or a superuser."""
    from reconciliation.permissions import Action, can

    notifications = list(data_request.notifications.all())
    if not (user.is_superuser or can(user, Action.CLOSE_REQUEST)):
        notifications = [n for n in notifications if n.recipient.user_id == user.pk]
    return group_by_message(notifications)


def group_by_message(notifications) -> list[dict]:
    """One entry per message, with the channels it went out on: the inbox
    copy is the one shown, e-mail and LINE are listed with their state."""
    groups: dict = {}
    for n in notifications:
        key = (n.dedupe_key or "").rsplit(":", 1)[0] or n.pk
        group = groups.setdefault((n.recipient_id, key), {"message": n, "channels": []})
        if n.channel == Notification.Channel.INBOX:
            group["message"] = n
        group["channels"].append(n)
    return list(groups.values())


def requests_by_id(ids) -> dict:
    """Requests named in dispatch evidence, by their id as text."""
    wanted = {str(i) for i in ids if i}
    if not wanted:
        return {}
    found = DataRequest.objects.filter(pk__in=wanted).select_related("data_owner_profile__user")
    return {str(r.pk): r for r in found}
