"""sql_frame: plain SQL read into typed columns, the same on SQLite and
PostgreSQL (which hands timestamps back as text and numerics as floats)."""

import numpy as np
import pandas as pd
from django.db import connection

from reconciliation.bulk import quoted_columns, sql_frame
from reconciliation.models import Order
from reconciliation.services.imports import import_frame
from tests.imp_frames import accepted_upload, frame, new_request, order


def test_orders_read_back_with_utc_times_and_float_amounts(louis, wade):
    data_request = new_request(louis)
    imported = import_frame(
        upload=accepted_upload(data_request, wade),
        frame=frame(
            order("T-1", "paid", 28000, when="2026-05-12 10:00:00"),
            order("T-2", "refunded", 1234.56, when="2026-05-13 23:30:15"),
        ),
        actor=wade,
    )
    fields = ("order_id", "amount", "created_at")
    read = sql_frame(
        f"SELECT {quoted_columns(Order, 'o', fields)} FROM {Order._meta.db_table} o "  # noqa: S608
        "ORDER BY o.order_id",
        [],
        fields,
    ).set_index("order_id")
    assert imported.row_count == 2
    assert read["amount"].dtype == np.float64
    assert read["amount"].tolist() == [28000.0, 1234.56]
    assert str(read["created_at"].dtype) == "datetime64[ns, UTC]"
    stored = {o.order_id: o.created_at for o in Order.objects.all()}
    assert [t.to_pydatetime() for t in read["created_at"]] == [stored["T-1"], stored["T-2"]]


def test_a_timestamp_under_another_name_is_a_time_too(louis, wade):
    data_request = new_request(louis)
    import_frame(
        upload=accepted_upload(data_request, wade),
        frame=frame(order("T-1", "paid", 28000, when="2026-05-12 10:00:00")),
        actor=wade,
    )
    read = sql_frame(
        f"SELECT o.created_at AS placed FROM {Order._meta.db_table} o",  # noqa: S608
        [],
        ("placed",),
    )
    stored = Order.objects.get().created_at
    if connection.vendor == "postgresql":
        # Handed back as text, parsed by the column's type, not its name.
        assert str(read["placed"].dtype) == "datetime64[ns, UTC]"
    # SQLite's driver gives a naive UTC datetime for a datetime column.
    assert pd.to_datetime(read["placed"], utc=True)[0].to_pydatetime() == stored
