"""The sync page: the project's source (Louis configures it), its last runs
with links to their uploads and imports, and "sync now"."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from reconciliation.errors import DomainError
from reconciliation.models import SyncSource
from reconciliation.permissions import Action
from reconciliation.selectors.sync import run_out, runs_of, sources_of
from reconciliation.services.profiles import profile_for
from reconciliation.services.requests import default_project
from reconciliation.services.sources import TOKEN_MAX_LENGTH, create_source, update_source
from reconciliation.services.sync import request_sync
from reconciliation.views.common import permission_required


class SourceForm(forms.Form):
    base_url = forms.CharField(
        label=gettext_lazy("API 網址"),
        max_length=SyncSource._meta.get_field("base_url").max_length,
        widget=forms.TextInput(attrs={"placeholder": "https://api.kolable.example"}),
    )
    token = forms.CharField(
        label=gettext_lazy("API 權杖（只保存加密後的值，之後只顯示末四碼）"),
        max_length=TOKEN_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    schedule_time = forms.TimeField(
        label=gettext_lazy("每日同步時間（台北）"),
        initial="06:00",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    overlap_minutes = forms.IntegerField(
        label=gettext_lazy("重疊分鐘（補抓晚寫入的變更）"), min_value=0, max_value=1440, initial=60
    )
    page_size = forms.IntegerField(
        label=gettext_lazy("每頁筆數"), min_value=1, max_value=5000, initial=500
    )


class TokenForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("新的 API 權杖"),
        max_length=TOKEN_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )


@permission_required(Action.VIEW_DASHBOARD)
def sources_page(request):
    project = default_project()
    sources = [
        {"source": source, "runs": [(run, run_out(run)) for run in runs_of(source)]}
        for source in sources_of(project)
    ]
    return render(
        request,
        "reconciliation/sources.html",
        {"project": project, "sources": sources, "form": SourceForm(), "token_form": TokenForm()},
    )


@require_POST
@permission_required(Action.CONFIGURE_SOURCE)
def source_create(request):
    form = SourceForm(request.POST)
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(error))
        return redirect("sources")
    try:
        create_source(
            project=default_project(),
            created_by=request.user,
            kind=SyncSource.Kind.KOLABLE_API,
            **form.cleaned_data,
        )
        messages.success(
            request, _("已設定 Kolable API 來源；每天會自動同步，也可以按「立即同步」。")
        )
    except DomainError as exc:
        messages.error(request, exc.detail if isinstance(exc.detail, str) else exc.code)
    return redirect("sources")


@require_POST
@permission_required(Action.SYNC_SOURCE)
def source_sync(request, pk):
    source = get_object_or_404(SyncSource, pk=pk)
    _run, created = request_sync(source=source, requested_by=profile_for(request.user))
    messages.success(
        request,
        _("已排入同步，完成後這裡會顯示結果。")
        if created
        else _("這個來源已經在同步中，沒有重複排入。"),
    )
    return redirect("sources")


@require_POST
@permission_required(Action.CONFIGURE_SOURCE)
def source_token(request, pk):
    source = get_object_or_404(SyncSource, pk=pk)
    form = TokenForm(request.POST)
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(error))
        return redirect("sources")
    try:
        update_source(source=source, updated_by=request.user, token=form.cleaned_data["token"])
        messages.success(request, _("已更換 API 權杖；按「立即同步」會從上次成功的位置接續。"))
    except DomainError as exc:
        messages.error(request, exc.detail if isinstance(exc.detail, str) else exc.code)
    return redirect("sources")
