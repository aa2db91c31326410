"""Hand-made accepted frames and uploads for the reconciliation tests: the
shape `services.frames.load_accepted_frame` returns."""

import hashlib
import uuid

import pandas as pd

from reconciliation.models import Upload
from reconciliation.services.columns import CONTRACT_COLUMNS
from reconciliation.services.profiles import profile_for
from reconciliation.services.requests import create_data_request

COLUMNS = list(CONTRACT_COLUMNS)


def key(name: str) -> str:
    """A 64-hex customer key, as privacy.py would hash it."""
    return hashlib.sha256(name.encode()).hexdigest()


def order(
    order_id,
    status="paid",
    amount=28000,
    *,
    when="2026-05-12 20:00",
    customer="c1",
    program="TRAIN-28000",
    ref=None,
    code="",
    source="LIVE-0512",
):
    return {
        "order_id": order_id,
        "created_at": when,
        "customer_key": key(customer),
        "program_id": program,
        "amount": amount,
        "payment_status": status,
        "payment_ref": ref if ref is not None else f"PAY-{order_id}",
        "discount_code": code,
        "source_event": source,
        "owner_note": "",
    }


def frame(*orders, first_row=2) -> pd.DataFrame:
    data = pd.DataFrame(list(orders))
    if data.empty:
        data = pd.DataFrame(columns=COLUMNS[1:])
    data.insert(0, "row_number", range(first_row, first_row + len(data)))
    data["row_number"] = data["row_number"].astype("int64")
    data["created_at"] = (
        pd.to_datetime(data["created_at"]).dt.tz_localize("Asia/Taipei").dt.tz_convert("UTC")
    )
    data["amount"] = data["amount"].astype("float64").round(2)
    for column in COLUMNS:
        if column not in ("row_number", "created_at", "amount"):
            data[column] = data[column].astype(str)
    return data[COLUMNS]


def new_request(user, **kwargs):
    return create_data_request(requested_by=user, **kwargs)


def accepted_upload(data_request, user, *, name="orders.csv", rows=0, mode="snapshot") -> Upload:
    """An Upload row as the upload flow leaves it once the file is accepted."""
    digest = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    return Upload.objects.create(
        data_request=data_request,
        uploaded_by=profile_for(user),
        original_name=name,
        content_type="text/csv",
        detected_kind="csv",
        size=100,
        sha256=digest,
        storage_path=f"uploads/{digest}",
        schema_status=Upload.SchemaStatus.ACCEPTED,
        row_count=rows,
        mode=mode,
    )


def csv_bytes(*orders) -> bytes:
    """The orders as Wade's export: a UTF-8 CSV with the ten schema columns."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS[1:])
    writer.writeheader()
    writer.writerows(orders)
    return buffer.getvalue().encode("utf-8")


def upload_csv(api, data_request, orders, *, name="orders.csv") -> Upload:
    """Upload through the real API (validation included) and return the
    accepted Upload."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api.upload(
        f"/api/kolable/data-requests/{data_request.pk}/upload",
        {"file": SimpleUploadedFile(name, csv_bytes(*orders), content_type="text/csv")},
    )
    assert response.status_code == 201, response.content
    return Upload.objects.get(pk=response.json()["upload_id"])
