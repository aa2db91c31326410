from datetime import date

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reconciliation.inputs import NOTE_MAX_LENGTH, date_range_message, in_year_range, max_length
from reconciliation.models import DEFAULT_DATASET, DataRequest
from reconciliation.permissions import Action, can
from reconciliation.services.requests import DEFAULT_PERIOD, REQUEST_TTL


class DataRequestForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("要的資料"),
        choices=DataRequest.Kind.choices,
        initial=DataRequest.Kind.ORDERS,
        required=False,
        help_text=_("金流撥款檔：金流平台實際撥款的明細，用來確認實收。"),
    )
    requested_dataset = forms.CharField(
        label=_("資料集"),
        initial=DEFAULT_DATASET,
        max_length=max_length(DataRequest, "requested_dataset"),
    )
    period_start = forms.DateField(
        label=_("期間起"),
        initial=DEFAULT_PERIOD[0],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    period_end = forms.DateField(
        label=_("期間迄"),
        initial=DEFAULT_PERIOD[1],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    data_owner = forms.ChoiceField(label=_("資料負責人"))
    due_at = forms.DateTimeField(
        label=_("交檔期限（台北時間）"),
        help_text=_("預設 24 小時後；可以設任何未來的時間，例如 30 分鐘後。"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )
    audit_note = forms.CharField(
        label=_("決策備註"),
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, default_owner: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        owners = [
            u
            for u in get_user_model().objects.filter(is_active=True).order_by("username")
            if can(u, Action.UPLOAD_EXPORT) and not u.groups.filter(name="pls").exists()
        ]
        self.fields["data_owner"].choices = [
            (u.username, u.get_full_name() or u.username) for u in owners
        ]
        if default_owner:
            self.fields["data_owner"].initial = default_owner
        # The 24 h default, counted from when the form is shown.
        self.fields["due_at"].initial = timezone.localtime() + REQUEST_TTL

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("period_start"), cleaned.get("period_end")
        for name in ("period_start", "period_end"):
            if isinstance(cleaned.get(name), date) and not in_year_range(cleaned[name]):
                self.add_error(name, date_range_message())
                cleaned.pop(name)
        start, end = cleaned.get("period_start"), cleaned.get("period_end")
        if isinstance(start, date) and isinstance(end, date) and end < start:
            self.add_error("period_end", _("期間迄日早於起日。"))
        return cleaned


class CloseRequestForm(forms.Form):
    note = forms.CharField(label=_("結案備註"), required=False, max_length=1000)


class ExtendDueForm(forms.Form):
    due_at = forms.DateTimeField(
        label=_("新的到期時間"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    note = forms.CharField(label=_("延期備註"), required=False, max_length=1000)

    def clean_due_at(self):
        due_at = self.cleaned_data["due_at"]
        if not in_year_range(due_at):
            raise forms.ValidationError(date_range_message())
        return due_at
