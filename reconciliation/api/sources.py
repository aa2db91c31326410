"""Sync sources (Louis configures; Louis and PLS start a run) and their runs."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema

from reconciliation.api.common import ErrorOut, require
from reconciliation.inputs import ModelText, Text
from reconciliation.models import Project, SyncSource
from reconciliation.permissions import Action
from reconciliation.selectors.sync import run_out, runs_of, source_out, sources_of
from reconciliation.services.profiles import profile_for
from reconciliation.services.requests import default_project
from reconciliation.services.sources import TOKEN_MAX_LENGTH, create_source, update_source
from reconciliation.services.sync import request_sync

router = Router(tags=["Sync sources"])


class SourceIn(Schema):
    kind: Literal["kolable_api"] = "kolable_api"
    base_url: ModelText(SyncSource, "base_url") = Field(..., min_length=1)
    token: Text(TOKEN_MAX_LENGTH) = Field(..., min_length=1)
    schedule_time: Text(5) = Field("06:00", description="HH:MM, Asia/Taipei")
    overlap_minutes: int = Field(60, ge=0, le=1440)
    page_size: int = Field(500, ge=1, le=5000)
    project_id: UUID | None = None


class SourceChange(Schema):
    base_url: ModelText(SyncSource, "base_url") | None = None
    token: Text(TOKEN_MAX_LENGTH) | None = None
    schedule_time: Text(5) | None = None
    overlap_minutes: int | None = Field(None, ge=0, le=1440)
    page_size: int | None = Field(None, ge=1, le=5000)


class RunOut(Schema):
    id: UUID
    status: str
    trigger: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_since: datetime | None
    pages: int
    rows: int
    new_orders: int
    changed_orders: int
    error_code: str
    error: str
    upload_id: UUID | None
    import_id: UUID | None
    upload_url: str | None
    scorecard_url: str | None


class SourceOut(Schema):
    id: UUID
    project_id: UUID
    kind: str
    base_url: str
    token: str = Field(..., description="masked: the last four characters only")
    schedule_time: str
    overlap_minutes: int
    page_size: int
    cursor: datetime | None
    data_request_id: UUID
    last_run: RunOut | None
    created_at: datetime


class SyncStarted(Schema):
    run_id: UUID
    status: str
    created: bool


@router.post(
    "/sources",
    response={201: SourceOut, 403: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Configure a sync source (Louis)",
)
def create(request, payload: SourceIn):
    """The token is stored encrypted and never returned: answers show its
    last four characters. `base_url` must resolve to public addresses unless
    its host is listed in SYNC_ALLOWED_HOSTS."""
    require(request, Action.CONFIGURE_SOURCE)
    project = (
        get_object_or_404(Project, pk=payload.project_id)
        if payload.project_id
        else default_project()
    )
    source = create_source(
        project=project,
        created_by=request.auth,
        kind=payload.kind,
        base_url=payload.base_url,
        token=payload.token,
        schedule_time=payload.schedule_time,
        overlap_minutes=payload.overlap_minutes,
        page_size=payload.page_size,
    )
    return 201, source_out(source)


@router.patch(
    "/sources/{source_id}",
    response={200: SourceOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Change a sync source: a new token, another time of day (Louis)",
)
def change(request, source_id: UUID, payload: SourceChange):
    require(request, Action.CONFIGURE_SOURCE)
    source = get_object_or_404(SyncSource, pk=source_id)
    source = update_source(source=source, updated_by=request.auth, **payload.dict())
    return 200, source_out(source)


@router.get("/sources", response={200: list[SourceOut], 403: ErrorOut}, summary="Sync sources")
def list_sources(request):
    require(request, Action.VIEW_DASHBOARD)
    return 200, [source_out(s) for s in sources_of()]


@router.post(
    "/sources/{source_id}/sync",
    response={202: SyncStarted, 403: ErrorOut, 404: ErrorOut},
    summary="Sync now (Louis, PLS)",
)
def sync_now(request, source_id: UUID):
    """Queues a run; while one is queued or running, answers that one."""
    require(request, Action.SYNC_SOURCE)
    source = get_object_or_404(SyncSource, pk=source_id)
    run, created = request_sync(source=source, requested_by=profile_for(request.auth))
    return 202, {"run_id": run.pk, "status": run.status, "created": created}


@router.get(
    "/sources/{source_id}/runs",
    response={200: list[RunOut], 403: ErrorOut, 404: ErrorOut},
    summary="A source's run history",
)
def runs(request, source_id: UUID):
    require(request, Action.VIEW_DASHBOARD)
    source = get_object_or_404(SyncSource, pk=source_id)
    return 200, [run_out(r) for r in runs_of(source)]
