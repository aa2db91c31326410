"""One order of the book, whole: its current state, every version the files
brought (what each changed) and its evidence history."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from reconciliation.bulk import FINGERPRINT_FIELDS
from reconciliation.models import Order, OrderEvidence, OrderRow, Project
from reconciliation.selectors.evidence import as_queue_rows

Classification = OrderRow.Classification


@dataclass
class Version:
    import_id: object
    upload_name: str
    imported_at: datetime
    row_number: int
    change: str
    changed_fields: list[str]
    payment_status: str
    amount: Decimal
    payment_ref: str
    classification: str
    current: bool

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class EvidenceEntry:
    tag: str
    payment_ref: str
    refund_ref: str
    evidence_ref: str
    note: str
    tagged_by: str
    tagged_at: datetime
    version_row_number: int
    version_import_id: object
    on_current_version: bool

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class OrderDetail:
    row: object  # a QueueRow
    missing_from_snapshot: bool
    missing_import_name: str = ""
    history: list[Version] = field(default_factory=list)
    evidence: list[EvidenceEntry] = field(default_factory=list)
    order: Order | None = None


def _versions(project: Project, order: Order) -> list[Version]:
    """Every row any import of the project had for the order, in import
    order, each compared with the version before it."""
    rows = (
        OrderRow.objects.filter(
            reconciliation_import__data_request__project=project, order_id=order.order_id
        )
        .select_related("reconciliation_import__upload")
        .order_by("reconciliation_import__created_at", "reconciliation_import_id", "row_number")
    )
    history, before = [], None
    for row in rows:
        upload = row.reconciliation_import.upload
        if row.classification == Classification.DUPLICATE:
            change, fields = "duplicate", []
        elif before is None:
            change, fields = "new", []
        else:
            fields = [f for f in FINGERPRINT_FIELDS if getattr(before, f) != getattr(row, f)]
            change = "changed" if fields else "unchanged"
        if row.classification != Classification.DUPLICATE and change != "unchanged":
            before = row
        history.append(
            Version(
                import_id=row.reconciliation_import_id,
                upload_name=upload.original_name,
                imported_at=row.reconciliation_import.created_at,
                row_number=row.row_number,
                change=change,
                changed_fields=fields,
                payment_status=row.payment_status,
                amount=row.amount,
                payment_ref=row.payment_ref,
                classification=row.classification,
                current=row.pk == order.current_row_id,
            )
        )
    return history


def _evidence(order: Order) -> list[EvidenceEntry]:
    entries = (
        OrderEvidence.objects.filter(order=order)
        .select_related("created_by__user", "order_row")
        .order_by("-id")
    )
    return [
        EvidenceEntry(
            tag=e.tag,
            payment_ref=e.payment_ref,
            refund_ref=e.refund_ref,
            evidence_ref=e.evidence_ref,
            note=e.note,
            tagged_by=str(e.created_by),
            tagged_at=e.created_at,
            version_row_number=e.order_row.row_number,
            version_import_id=e.order_row.reconciliation_import_id,
            on_current_version=e.order_row_id == order.current_row_id,
        )
        for e in entries
    ]


def order_detail(project: Project, order_id: str) -> OrderDetail | None:
    order = (
        Order.objects.filter(project=project, order_id=order_id)
        .select_related("missing_import__upload")
        .first()
    )
    if order is None:
        return None
    row = next(as_queue_rows(Order.objects.filter(pk=order.pk)))
    return OrderDetail(
        row=row,
        missing_from_snapshot=order.missing_import_id is not None,
        missing_import_name=order.missing_import.upload.original_name
        if order.missing_import_id
        else "",
        history=_versions(project, order),
        evidence=_evidence(order),
        order=order,
    )
