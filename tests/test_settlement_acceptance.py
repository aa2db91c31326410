"""Louis accepts the difference of an automatic mismatch (short or over),
through the API and the order page: note required, audited, undone; the
order is settled with the difference accepted, its reason still shown, and
it leaves Louis's exceptions."""

from datetime import datetime

import pytest
from django.test import Client

from reconciliation.models import AuditEvent, DataRequest, OrderSettlement
from reconciliation.selectors import settlement as figures
from reconciliation.selectors.scorecard import default_project
from tests.test_settlement import B_REASON, ECPAY_FIRST, _book, _send, _settlement_request

pytestmark = pytest.mark.django_db

ACCEPT = "/api/kolable/settlement-acceptances"
ORDER = "/api/kolable/orders/"


def _outcome(client, order_id: str) -> dict:
    response = client.get(ORDER + order_id)
    assert response.status_code == 200, response.content
    body = response.json()
    return {
        key: body[key]
        for key in (
            "settlement_state",
            "difference_accepted",
            "settlement_reason",
            "settlement_acceptance",
        )
    }


def _settled(louis, wade):
    _book(louis)
    _send(_settlement_request(louis), wade, "ecpay.csv", ECPAY_FIRST)
    return default_project()


def _open_settlement_request():
    return DataRequest.objects.get(kind=DataRequest.Kind.SETTLEMENT)


def _mismatch_owners(project) -> list[str]:
    got = figures.settlement_exceptions(figures.settlement_figures(project))
    return [e["owner"] for e in got if e["code"] == "settlement_mismatch"]


def test_louis_accepts_a_short_settlement_and_undoes_it(api_as, louis, wade):
    project = _settled(louis, wade)
    assert figures.settlement_figures(project)["mismatch_count"] == 2
    assert _outcome(api_as(louis), "B") == {
        "settlement_state": "amount_mismatch",
        "difference_accepted": False,
        "settlement_reason": B_REASON,
        "settlement_acceptance": None,
    }
    made = api_as(louis).post(ACCEPT, {"order_id": "B", "note": "綠界少撥 2,000，客服確認是折價券"})
    assert made.status_code == 201, made.content
    body = made.json()
    accepted = _outcome(api_as(louis), "B")
    acceptance = accepted.pop("settlement_acceptance")
    assert accepted == {
        "settlement_state": "settled",
        "difference_accepted": True,
        "settlement_reason": B_REASON,
    }
    # The order's answer gives Taipei time, as its other timestamps.
    assert datetime.fromisoformat(acceptance.pop("created_at")) == datetime.fromisoformat(
        body["created_at"].replace("Z", "+00:00")
    )
    assert acceptance == {
        "id": body["id"],
        "expected_amount": 28000.0,
        "settled_gross": 26000.0,
        "note": "綠界少撥 2,000，客服確認是折價券",
        "created_by": "louis",
    }
    assert (body["expected_amount"], body["settled_gross"]) == (28000.0, 26000.0)
    assert (body["order_settlement_state"], body["created_by"]) == ("settled", "louis")
    b = OrderSettlement.objects.get(order__order_id="B")
    assert (b.state, b.difference_accepted, b.settled_gross, b.settled_net) == (
        "settled",
        True,
        26000,
        25285,
    )
    got = figures.settlement_figures(project)
    assert got["mismatch_count"] == 1
    assert _mismatch_owners(project) == ["louis"]
    event = AuditEvent.objects.get(verb="settlement.accepted")
    assert event.actor.user.username == "louis"
    assert "訂單金額 NT$28,000，撥款 NT$26,000" in event.message
    assert "折價券" in event.message
    page = Client()
    page.force_login(louis)
    html = page.get("/orders/B/").content.decode()
    assert 'data-testid="order-settlement-difference-accepted"' in html
    assert "訂單金額 NT$28,000，撥款 NT$26,000" in html
    assert 'data-testid="accept-form"' not in html
    assert 'data-testid="unaccept-form"' in html

    undone = api_as(louis).post(f"{ACCEPT}/{body['id']}/undo", {"note": "再查一次"})
    assert undone.status_code == 200, undone.content
    assert (undone.json()["order_settlement_state"], undone.json()["undone_by"]) == (
        "amount_mismatch",
        "louis",
    )
    assert figures.settlement_figures(project)["mismatch_count"] == 2
    assert _outcome(api_as(louis), "B") == {
        "settlement_state": "amount_mismatch",
        "difference_accepted": False,
        "settlement_reason": B_REASON,
        "settlement_acceptance": None,
    }
    assert AuditEvent.objects.filter(verb="settlement.unaccepted").count() == 1
    twice = api_as(louis).post(f"{ACCEPT}/{body['id']}/undo", {})
    assert twice.status_code == 409


def test_over_amount_is_accepted_too_and_only_by_louis_with_a_note(api_as, louis, wade, huber):
    project = _settled(louis, wade)
    for person in (wade, huber):
        refused = api_as(person).post(ACCEPT, {"order_id": "E", "note": "x"})
        assert refused.status_code == 403, refused.content
    blank = api_as(louis).post(ACCEPT, {"order_id": "E", "note": "  "})
    assert blank.status_code == 400 and blank.json()["error"] == "note_required"
    absent = api_as(louis).post(ACCEPT, {"order_id": "E"})
    assert absent.status_code == 400
    not_mismatch = api_as(louis).post(ACCEPT, {"order_id": "A", "note": "x"})
    assert not_mismatch.status_code == 409
    unknown = api_as(louis).post(ACCEPT, {"order_id": "NOPE", "note": "x"})
    assert unknown.status_code == 404
    bad_id = api_as(louis).post(f"{ACCEPT}/999999/undo", {})
    assert bad_id.status_code == 404
    made = api_as(louis).post(ACCEPT, {"order_id": "E", "note": "重複刷卡，已退第二筆"})
    assert made.status_code == 201
    again = api_as(louis).post(ACCEPT, {"order_id": "E", "note": "again"})
    assert again.status_code == 409
    e = OrderSettlement.objects.get(order__order_id="E")
    assert (e.state, e.difference_accepted, e.settled_gross) == ("settled", True, 7200)
    assert figures.settlement_figures(project)["mismatch_count"] == 1
    assert not AuditEvent.objects.filter(verb="settlement.accepted", actor__user__username="wade")


def test_a_later_line_that_moves_the_amount_reopens_the_mismatch(api_as, louis, wade):
    project = _settled(louis, wade)
    api_as(louis).post(ACCEPT, {"order_id": "B", "note": "少撥"})
    _send(
        _open_settlement_request(),
        wade,
        "refund-b.csv",
        b"payment_ref,provider_txn_id,gross_amount,fee_amount,txn_date,txn_type\n"
        b"PAY-B,R002,-1000,0,2026-05-20,refund\n",
    )
    b = OrderSettlement.objects.get(order__order_id="B")
    assert (b.difference_accepted, b.settled_gross) == (False, 25000)
    assert b.state != "settled"
    reopened = _outcome(api_as(louis), "B")
    # A refund after a short settlement: partly refunded, no longer accepted.
    assert (
        reopened["settlement_state"],
        reopened["difference_accepted"],
        reopened["settlement_reason"],
    ) == ("partially_refunded", False, None)
    # Louis's acceptance is still live, of the gross he saw; it no longer holds.
    assert reopened["settlement_acceptance"]["settled_gross"] == 26000.0
    page = Client()
    page.force_login(louis)
    html = page.get("/orders/B/").content.decode()
    assert "之後的撥款改變了金額" in html
    assert figures.settlement_figures(project)["mismatch_count"] >= 1


def test_the_order_page_form_accepts_for_louis_only(louis, huber, wade):
    _settled(louis, wade)
    huber_page = Client()
    huber_page.force_login(huber)
    assert 'data-testid="accept-form"' not in huber_page.get("/orders/B/").content.decode()
    refused = huber_page.post("/settlement/accept/", {"order_id": "B", "note": "x"})
    assert refused.status_code == 302
    assert not OrderSettlement.objects.get(order__order_id="B").difference_accepted
    louis_page = Client()
    louis_page.force_login(louis)
    assert 'data-testid="accept-form"' in louis_page.get("/orders/B/").content.decode()
    blank = louis_page.post("/settlement/accept/", {"order_id": "B", "note": ""}, follow=True)
    assert "請寫下接受差額的原因" in blank.content.decode()
    done = louis_page.post(
        "/settlement/accept/", {"order_id": "B", "note": "客服確認"}, follow=True
    )
    assert done.status_code == 200
    assert OrderSettlement.objects.get(order__order_id="B").difference_accepted


@pytest.mark.parametrize("who", ["louis", "wade", "huber", "pls", "outsider"])
def test_accepting_a_difference_by_role(who, request, api_as, louis, wade):
    _settled(louis, wade)
    user = request.getfixturevalue(who) if who != "pls" else "pls"
    response = api_as(user).post(ACCEPT, {"order_id": "B", "note": "客服確認"})
    assert response.status_code == (201 if who == "louis" else 403), response.content


def test_louis_decided_before_hears_which_order_the_acceptance_moved(api_as, louis, wade):
    from reconciliation.message_text import notification_text
    from reconciliation.models import Notification

    _settled(louis, wade)
    api_as(louis).post("/api/kolable/reconciliation/decision", {"decision": "approve"})
    api_as(louis).post(ACCEPT, {"order_id": "B", "note": "客服確認"})
    told = Notification.objects.filter(
        kind=Notification.Kind.BOOK_CHANGED, channel="inbox", recipient__user__username="louis"
    ).latest("created_at")
    subject, body = notification_text(told)
    assert subject.endswith("認列後數字有變：訂單 B 的撥款對帳有更新")
    assert "訂單 B 的撥款有人工對帳或接受差額" in body
