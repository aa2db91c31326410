"""What PLS should do next, derived from the recorded state.

The decision table is the seed's "PLS 下一步自動化規則":

    rule            condition                          job
    no_file         no CSV/XLSX yet                    data_request (no open request) /
                                                       people_sync (open or escalated request)
    schema_errors   a file arrived with schema errors  people_sync to Wade with the missing fields
    has_data        paid/refunded/pending data         reconciliation_import (not yet imported) /
                                                       none (imported: run the scorecard, wait for Louis)
    has_repo        a verified repo/API recorded       repo_change
    has_source      a configured sync source           none (healthy) / reconciliation_import
                                                       (a synced upload not yet imported) /
                                                       people_sync to Louis (its last run failed)

`project_runner` only when no reconciliation pack exists at all and nothing
else applies: a previous pack plus no new data never yields another pack.
Every answer carries evidence: uploaded data, a verified target_repo_url, or
an explicit blocker.
"""

from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.models import (
    ArtifactClaim,
    DataRequest,
    DispatchDecision,
    Project,
    ReconciliationImport,
    SettlementImport,
    SyncRun,
    Upload,
)
from reconciliation.selectors.people import with_people
from reconciliation.selectors.sync import source_health

JobType = DispatchDecision.JobType


class Rule:
    NO_FILE = "no_file"
    SCHEMA_ERRORS = "schema_errors"
    HAS_DATA = "has_data"
    HAS_REPO = "has_repo"
    NO_PACK = "no_pack"
    HAS_SOURCE = "has_source"
    NO_SETTLEMENT = "no_settlement"


@dataclass
class NextJob:
    job_type: str
    rule: str
    reason: str
    evidence: dict = field(default_factory=dict)
    data_request: DataRequest | None = None


def _blocker(data_request: DataRequest, now) -> dict:
    overdue_seconds = max(0, int((now - data_request.due_at).total_seconds()))
    return {
        "kind": "blocker",
        "data_request_id": str(data_request.pk),
        "status": data_request.status,
        "owner": data_request.data_owner_profile.username,
        "due_at": timezone.localtime(data_request.due_at).isoformat(),
        "overdue_by_seconds": overdue_seconds,
        "missing_fields": data_request.missing_fields,
    }


def _uploads(data_request: DataRequest):
    """The request's uploads without their error reports: a refused file's
    row errors can be thousands of entries, and the rules read only the
    upload's status and counts."""
    return data_request.uploads.defer("row_errors", "file_errors", "warnings")


def _upload_evidence(upload: Upload) -> dict:
    return {
        "kind": "uploaded_data",
        "upload_id": str(upload.pk),
        "sha256": upload.sha256,
        "data_request_id": str(upload.data_request_id),
        "schema_status": upload.schema_status,
        "row_count": upload.row_count,
    }


def verified_repository(project: Project) -> ArtifactClaim | None:
    return (
        ArtifactClaim.objects.filter(
            project=project,
            kind=ArtifactClaim.Kind.REPOSITORY,
            status=ArtifactClaim.Status.VERIFIED,
        )
        .order_by("-checked_at")
        .first()
    )


def repo_change_delivered(project: Project, repository: ArtifactClaim) -> ArtifactClaim | None:
    """A verified PR checked after the repository was recorded: the
    repo_change has produced its artifact, and sending PLS to do it again
    would be the repeated-pack failure of the seed in another form."""
    return (
        ArtifactClaim.objects.filter(
            project=project,
            kind=ArtifactClaim.Kind.GITHUB_PR,
            status=ArtifactClaim.Status.VERIFIED,
            checked_at__gte=repository.checked_at,
        )
        .order_by("-checked_at")
        .first()
    )


def _open_request(project: Project, kind: str) -> DataRequest | None:
    """The project's newest request of `kind` not closed, with the people
    its job names."""
    return (
        with_people(
            DataRequest.objects.filter(project=project, kind=kind),
            "data_owner_profile",
            "requested_by_profile",
            "project__owner_profile",
        )
        .exclude(status=DataRequest.Status.CLOSED)
        .order_by("-created_at")
        .first()
    )


def _people_sync(data_request: DataRequest, *, escalated: bool) -> dict:
    """Who PLS's people_sync job is for: the owner always, and Louis a
    blocker card once the request is overdue."""
    louis = data_request.project.owner_profile or data_request.requested_by_profile
    return {
        "remind": data_request.data_owner_profile.username,
        "blocker_card_to": louis.username if escalated and louis else None,
    }


def next_job(project: Project, *, now=None) -> NextJob:
    now = now or timezone.now()
    repository = verified_repository(project)
    if repository is not None and repo_change_delivered(project, repository) is None:
        return NextJob(
            JobType.REPO_CHANGE,
            Rule.HAS_REPO,
            _("已有驗證過的 Kolable repo/API：派 repo_change 實作 import endpoint。"),
            {
                "kind": "target_repo",
                "target_repo_url": repository.url,
                "verified_at": repository.checked_at.isoformat(),
                "http_status": repository.http_status,
            },
        )

    from_source = _source_job(project)
    if from_source is not None:
        if from_source.job_type == JobType.NONE:
            # The orders come by themselves; the settlement file still does not.
            imported = (
                ReconciliationImport.objects.filter(data_request__project=project)
                .order_by("-created_at")
                .first()
            )
            if imported is not None:
                return _settlement_job(project, imported, now) or from_source
        return from_source

    active = _open_request(project, DataRequest.Kind.ORDERS)
    if active is not None:
        accepted = (
            _uploads(active)
            .filter(schema_status=Upload.SchemaStatus.ACCEPTED)
            .select_related("reconciliation_import")
            .order_by("-created_at")
            .first()
        )
        if accepted is not None:
            imported = getattr(accepted, "reconciliation_import", None)
            if imported is None:
                return NextJob(
                    JobType.RECONCILIATION_IMPORT,
                    Rule.HAS_DATA,
                    _("已有通過驗證的檔案但尚未對帳：跑 reconciliation import。"),
                    _upload_evidence(accepted),
                    active,
                )
            settlement_job = _settlement_job(project, imported, now)
            if settlement_job is not None:
                return settlement_job
            return NextJob(
                JobType.NONE,
                Rule.HAS_DATA,
                _("已完成對帳，等 Louis 決定營收認列；不需要再派工作。"),
                {
                    **_upload_evidence(accepted),
                    "import_id": str(imported.pk),
                    "import_status": imported.status,
                },
                active,
            )
        latest_upload = _uploads(active).order_by("-created_at").first()
        if (
            latest_upload is not None
            and latest_upload.schema_status == Upload.SchemaStatus.SCHEMA_FAILED
        ):
            return NextJob(
                JobType.PEOPLE_SYNC,
                Rule.SCHEMA_ERRORS,
                _("檔案欄位不符：回傳 row/schema error 與缺少欄位給 Wade，不得猜欄位或補假資料。"),
                {
                    **_blocker(active, now),
                    "upload": _upload_evidence(latest_upload),
                    "people_sync": _people_sync(active, escalated=False),
                },
                active,
            )
        escalated = active.status == DataRequest.Status.ESCALATED or active.due_at < now
        return NextJob(
            JobType.PEOPLE_SYNC,
            Rule.NO_FILE,
            (
                _("資料請求已逾期：提醒 Wade 交檔，送 Louis blocker card（暫停認列或延期）。")
                if escalated
                else _(
                    "資料請求進行中、尚無新檔：提醒 Wade 於期限前交檔，不得再產 generic strategy pack。"
                )
            ),
            {**_blocker(active, now), "people_sync": _people_sync(active, escalated=escalated)},
            active,
        )

    if project.previous_pack_ref or DataRequest.objects.filter(project=project).exists():
        return NextJob(
            JobType.DATA_REQUEST,
            Rule.NO_FILE,
            _(
                "已有上一輪對帳成果但沒有新資料：建立 Wade P0 data request（24h），通知 Louis；不得再產 generic strategy pack。"
            ),
            {
                "kind": "blocker",
                "blocker": "no order/payment export and no open data request",
                "previous_pack_ref": project.previous_pack_ref,
            },
        )
    # Nothing recorded at all — not even a previous pack. Still no pack without
    # a reason: the evidence says why a project_runner is allowed.
    return NextJob(
        JobType.PROJECT_RUNNER,
        Rule.NO_PACK,
        _("尚無任何對帳成果或資料請求紀錄：可派 project_runner 建立第一版對帳工具箱。"),
        {"kind": "blocker", "blocker": "no reconciliation pack recorded for this project"},
    )


def _source_job(project: Project) -> NextJob | None:
    """With a sync source the orders come by themselves: nothing to chase
    while it is healthy; Louis is told when its last run failed."""
    source, last = source_health(project)
    if source is None:
        return None
    evidence = {
        "kind": "sync_source",
        "source_id": str(source.pk),
        "base_url": source.base_url,
        "cursor": source.cursor.isoformat() if source.cursor else None,
        "last_run_id": str(last.pk) if last else None,
        "last_run_status": last.status if last else None,
    }
    standing = source.data_request
    if last is not None and last.status == SyncRun.Status.FAILED:
        louis = project.owner_profile or source.created_by
        return NextJob(
            JobType.PEOPLE_SYNC,
            Rule.HAS_SOURCE,
            _("Kolable API 同步失敗：通知 Louis 處理（游標沒有移動，資料沒有遺失）。"),
            {
                **evidence,
                "kind": "blocker",
                "blocker": last.error,
                "error_code": last.error_code,
                "people_sync": {"remind": louis.username, "blocker_card_to": louis.username},
            },
            standing,
        )
    waiting = (
        _uploads(standing)
        .filter(schema_status=Upload.SchemaStatus.ACCEPTED, reconciliation_import__isnull=True)
        .order_by("created_at")
        .first()
    )
    if waiting is not None:
        return NextJob(
            JobType.RECONCILIATION_IMPORT,
            Rule.HAS_SOURCE,
            _("API 同步的資料已通過驗證但尚未對帳：跑 reconciliation import。"),
            {**evidence, **_upload_evidence(waiting)},
            standing,
        )
    return NextJob(
        JobType.NONE,
        Rule.HAS_SOURCE,
        _("Kolable API 每日同步正常：訂單會自己進來，不需要再派資料請求。"),
        evidence,
        standing,
    )


def _settlement_job(project: Project, imported: ReconciliationImport, now) -> NextJob | None:
    """After an order import, the payment provider's settlement file: asked
    for (data_request) while none was, imported once it arrived, chased
    (people_sync) while it is owed. None once a settlement file is imported."""
    if SettlementImport.objects.filter(project=project).exists():
        return None
    requested = _open_request(project, DataRequest.Kind.SETTLEMENT)
    if requested is None:
        return NextJob(
            JobType.DATA_REQUEST,
            Rule.NO_SETTLEMENT,
            _("訂單已對帳，但還沒有金流撥款檔：建立 Wade 的撥款檔資料請求（kind settlement）。"),
            {
                "kind": "blocker",
                "blocker": "order import accepted, no payment settlement file",
                "request_kind": DataRequest.Kind.SETTLEMENT,
                "import_id": str(imported.pk),
            },
        )
    accepted = _uploads(requested).filter(schema_status=Upload.SchemaStatus.ACCEPTED).first()
    if accepted is not None:
        return NextJob(
            JobType.RECONCILIATION_IMPORT,
            Rule.NO_SETTLEMENT,
            _("金流撥款檔已通過驗證但尚未對帳：跑 reconciliation import。"),
            _upload_evidence(accepted),
            requested,
        )
    escalated = requested.status == DataRequest.Status.ESCALATED or requested.due_at < now
    return NextJob(
        JobType.PEOPLE_SYNC,
        Rule.NO_SETTLEMENT,
        _("金流撥款檔尚未交：提醒 Wade 上傳撥款檔；未撥款的金額不算實收。"),
        {**_blocker(requested, now), "people_sync": _people_sync(requested, escalated=escalated)},
        requested,
    )


def recent_dispatches(project: Project, *, limit: int = 20):
    return (
        DispatchDecision.objects.filter(project=project)
        .select_related("requested_by__user")
        .order_by("-created_at")[:limit]
    )
