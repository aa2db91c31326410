"""Seed test A through Louis's form, the board, the detail page and the inbox."""

from datetime import timedelta

from django.utils import timezone

from reconciliation.models import AuditEvent, DataRequest, Notification


def test_board_invites_louis_when_nothing_exists(client, louis):
    client.force_login(louis)
    page = client.get("/").content.decode()
    assert "尚未回收" in page
    assert "建立 P0 資料請求" in page


def test_louis_creates_request_from_form(client, louis, wade):
    client.force_login(louis)
    form = client.get("/requests/new/")
    assert form.status_code == 200
    response = client.post(
        "/requests/new/",
        {
            "requested_dataset": "2026-05-12..2026-05-21 order/payment export",
            "period_start": "2026-05-12",
            "period_end": "2026-05-21",
            "data_owner": "wade",
            "due_at": (timezone.localtime() + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M"),
            "audit_note": "未交檔前暫停認列",
        },
    )
    request = DataRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/requests/{request.pk}/"
    assert request.data_owner_profile.user == wade
    assert request.requested_by_profile.user == louis
    assert AuditEvent.objects.filter(data_request=request, verb="request.created").count() == 1
    assert (
        Notification.objects.filter(
            data_request=request, recipient__user=wade, channel="inbox"
        ).count()
        == 1
    )

    detail = client.get(response["Location"]).content.decode()
    assert "建立資料請求" in detail  # timeline
    assert "order_id" in detail and "owner_note" in detail
    board = client.get("/").content.decode()
    assert "data-due=" in board and "剩" in board


def test_form_rejects_reversed_period(client, louis):
    client.force_login(louis)
    response = client.post(
        "/requests/new/",
        {
            "requested_dataset": "x",
            "period_start": "2026-05-21",
            "period_end": "2026-05-12",
            "data_owner": "wade",
            "due_at": (timezone.localtime() + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 200
    assert "期間迄日早於起日" in response.content.decode()
    assert not DataRequest.objects.exists()


def test_inbox_shows_and_marks_read(client, wade, pls_api):
    pls_api.post("/api/kolable/data-requests", {})
    client.force_login(wade)
    page = client.get("/inbox/").content.decode()
    assert "[P0] 請在 24 小時內（明天" in page
    assert "交「2026-05-12 至 2026-05-21 訂單付款匯出檔」" in page
    assert 'data-testid="unread-count">1<' in page
    item = Notification.objects.get(recipient__user=wade, channel="inbox")
    client.post(f"/inbox/{item.pk}/read/")
    item.refresh_from_db()
    assert item.read_at is not None
    assert 'data-testid="unread-count"' not in client.get("/inbox/").content.decode()


def test_template_downloads_carry_the_schema(client, wade):
    import io

    from openpyxl import load_workbook

    from reconciliation import schema

    client.force_login(wade)
    xlsx = client.get("/template.xlsx")
    workbook = load_workbook(io.BytesIO(xlsx.content))
    header = [c.value for c in workbook["orders"][1]]
    assert header == list(schema.COLUMN_NAMES)
    assert (
        workbook["orders"].data_validations.dataValidation[0].formula1 == '"paid,pending,refunded"'
    )
    assert len(list(workbook["說明 guide"].iter_rows())) == 1 + len(schema.COLUMNS)
    csv_text = client.get("/template.csv").content.decode("utf-8-sig")
    assert csv_text.splitlines()[0] == ",".join(schema.COLUMN_NAMES)
    assert client.get("/template.pdf").status_code == 404
