from django.db.models import Count, Prefetch, Q
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
    )
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at")


def status_counts() -> dict[str, int]:
    rows = DataRequest.objects.values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}
