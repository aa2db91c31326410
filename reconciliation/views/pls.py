"""The PLS page: what PLS would be sent to do next and why, the dispatch log,
the claims with their checks, and Louis's forms for the previous pack and the
target repository/API."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from reconciliation.errors import DomainError
from reconciliation.message_text import dataset_label
from reconciliation.models import ArtifactClaim, DataRequest
from reconciliation.permissions import Action
from reconciliation.selectors.claims import recent_claims, verified_claims
from reconciliation.selectors.dispatch import (
    Rule,
    next_job,
    recent_dispatches,
    verified_repository,
)
from reconciliation.selectors.requests import requests_by_id
from reconciliation.services.claims import record_claim, record_previous_pack
from reconciliation.services.escalation import overdue_text
from reconciliation.services.requests import default_project
from reconciliation.views.common import permission_required


class ProjectContextForm(forms.Form):
    previous_pack_ref = forms.CharField(
        label=gettext_lazy("上一輪成果（連結或說明）"),
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "https://gist.github.com/…"}),
    )
    target_repo_url = forms.CharField(
        label=gettext_lazy("目標 repo / API 網址（送出時驗證 HTTP 200）"),
        max_length=1000,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "https://github.com/<owner>/<repo>"}),
    )

    def clean(self):
        data = super().clean()
        if not data.get("previous_pack_ref") and not data.get("target_repo_url"):
            raise forms.ValidationError(_("請至少填一項。"))
        return data


class ClaimForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("類型"),
        choices=[
            (ArtifactClaim.Kind.GITHUB_PR.value, ArtifactClaim.Kind.GITHUB_PR.label),
            (ArtifactClaim.Kind.DEPLOYMENT.value, ArtifactClaim.Kind.DEPLOYMENT.label),
        ],
    )
    url = forms.CharField(
        label=gettext_lazy("網址（送出時驗證 HTTP 200）"),
        max_length=1000,
        widget=forms.TextInput(attrs={"placeholder": "https://github.com/<owner>/<repo>/pull/<n>"}),
    )


# The seed's "PLS 下一步自動化規則" rows, as the page names them.
RULE_LABELS = {
    Rule.NO_FILE: gettext_lazy("無 CSV/XLSX"),
    Rule.SCHEMA_ERRORS: gettext_lazy("有檔案但缺欄位"),
    Rule.HAS_DATA: gettext_lazy("有 paid/refunded/pending"),
    Rule.HAS_REPO: gettext_lazy("有 repo/API"),
    Rule.NO_PACK: gettext_lazy("尚無任何對帳成果"),
    Rule.HAS_SOURCE: gettext_lazy("已接 Kolable API 同步"),
    Rule.NO_SETTLEMENT: gettext_lazy("有訂單、沒有金流撥款檔"),
}


def evidence_lines(evidence: dict, requests: dict | None = None) -> list[str]:
    """The evidence of a dispatch in a few readable lines; `requests` (id →
    DataRequest) lets a blocker name its request instead of an id."""
    lines = []
    requests = requests or {}
    if evidence.get("target_repo_url"):
        lines.append(_("已驗證 repo/API：%(url)s") % {"url": evidence["target_repo_url"]})
    if evidence.get("upload_id"):
        lines.append(
            _("上傳 %(id)s · sha256 %(sha)s · %(rows)s 列")
            % {
                "id": evidence["upload_id"][:8],
                "sha": evidence.get("sha256", "")[:12],
                "rows": f"{int(evidence.get('row_count') or 0):,}",
            }
        )
    if evidence.get("kind") == "blocker":
        if evidence.get("data_request_id") and evidence.get("owner"):
            data_request = requests.get(evidence["data_request_id"])
            status = evidence.get("status", "")
            lines.append(
                _("卡住的是「%(dataset)s」：%(status)s，由 %(owner)s 負責交檔")
                % {
                    "dataset": dataset_label(data_request.requested_dataset)
                    if data_request
                    else evidence["data_request_id"][:8],
                    "status": DataRequest.Status(status).label
                    if status in DataRequest.Status.values
                    else status,
                    "owner": data_request.data_owner_profile if data_request else evidence["owner"],
                }
            )
            if evidence.get("overdue_by_seconds"):
                lines.append(
                    _("已逾期 %(t)s") % {"t": overdue_text(evidence["overdue_by_seconds"])}
                )
        elif evidence.get("blocker"):
            lines.append(_("阻塞：%(b)s") % {"b": evidence["blocker"]})
        if evidence.get("missing_fields"):
            lines.append(
                _("缺少欄位：%(f)s") % {"f": "、".join(map(str, evidence["missing_fields"]))}
            )
        if evidence.get("previous_pack_ref"):
            lines.append(_("上一輪成果：%(ref)s") % {"ref": evidence["previous_pack_ref"]})
    return lines


@permission_required(Action.VIEW_DASHBOARD)
def pls_console(request):
    try:
        project = default_project()
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("board")
    job = next_job(project)
    recent = list(recent_dispatches(project))
    requests = requests_by_id(
        [job.evidence.get("data_request_id") if job else None]
        + [d.evidence.get("data_request_id") for d in recent]
    )
    dispatches = [
        (d, RULE_LABELS.get(d.evidence.get("rule"), ""), evidence_lines(d.evidence, requests))
        for d in recent
    ]
    return render(
        request,
        "reconciliation/pls.html",
        {
            "project": project,
            "job": job,
            "job_lines": evidence_lines(job.evidence, requests),
            "job_rule": RULE_LABELS.get(job.rule, ""),
            "dispatches": dispatches,
            "claims": recent_claims(project),
            "verified_count": verified_claims(project).count(),
            "repository": verified_repository(project),
            "context_form": ProjectContextForm(
                initial={"previous_pack_ref": project.previous_pack_ref}
            ),
            "claim_form": ClaimForm(),
        },
    )


def _show_claim_result(request, claim, check, verified_message):
    if check.verified:
        messages.success(request, verified_message % {"url": claim.url})
    else:
        messages.error(
            request,
            _("未通過驗證，已記為拒絕、不算完成：%(reason)s") % {"reason": check.reason},
        )


@require_POST
@permission_required(Action.RECORD_PROJECT_CONTEXT)
def pls_context(request):
    form = ProjectContextForm(request.POST)
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(error))
        return redirect("pls")
    try:
        project = default_project()
        repo_url = form.cleaned_data["target_repo_url"].strip()
        if repo_url:
            claim, check = record_claim(
                project=project,
                kind=ArtifactClaim.Kind.REPOSITORY,
                url=repo_url,
                claimed_by=request.user,
            )
            _show_claim_result(request, claim, check, _("已驗證並登記目標 repo/API：%(url)s"))
            if not check.verified:
                return redirect("pls")
        pack = form.cleaned_data["previous_pack_ref"].strip()
        if pack and pack != project.previous_pack_ref:
            record_previous_pack(project=project, ref=pack, recorded_by=request.user)
            messages.success(request, _("已登記上一輪成果；PLS 不會再被派去重做對帳工具箱。"))
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect("pls")


@require_POST
@permission_required(Action.RECORD_CLAIM)
def pls_claim(request):
    form = ClaimForm(request.POST)
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(error))
        return redirect("pls")
    try:
        claim, check = record_claim(
            project=default_project(),
            kind=form.cleaned_data["kind"],
            url=form.cleaned_data["url"],
            claimed_by=request.user,
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        _show_claim_result(request, claim, check, _("已驗證：%(url)s"))
    return redirect("pls")
