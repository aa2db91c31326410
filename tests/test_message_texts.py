"""People-sync messages come from templates/notifications/<name>.txt: the
real dataset, the real time left in words, the request's scope, absolute
links from SITE_URL — and the same stored message reads in zh-Hant or in
English depending on who opens it."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from reconciliation import message_text
from reconciliation.models import Notification
from reconciliation.services.escalation import escalate_overdue_requests
from reconciliation.services.imports import import_upload
from reconciliation.services.requests import create_data_request, extend_due
from reconciliation.services.uploads import receive_upload
from tests.imp_frames import csv_bytes, order

TAIPEI = ZoneInfo("Asia/Taipei")
CREATED = datetime(2026, 5, 23, 15, 0, tzinfo=TAIPEI)
DATASET = "2026-05 退款明細"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "http://127.0.0.1:8216"


def inbox(template: str, username: str) -> Notification:
    return Notification.objects.get(
        template=template, recipient__user__username=username, channel="inbox"
    )


def read(notification: Notification, language: str) -> tuple[str, str]:
    with translation.override(language):
        return message_text.notification_text(notification)


def make_request(louis, *, due_at, dataset=DATASET):
    with time_machine.travel(CREATED, tick=False):
        return create_data_request(requested_by=louis, due_at=due_at, requested_dataset=dataset)


def test_the_owner_is_told_the_real_time_left_dataset_scope_and_links(louis, wade, huber):
    request = make_request(louis, due_at=CREATED + timedelta(hours=3))
    note = inbox("request_created", "wade")
    subject, body = read(note, "zh-hant")
    assert subject == f"[P0] 請在 3 小時內（今天 18:00 前）交「{DATASET}」"
    assert body.startswith(
        f"Wade：請在 3 小時內（今天 18:00 前，台北時間 2026-05-23 18:00）交「{DATASET}」"
    )
    assert "期間 2026-05-12 至 2026-05-21" in body
    assert "order_id、created_at" in body and "owner_note" in body
    assert f"上傳：http://127.0.0.1:8216/requests/{request.pk}/upload/" in body
    assert "範本：http://127.0.0.1:8216/template.xlsx" in body
    assert "24 小時" not in body and "訂單付款檔" not in body
    # What e-mail and LINE carry is the same text, written in the site language.
    assert (note.subject, note.body) == (subject, body)

    subject, body = read(note, "en")
    assert subject == f'[P0] Please deliver "{DATASET}" within 3 hours (by 18:00 today)'
    assert body.startswith(
        f'Wade: please deliver "{DATASET}" for 2026-05-12 to 2026-05-21 within 3 hours'
    )
    assert "order_id, created_at" in body
    assert f"Upload: http://127.0.0.1:8216/requests/{request.pk}/upload/" in body
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in (subject + body).replace(DATASET, ""))


def test_minutes_and_tomorrow_and_a_date_further_away():
    at = CREATED
    with translation.override("zh-hant"):
        assert message_text.time_left_words(at + timedelta(minutes=2), at) == "2 分鐘內"
        assert message_text.deadline_words(at + timedelta(hours=20), at) == "明天 11:00 前"
        assert message_text.deadline_words(at + timedelta(days=3), at) == "2026-05-26 15:00 前"
    with translation.override("en"):
        assert message_text.time_left_words(at + timedelta(minutes=1), at) == "within 1 minute"
        assert message_text.time_left_words(at + timedelta(hours=30), at) == "within 30 hours"
        assert message_text.time_left_words(at + timedelta(days=3), at) == "within 3 days"
        assert message_text.deadline_words(at + timedelta(hours=20), at) == "by 11:00 tomorrow"


def test_the_default_dataset_reads_in_the_readers_language(louis):
    make_request(louis, due_at=CREATED + timedelta(minutes=30), dataset=None)
    note = inbox("request_created", "wade")
    assert "「2026-05-12 至 2026-05-21 訂單付款匯出檔」" in read(note, "zh-hant")[0]
    assert "30 分鐘內" in read(note, "zh-hant")[0]
    assert '"2026-05-12..2026-05-21 order/payment export"' in read(note, "en")[0]


def test_louis_summary_and_hubers_evidence_ask(louis, huber):
    make_request(louis, due_at=CREATED + timedelta(hours=24))
    subject, body = read(inbox("request_summary", "louis"), "zh-hant")
    assert subject == f"已建立 P0 資料請求：Wade 明天 15:00 前交「{DATASET}」"
    assert "Huber 會補 NT$28,000 培訓課程訂單" in body
    assert "它涵蓋的營收維持未驗證" in body
    subject, body = read(inbox("request_summary", "louis"), "en")
    assert subject == f'P0 data request created: Wade delivers "{DATASET}" by 15:00 tomorrow'
    assert "NT$28,000 training programme" in body

    subject, body = read(inbox("evidence_ask", "huber"), "zh-hant")
    assert subject == "請補 NT$28,000 培訓課程訂單的付款、退款、重買佐證"
    assert "已付款、已退款、重買 或 待釐清" in body and "paid/refunded" not in body
    assert "佐證佇列：http://127.0.0.1:8216/evidence/" in body
    subject, body = read(inbox("evidence_ask", "huber"), "en")
    assert "paid, refunded, rebought or unresolved" in body


def test_an_extension_says_the_new_time_and_who_moved_it(louis, wade):
    request = make_request(louis, due_at=CREATED + timedelta(hours=1))
    with time_machine.travel(CREATED + timedelta(minutes=10), tick=False):
        extend_due(
            data_request=request,
            extended_by=louis,
            due_at=CREATED + timedelta(hours=27),
            note="等月結",
        )
    note = inbox("due_extended", "wade")
    subject, body = read(note, "zh-hant")
    assert subject == f"[P0] 交檔期限延到 2026-05-24 18:00：「{DATASET}」"
    assert "Louis 已把" in body and "延到 明天 18:00 前（台北時間 2026-05-24 18:00）" in body
    assert "請在 27 小時內交檔" in body and "備註：等月結" in body
    subject, body = read(note, "en")
    assert subject == f'[P0] Due time moved to 2026-05-24 18:00: "{DATASET}"'
    assert "Louis moved the due time" in body and "Note: 等月結" in body


def test_blocker_card_and_reminder_name_the_request_not_the_project(louis, wade):
    request = make_request(louis, due_at=CREATED + timedelta(hours=1))
    with time_machine.travel(CREATED + timedelta(hours=3, minutes=5), tick=False):
        escalate_overdue_requests()
    card = inbox("blocker_card", "louis")
    subject, body = read(card, "zh-hant")
    assert subject == f"[阻塞] 「{DATASET}」逾期未交：請決定延期或暫停認列"
    assert f"Kolable 這個請求的「{DATASET}」已逾期" in body
    assert "已逾期 2 小時 5 分" in body and "誰負責：Wade" in body
    assert f"請求：http://127.0.0.1:8216/requests/{request.pk}/" in body
    subject, body = read(card, "en")
    assert subject == f'[Blocker] "{DATASET}" is overdue: extend it or pause recognition'
    assert "overdue by 2h 5m" in body

    reminder = inbox("overdue_reminder", "wade")
    subject, body = read(reminder, "zh-hant")
    assert subject == f"[逾期] 請今天交「{DATASET}」（2026-05-23 16:00 已到期）"
    assert "已升級給 Louis" in body
    subject, body = read(reminder, "en")
    assert subject == f'[Overdue] Please deliver "{DATASET}" today (it was due 2026-05-23 16:00)'
    assert "Escalated to Louis." in body


def _upload(data_request, wade, content: bytes, name: str):
    return receive_upload(
        data_request=data_request,
        uploaded_by=wade,
        file=SimpleUploadedFile(name, content, content_type="text/csv"),
        original_name=name,
    ).upload


def test_schema_failure_lists_what_is_missing_with_plain_words(louis, wade):
    request = make_request(louis, due_at=CREATED + timedelta(days=400))
    _upload(request, wade, b"order_id,amount\nK-1,28000\n", "short.csv")
    note = inbox("schema_failed", "wade")
    subject, body = read(note, "zh-hant")
    assert subject == "short.csv 沒有通過驗證，請修正後重傳"
    assert f"你為「{DATASET}」上傳的 short.csv" in body
    assert "缺少欄位：created_at、customer_key" in body
    assert "missing_column" not in body
    assert "http://127.0.0.1:8216/requests/" in body
    subject, body = read(note, "en")
    assert subject == "short.csv failed validation: please fix it and upload again"
    assert "Missing columns: created_at, customer_key" in body


def test_import_done_tells_louis_the_verified_amount_with_separators(louis, wade):
    request = make_request(louis, due_at=CREATED + timedelta(days=400))
    rows = [order(f"K-{n}", amount=28000) for n in range(1, 4)] + [order("K-9", "pending")]
    upload = _upload(request, wade, csv_bytes(*rows), "orders.csv")
    import_upload(upload_id=upload.pk, actor=wade)
    note = inbox("import_done", "louis")
    subject, body = read(note, "zh-hant")
    assert subject == "orders.csv 已匯入訂單簿，等你決定是否認列"
    assert f"orders.csv（4 列）已匯入「{DATASET}」的訂單簿：新訂單 4、變更 0、未變 0 筆。" in body
    assert "訂單簿目前已驗證營收 NT$84,000（3 筆訂單）" in body
    assert "http://127.0.0.1:8216/scorecard/" in body
    subject, body = read(note, "en")
    assert "verified paid revenue is NT$84,000 (3 orders)" in body
    wade_note = inbox("import_done_owner", "wade")
    subject, body = read(wade_note, "zh-hant")
    assert subject == "orders.csv 已完成對帳：4 列"
    assert "新訂單 4、變更 0、未變 0 筆" in body


def test_a_message_without_a_template_shows_its_stored_text(louis):
    make_request(louis, due_at=CREATED + timedelta(hours=2))
    old = inbox("request_created", "wade")
    Notification.objects.filter(pk=old.pk).update(template="", subject="舊主旨", body="舊內容")
    old.refresh_from_db()
    assert read(old, "en") == ("舊主旨", "舊內容")
