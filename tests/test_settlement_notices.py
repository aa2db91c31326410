"""When a settlement import commits, the people who must act hear it
through the outbox: Louis 實收 and the mismatches he must accept, Wade the
orphan lines and the paid orders past the window; nobody when the file
brought nothing new."""

import pytest

from reconciliation.message_text import notification_text
from reconciliation.models import DataRequest, Notification
from tests.test_settlement import ECPAY_FIRST, _book, _send, _settlement_request

pytestmark = pytest.mark.django_db

ONLY_SEEN_BEFORE = (
    b"payment_ref,provider_txn_id,gross_amount,fee_amount,txn_date,txn_type\n"
    b"PAY-A,T001,28000,770,2026-05-12 20:01,charge\n"
)


def _told(who):
    return list(
        Notification.objects.filter(
            channel=Notification.Channel.INBOX,
            recipient__user__username=who,
            payload__has_key="settlement_import_id",
        ).order_by("created_at")
    )


def test_louis_and_wade_are_told_what_the_settlement_file_means(louis, wade, huber, settings):
    settings.LANGUAGE_CODE = "zh-hant"
    _book(louis)
    _send(_settlement_request(louis), wade, "ecpay.csv", ECPAY_FIRST)
    (to_louis,) = _told("louis")
    subject, body = notification_text(to_louis)
    assert subject == "ecpay.csv 撥款對帳完成：實收 NT$71,187"
    assert "（9 筆撥款明細）已對上 7 筆訂單" in body
    assert "金流已撥款 NT$73,200，手續費 NT$2,783" in body
    assert "有 2 筆訂單的撥款金額與訂單不符" in body
    assert "B（訂單 NT$28,000，撥款 NT$26,000）、E（訂單 NT$3,600，撥款 NT$7,200）" in body
    (to_wade,) = _told("wade")
    subject, body = notification_text(to_wade)
    assert subject == "ecpay.csv 撥款對帳：找不到訂單 1 筆、逾期未撥款 1 筆"
    assert "9 筆明細，對上訂單 7 筆、重複 1 筆" in body
    assert "付款單號 PAY-ZZZ" in body
    assert "/settlement/orphans/" in body
    assert "有 1 筆已付款訂單超過撥款期限" in body
    assert to_wade.kind == Notification.Kind.IMPORT_DONE
    assert to_wade.payload["orphan_count"] == 1
    assert not _told("huber")


def test_a_file_of_lines_seen_before_tells_no_one(louis, wade):
    _book(louis)
    _send(_settlement_request(louis), wade, "ecpay.csv", ECPAY_FIRST)
    before = Notification.objects.count()
    settlement = DataRequest.objects.get(kind=DataRequest.Kind.SETTLEMENT)
    _upload, result = _send(settlement, wade, "again.csv", ONLY_SEEN_BEFORE)
    assert (result.line_count, result.duplicate_line_count) == (1, 1)
    assert Notification.objects.count() == before


def test_english_readers_get_the_same_figures(louis, wade):
    from django.utils import translation

    _book(louis)
    _send(_settlement_request(louis), wade, "ecpay.csv", ECPAY_FIRST)
    (to_louis,) = _told("louis")
    with translation.override("en"):
        subject, body = notification_text(to_louis)
    assert "NT$71,187" in subject
    assert "B (order NT$28,000, settled NT$26,000)" in body
