"""Louis accepts the difference between an order's amount and what the
provider settled for it (an automatic mismatch: short or over), and undoes
it. Both audited; the order's result is rebuilt in the same transaction and
the order leaves (or rejoins) Louis's exceptions."""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.errors import Conflict, Forbidden, InvalidInput, NotFound
from reconciliation.message_text import money
from reconciliation.models import AuditEvent, Order, OrderSettlement, SettlementAcceptance
from reconciliation.permissions import Action, can
from reconciliation.services import book
from reconciliation.services.audit import record_audit
from reconciliation.services.profiles import profile_for
from reconciliation.services.settlement.claims import one_order
from reconciliation.services.settlement.results import (
    MISMATCH_STATES,
    after_settlement_change,
    rebuild_order_settlements,
)


def may_accept(user) -> bool:
    """Accepting money that differs from the order is a revenue decision."""
    return can(user, Action.DECIDE_REVENUE)


def _require(user) -> None:
    if not may_accept(user):
        raise Forbidden("forbidden", _("只有 Louis 能接受撥款差額。"))


def accept_difference(*, actor, project, order_id: str, note: str) -> SettlementAcceptance:
    """Accept the settled gross of an order in over_amount or
    amount_mismatch, with a note saying why."""
    _require(actor)
    person = profile_for(actor)
    note = (note or "").strip()
    if not note:
        raise InvalidInput("note_required", _("請寫下接受差額的原因。"), status=400)
    with transaction.atomic():
        order = None
        if project is not None:
            book.lock(project)
            order = Order.objects.filter(project=project, order_id=order_id).first()
        if order is None:
            raise NotFound("order_not_found", _("訂單簿裡沒有訂單 %(id)s。") % {"id": order_id})
        result = OrderSettlement.objects.filter(order=order).first()
        if result is None or result.state not in MISMATCH_STATES:
            raise Conflict(
                "not_a_mismatch",
                _("訂單 %(id)s 的撥款金額沒有不符，沒有差額可以接受。") % {"id": order_id},
            )
        try:
            with transaction.atomic():
                acceptance = SettlementAcceptance.objects.create(
                    project=project,
                    order=order,
                    expected_amount=order.amount,
                    settled_gross=result.settled_gross,
                    note=note[:500],
                    created_by=person,
                )
        except IntegrityError as exc:
            raise Conflict("already_accepted", _("這筆訂單的差額已經接受。")) from exc
        _rebuild(project, order)
        record_audit(
            verb=AuditEvent.Verb.SETTLEMENT_ACCEPTED,
            actor=person,
            project=project,
            message=_(
                "%(who)s 接受訂單 %(order)s 的撥款差額：訂單金額 %(expected)s，撥款 %(settled)s。"
                "原因：%(note)s"
            )
            % {
                "who": person,
                "order": order.order_id,
                "expected": money(order.amount),
                "settled": money(result.settled_gross),
                "note": note,
            },
            acceptance_id=acceptance.pk,
            order_id=order.order_id,
            expected_amount=float(order.amount),
            settled_gross=float(result.settled_gross),
        )
    return acceptance


def undo_acceptance(*, actor, acceptance_id: int, note: str = "") -> SettlementAcceptance:
    """Undo a live acceptance: the order is a mismatch for Louis again."""
    _require(actor)
    person = profile_for(actor)
    with transaction.atomic():
        acceptance = (
            SettlementAcceptance.objects.filter(pk=acceptance_id)
            .select_related("order", "project")
            .first()
        )
        if acceptance is None:
            raise NotFound("acceptance_not_found", _("找不到這筆接受的差額。"))
        book.lock(acceptance.project)
        changed = SettlementAcceptance.objects.filter(
            pk=acceptance.pk, undone_at__isnull=True
        ).update(undone_at=timezone.now(), undone_by=person, undo_note=(note or "")[:500])
        if not changed:
            raise Conflict("acceptance_already_undone", _("這筆差額的接受已經取消。"))
        _rebuild(acceptance.project, acceptance.order)
        record_audit(
            verb=AuditEvent.Verb.SETTLEMENT_UNACCEPTED,
            actor=person,
            project=acceptance.project,
            message=_("%(who)s 取消接受訂單 %(order)s 的撥款差額。")
            % {"who": person, "order": acceptance.order.order_id},
            acceptance_id=acceptance.pk,
            order_id=acceptance.order.order_id,
        )
    acceptance.refresh_from_db()
    return acceptance


def _rebuild(project, order) -> None:
    rebuild_order_settlements(project=project, only=one_order(order))
    after_settlement_change(
        project=project, cause={"kind": "settlement", "order_id": order.order_id}
    )
