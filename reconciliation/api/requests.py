from datetime import date, datetime
from uuid import UUID

from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema

from reconciliation import selectors
from reconciliation.api.common import ErrorOut, require
from reconciliation.inputs import Date, DateTime, ModelText, Text
from reconciliation.models import DataRequest, Project
from reconciliation.permissions import Action
from reconciliation.services.requests import close_data_request, create_data_request, extend_due

router = Router(tags=["data requests"])


class PersonOut(Schema):
    username: str
    profile_id: UUID
    display_name: str


class SchemaColumnOut(Schema):
    name: str
    required: bool
    allow_blank: bool
    label: str


class PeopleSyncOut(Schema):
    id: UUID
    recipient: str
    channel: str
    kind: str
    due_at: datetime | None
    subject: str
    message: str
    status: str
    created_at: datetime


class UploadBriefOut(Schema):
    id: UUID
    original_name: str
    size: int
    sha256: str
    schema_status: str
    row_count: int
    row_error_count: int
    missing_fields: list
    created_at: datetime


class ImportBriefOut(Schema):
    id: UUID
    upload_id: UUID
    status: str
    row_count: int
    paid_count: int
    pending_count: int
    refunded_count: int
    duplicate_count: int
    scorecard_ref: str
    created_at: datetime
    book: dict = Field(
        description="what the import did to the order book: mode, new_orders, "
        "changed_orders, unchanged_orders, missing_from_snapshot, changes"
    )

    @staticmethod
    def resolve_book(obj) -> dict:
        summary = getattr(obj, "summary", None)
        book = dict(getattr(summary, "book", None) or {})
        book.pop("examples", None)
        return book


class DataRequestOut(Schema):
    id: UUID
    project_id: UUID
    project: str
    requested_dataset: str
    kind: str
    period_start: date
    period_end: date
    status: str
    due_at: datetime
    is_overdue: bool
    created_at: datetime
    data_owner: PersonOut
    requested_by: PersonOut
    required_schema: list[SchemaColumnOut]
    missing_fields: list
    artifact_ref: str
    audit_note: str
    people_sync: list[PeopleSyncOut]
    uploads: list[UploadBriefOut]
    imports: list[ImportBriefOut]


class DataRequestIn(Schema):
    project_id: UUID | None = None
    requested_dataset: ModelText(DataRequest, "requested_dataset") | None = None
    period_start: Date | None = None
    period_end: Date | None = None
    due_at: DateTime | None = None
    data_owner: Text(150) | None = None
    audit_note: ModelText(DataRequest, "audit_note") = ""
    kind: Text(12) = Field(
        DataRequest.Kind.ORDERS,
        description="orders (the order/payment export) or settlement (the payment "
        "provider's settlement file)",
    )


class CloseIn(Schema):
    note: Text(1000) = ""


class ExtendIn(Schema):
    due_at: DateTime
    note: Text(1000) = ""


def person(profile) -> dict:
    return {"username": profile.username, "profile_id": profile.pk, "display_name": str(profile)}


def request_out(data_request: DataRequest) -> dict:
    return {
        "id": data_request.pk,
        "project_id": data_request.project_id,
        "project": data_request.project.name,
        "requested_dataset": data_request.requested_dataset,
        "kind": data_request.kind,
        "period_start": data_request.period_start,
        "period_end": data_request.period_end,
        "status": data_request.status,
        "due_at": timezone.localtime(data_request.due_at),
        "is_overdue": data_request.is_overdue,
        "created_at": data_request.created_at,
        "data_owner": person(data_request.data_owner_profile),
        "requested_by": person(data_request.requested_by_profile),
        "required_schema": data_request.required_schema,
        "missing_fields": data_request.missing_fields,
        "artifact_ref": data_request.artifact_ref,
        "audit_note": data_request.audit_note,
        "people_sync": [
            {
                "id": n.pk,
                "recipient": n.recipient.username,
                "channel": n.channel,
                "kind": n.kind,
                "due_at": timezone.localtime(data_request.due_at),
                "subject": n.subject,
                "message": n.body,
                "status": n.status,
                "created_at": n.created_at,
            }
            for n in data_request.notifications.all()
        ],
        "uploads": list(data_request.uploads.all()),
        "imports": list(data_request.imports.all()),
    }


@router.post(
    "/data-requests",
    response={201: DataRequestOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Create a P0 data request (Louis, PLS)",
)
def create_request(request, payload: DataRequestIn):
    """Defaults: the 2026-05-12..05-21 export, data owner Wade, due 24 h from
    now, the ten-column schema. Writes people-sync messages to Wade, Louis and
    Huber in the same transaction."""
    require(request, Action.CREATE_REQUEST)
    project = get_object_or_404(Project, pk=payload.project_id) if payload.project_id else None
    data_request = create_data_request(
        requested_by=request.auth,
        project=project,
        data_owner_username=payload.data_owner,
        requested_dataset=payload.requested_dataset,
        period_start=payload.period_start,
        period_end=payload.period_end,
        due_at=payload.due_at,
        audit_note=payload.audit_note,
        kind=payload.kind,
    )
    return 201, request_out(selectors.request_detail(data_request.pk))


@router.get("/data-requests", response={200: list[DataRequestOut], 403: ErrorOut})
def list_requests(request, status: Text(20) | None = None):
    require(request, Action.VIEW_DASHBOARD)
    return [request_out(r) for r in selectors.request_list_for_api(status=status)]


@router.get(
    "/data-requests/{request_id}", response={200: DataRequestOut, 403: ErrorOut, 404: ErrorOut}
)
def get_request(request, request_id: UUID):
    require(request, Action.VIEW_DASHBOARD)
    return request_out(selectors.request_detail(request_id))


@router.post(
    "/data-requests/{request_id}/close",
    response={200: DataRequestOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="Close a data request (Louis)",
)
def close_request(request, request_id: UUID, payload: CloseIn):
    require(request, Action.CLOSE_REQUEST)
    data_request = get_object_or_404(DataRequest, pk=request_id)
    close_data_request(data_request=data_request, closed_by=request.auth, note=payload.note)
    return request_out(selectors.request_detail(request_id))


@router.post(
    "/data-requests/{request_id}/extend",
    response={200: DataRequestOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Extend the due time (Louis's answer to a blocker card)",
)
def extend_request(request, request_id: UUID, payload: ExtendIn):
    """An escalated request goes back to open with the new due time; Wade is
    told. 409 once the request is accepted or closed."""
    require(request, Action.CLOSE_REQUEST)
    data_request = get_object_or_404(DataRequest, pk=request_id)
    extend_due(
        data_request=data_request,
        extended_by=request.auth,
        due_at=payload.due_at,
        note=payload.note,
    )
    return request_out(selectors.request_detail(request_id))
