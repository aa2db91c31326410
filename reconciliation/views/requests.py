from datetime import timedelta

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from reconciliation.errors import DomainError
from reconciliation.forms import CloseRequestForm, DataRequestForm, ExtendDueForm
from reconciliation.models import DEFAULT_DATASET, AuditEvent, DataRequest
from reconciliation.permissions import Action, can
from reconciliation.selectors import board_requests, request_detail
from reconciliation.selectors.requests import messages_for, status_counts
from reconciliation.services.notify import taipei
from reconciliation.services.requests import (
    close_data_request,
    create_data_request,
    default_project,
    extend_due,
)
from reconciliation.services.template_files import (
    settlement_template_csv,
    settlement_template_xlsx,
    template_csv,
    template_xlsx,
)
from reconciliation.views.common import permission_required


@permission_required(Action.VIEW_DASHBOARD)
def board(request):
    status = request.GET.get("status") or None
    if status and status not in DataRequest.Status.values:
        status = None
    counts = status_counts()
    return render(
        request,
        "reconciliation/board.html",
        {
            "requests": board_requests(status=status)[:200],
            "status": status,
            "status_chips": [
                (v, label, counts.get(v, 0)) for v, label in DataRequest.Status.choices
            ],
            "now": timezone.now(),
        },
    )


@permission_required(Action.CREATE_REQUEST)
def request_create(request):
    try:
        project = default_project()
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("board")
    default_owner = project.data_owner_profile.username if project.data_owner_profile else None
    form = DataRequestForm(request.POST or None, default_owner=default_owner)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            data_request = create_data_request(
                requested_by=request.user,
                project=project,
                data_owner_username=data["data_owner"],
                # The order export's default name on a settlement request
                # becomes the settlement file's default name.
                requested_dataset=None
                if data["kind"] == DataRequest.Kind.SETTLEMENT
                and data["requested_dataset"] == DEFAULT_DATASET
                else data["requested_dataset"],
                period_start=data["period_start"],
                period_end=data["period_end"],
                due_at=data["due_at"],
                audit_note=data["audit_note"],
                kind=data["kind"] or DataRequest.Kind.ORDERS,
            )
        except DomainError as exc:
            # The service checks the due time as it does for the API.
            detail = exc.detail.get("message") if isinstance(exc.detail, dict) else exc.detail
            form.add_error("due_at" if exc.code == "due_in_past" else None, detail)
        else:
            messages.success(
                request,
                _("已建立 P0 資料請求，%(owner)s 須在 %(due)s 前交檔；已通知相關的人。")
                % {"owner": data_request.data_owner_profile, "due": taipei(data_request.due_at)},
            )
            return redirect("request-detail", pk=data_request.pk)
    return render(request, "reconciliation/request_form.html", {"form": form, "project": project})


@permission_required(Action.VIEW_DASHBOARD)
def request_view(request, pk):
    data_request = request_detail(pk)
    events = (
        AuditEvent.objects.filter(data_request=data_request)
        .select_related("actor__user")
        .order_by("created_at", "id")
    )
    return render(
        request,
        "reconciliation/request_detail.html",
        {
            "req": data_request,
            "events": events,
            "notifications": messages_for(data_request, request.user),
            "sees_all_messages": can(request.user, Action.CLOSE_REQUEST)
            or request.user.is_superuser,
            "uploads": data_request.uploads.all(),
            "imports": data_request.imports.all(),
            "close_form": CloseRequestForm(),
            "extend_form": ExtendDueForm(
                initial={"due_at": timezone.localtime() + timedelta(hours=24)}
            ),
            "now": timezone.now(),
        },
    )


@require_POST
@permission_required(Action.CLOSE_REQUEST)
def request_close(request, pk):
    data_request = get_object_or_404(DataRequest, pk=pk)
    form = CloseRequestForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        close_data_request(data_request=data_request, closed_by=request.user, note=note)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("已結案。"))
    return redirect("request-detail", pk=pk)


def _back(request, pk):
    """Where a form posted from elsewhere (the inbox's blocker card) returns."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("request-detail", pk=pk)


@require_POST
@permission_required(Action.CLOSE_REQUEST)
def request_extend(request, pk):
    data_request = get_object_or_404(DataRequest, pk=pk)
    form = ExtendDueForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("請填寫新的到期時間。"))
        return _back(request, pk)
    try:
        extend_due(
            data_request=data_request,
            extended_by=request.user,
            due_at=form.cleaned_data["due_at"],
            note=form.cleaned_data["note"],
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(
            request,
            _("已把期限延到 %(due)s，並通知 %(owner)s。")
            % {"due": taipei(data_request.due_at), "owner": data_request.data_owner_profile},
        )
    return _back(request, pk)


@permission_required(Action.VIEW_DASHBOARD)
def template_download(request, fmt):
    settlement = request.GET.get("kind") == "settlement"
    if fmt == "xlsx":
        response = HttpResponse(
            settlement_template_xlsx() if settlement else template_xlsx(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    elif fmt == "csv":
        response = HttpResponse(
            settlement_template_csv() if settlement else template_csv(),
            content_type="text/csv; charset=utf-8",
        )
    else:
        raise Http404
    name = "settlement" if settlement else "orders"
    response["Content-Disposition"] = f'attachment; filename="kolable-{name}-template.{fmt}"'
    return response
