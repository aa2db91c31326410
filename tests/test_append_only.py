"""Append-only is enforced by the database: UPDATE and DELETE fail even when
they bypass the ORM's model methods."""

import pytest
from django.db import IntegrityError, connection, transaction

from reconciliation.models import AuditEvent
from reconciliation.services.audit import record_audit


@pytest.fixture
def event(db):
    return record_audit(verb=AuditEvent.Verb.REQUEST_CREATED, message="kept forever")


def test_audit_event_refuses_update(event):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(message="rewritten")
    event.refresh_from_db()
    assert event.message == "kept forever"


def test_audit_event_refuses_delete(event):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_raw_sql_update_is_refused_too(event):
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE reconciliation_auditevent SET message = 'x' WHERE id = %s", [event.pk]
        )


@pytest.mark.parametrize(
    "table",
    [
        "reconciliation_orderrow",
        "reconciliation_orderevidence",
        "kolable_reconciliation_imports",
        "reconciliation_compliancerecord",
    ],
)
def test_other_append_only_tables_have_the_trigger(db, table):
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name=%s", [table]
            )
            names = {row[0] for row in cursor.fetchall()}
            assert names == {f"{table}_no_update", f"{table}_no_delete"}
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [table],
            )
            assert {row[0] for row in cursor.fetchall()} == {f"{table}_append_only"}
