"""PLS dispatch (every answer carries its evidence; never project_runner
once a pack exists), verified claims (only a URL that answered 200 counts)
and the project context."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from reconciliation.api.common import ErrorOut, require
from reconciliation.errors import InvalidInput
from reconciliation.inputs import ModelText
from reconciliation.models import ArtifactClaim, Project
from reconciliation.permissions import Action
from reconciliation.selectors.dispatch import verified_repository
from reconciliation.services.claims import record_claim, record_previous_pack
from reconciliation.services.dispatch import dispatch_next_job
from reconciliation.services.requests import default_project

router = Router(tags=["PLS dispatch and claims"])


class DispatchIn(Schema):
    project_id: UUID | None = None


class DispatchOut(Schema):
    id: UUID
    project_id: UUID
    job_type: str
    rule: str
    reason: str
    evidence: dict
    data_request_id: UUID | None
    created_at: datetime


class ClaimIn(Schema):
    kind: Literal["github_pr", "deployment"]
    url: ModelText(ArtifactClaim, "url") = Field(..., min_length=1)
    project_id: UUID | None = None


class ClaimOut(Schema):
    id: UUID
    project_id: UUID
    kind: str
    url: str
    status: str
    verified: bool
    http_status: int | None
    reason: str
    checked_at: datetime
    claimed_by: str


class ProjectContextIn(Schema):
    project_id: UUID | None = None
    previous_pack_ref: ModelText(Project, "previous_pack_ref") | None = None
    target_repo_url: ModelText(ArtifactClaim, "url") | None = None


class ProjectContextOut(Schema):
    project_id: UUID
    project: str
    previous_pack_ref: str
    previous_pack_recorded_at: datetime | None
    target_repo: ClaimOut | None


def _project(project_id: UUID | None) -> Project:
    if project_id:
        return get_object_or_404(Project, pk=project_id)
    return default_project()


def claim_out(claim: ArtifactClaim) -> dict:
    return {
        "id": claim.pk,
        "project_id": claim.project_id,
        "kind": claim.kind,
        "url": claim.url,
        "status": claim.status,
        "verified": claim.status == ArtifactClaim.Status.VERIFIED,
        "http_status": claim.http_status,
        "reason": claim.reason,
        "checked_at": timezone.localtime(claim.checked_at),
        "claimed_by": claim.claimed_by.username,
    }


def _refused(claim: ArtifactClaim, check) -> InvalidInput:
    return InvalidInput(
        "claim_refused",
        {
            "message": _("網址未通過驗證，已記為拒絕，不算完成。"),
            "reason_code": check.code,
            "reason": check.reason,
            "claim": claim_out(claim),
        },
    )


def context_out(project: Project) -> dict:
    repository = verified_repository(project)
    return {
        "project_id": project.pk,
        "project": project.name,
        "previous_pack_ref": project.previous_pack_ref,
        "previous_pack_recorded_at": project.previous_pack_recorded_at,
        "target_repo": claim_out(repository) if repository else None,
    }


@router.post(
    "/dispatch",
    response={201: DispatchOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Decide and record PLS's next job (PLS)",
)
def dispatch(request, payload: DispatchIn):
    """`job_type` is one of data_request, people_sync, reconciliation_import,
    repo_change, project_runner (only when no reconciliation pack exists at
    all) or none. `evidence` always carries the uploaded data (upload id,
    sha256), the verified target_repo_url, or an explicit blocker (request id,
    status, owner, overdue by)."""
    require(request, Action.DISPATCH_JOBS)
    decision = dispatch_next_job(project=_project(payload.project_id), requested_by=request.auth)
    return 201, {
        "id": decision.pk,
        "project_id": decision.project_id,
        "job_type": decision.job_type,
        "rule": decision.evidence.get("rule", ""),
        "reason": decision.reason,
        "evidence": decision.evidence,
        "data_request_id": decision.evidence.get("data_request_id"),
        "created_at": timezone.localtime(decision.created_at),
    }


@router.post(
    "/artifact-claims",
    response={201: ClaimOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Record a PR or deployment claim, verified by an HTTP 200 (PLS, Louis)",
)
def create_claim(request, payload: ClaimIn):
    """201 when the URL answered 200 from an allowed host; otherwise 422
    `claim_refused` with the reason — the refused claim is kept, and nothing
    reports it as done."""
    require(request, Action.RECORD_CLAIM)
    claim, check = record_claim(
        project=_project(payload.project_id),
        kind=payload.kind,
        url=payload.url,
        claimed_by=request.auth,
    )
    if not check.verified:
        raise _refused(claim, check)
    return 201, claim_out(claim)


@router.get(
    "/artifact-claims",
    response={200: list[ClaimOut], 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Claims with their check result; only `verified: true` ones count as done",
)
def list_claims(
    request,
    project_id: UUID | None = None,
    status: Literal["verified", "refused"] | None = None,
    kind: Literal["github_pr", "deployment", "repository"] | None = None,
):
    require(request, Action.VIEW_DASHBOARD)
    claims = ArtifactClaim.objects.filter(project=_project(project_id)).select_related(
        "claimed_by__user"
    )
    if status:
        claims = claims.filter(status=status)
    if kind:
        claims = claims.filter(kind=kind)
    return [claim_out(c) for c in claims.order_by("-checked_at")[:200]]


@router.get(
    "/project-context",
    response={200: ProjectContextOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="The previous pack and the verified target repository/API",
)
def get_project_context(request, project_id: UUID | None = None):
    require(request, Action.VIEW_DASHBOARD)
    return context_out(_project(project_id))


@router.post(
    "/project-context",
    response={200: ProjectContextOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Louis records the previous pack and/or the target repository/API",
)
def set_project_context(request, payload: ProjectContextIn):
    """`previous_pack_ref`: the earlier reconciliation pack (URL or note).
    `target_repo_url`: checked like a claim; recorded as the target repository
    only when it answers 200 (else 422 and nothing else is changed)."""
    require(request, Action.RECORD_PROJECT_CONTEXT)
    project = _project(payload.project_id)
    if payload.previous_pack_ref is None and payload.target_repo_url is None:
        raise InvalidInput("nothing_to_record", _("請提供 previous_pack_ref 或 target_repo_url。"))
    if payload.target_repo_url is not None:
        claim, check = record_claim(
            project=project,
            kind=ArtifactClaim.Kind.REPOSITORY,
            url=payload.target_repo_url,
            claimed_by=request.auth,
        )
        if not check.verified:
            raise _refused(claim, check)
    if payload.previous_pack_ref is not None:
        project = record_previous_pack(
            project=project, ref=payload.previous_pack_ref, recorded_by=request.auth
        )
    return context_out(project)
