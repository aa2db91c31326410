"""Huber's and Louis's manual settlement matches: an orphan line to an
order of the book, and undoing it. Both audited; the order results are
rebuilt in the same transaction."""

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.errors import Conflict, Forbidden, InvalidInput, NotFound
from reconciliation.models import AuditEvent, Order, SettlementLine, SettlementMatch
from reconciliation.permissions import Role, has_role
from reconciliation.services import book
from reconciliation.services.audit import record_audit
from reconciliation.services.profiles import profile_for
from reconciliation.services.settlement.results import (
    after_settlement_change,
    rebuild_order_settlements,
)


def may_match(user) -> bool:
    """Huber (evidence) and Louis (decisions) match settlement lines by hand."""
    return has_role(user, Role.HUBER) or has_role(user, Role.LOUIS)


def _require(user) -> None:
    if not may_match(user):
        raise Forbidden("forbidden", _("只有 Huber 或 Louis 能人工對帳撥款明細。"))


def match_line(
    *, actor, line_id: int, order_id: str, note: str, accept_difference: bool = False
) -> SettlementMatch:
    """Match an orphan line to the order `order_id` of the line's project. A
    line whose amount differs from the order's needs `accept_difference` and
    a note saying why."""
    _require(actor)
    person = profile_for(actor)
    note = (note or "").strip()
    with transaction.atomic():
        line = SettlementLine.objects.filter(pk=line_id).select_related("project").first()
        if line is None:
            raise NotFound("line_not_found", _("找不到這筆撥款明細。"))
        book.lock(line.project)
        order = Order.objects.filter(project=line.project, order_id=order_id).first()
        if order is None:
            raise NotFound("order_not_found", _("訂單簿裡沒有訂單 %(id)s。") % {"id": order_id})
        if line.line_state != SettlementLine.State.ORPHAN:
            raise Conflict(
                "line_not_orphan",
                _("這筆撥款明細的狀態是「%(state)s」，只有找不到訂單的明細能人工對帳。")
                % {"state": line.get_line_state_display()},
            )
        difference = Decimal(order.amount) - Decimal(line.gross_amount)
        if difference and not accept_difference:
            raise InvalidInput(
                "amount_differs",
                _("明細金額 NT$%(line)s 與訂單金額 NT$%(order)s 不同；接受差額請勾選並寫明原因。")
                % {"line": f"{line.gross_amount:,.0f}", "order": f"{order.amount:,.0f}"},
            )
        if not note:
            raise InvalidInput("note_required", _("請寫下人工對帳的原因。"))
        try:
            with transaction.atomic():
                match = SettlementMatch.objects.create(
                    project=line.project,
                    line=line,
                    order=order,
                    note=note[:500],
                    accept_difference=bool(difference) and accept_difference,
                    difference=difference,
                    created_by=person,
                )
        except IntegrityError as exc:
            raise Conflict("line_already_matched", _("這筆撥款明細已經人工對上訂單。")) from exc
        rebuild_order_settlements(project=line.project)
        after_settlement_change(
            project=line.project, cause={"kind": "settlement", "order_id": order.order_id}
        )
        record_audit(
            verb=AuditEvent.Verb.SETTLEMENT_MATCHED,
            actor=person,
            project=line.project,
            message=_("%(who)s 把撥款明細 %(ref)s（NT$%(amount)s）對到訂單 %(order)s：%(note)s")
            % {
                "who": person,
                "ref": line.payment_ref,
                "amount": f"{line.gross_amount:,.0f}",
                "order": order.order_id,
                "note": note,
            },
            match_id=match.pk,
            line_id=line.pk,
            order_id=order.order_id,
            accept_difference=match.accept_difference,
            difference=float(difference),
        )
    return match


def undo_match(*, actor, match_id: int, note: str = "") -> SettlementMatch:
    """Undo a live manual match: the line is an orphan again."""
    _require(actor)
    person = profile_for(actor)
    with transaction.atomic():
        match = SettlementMatch.objects.filter(pk=match_id).select_related("line", "order").first()
        if match is None:
            raise NotFound("match_not_found", _("找不到這筆人工對帳。"))
        book.lock(match.project)
        changed = SettlementMatch.objects.filter(pk=match.pk, undone_at__isnull=True).update(
            undone_at=timezone.now(), undone_by=person, undo_note=(note or "")[:500]
        )
        if not changed:
            raise Conflict("match_already_undone", _("這筆人工對帳已經取消。"))
        rebuild_order_settlements(project=match.project)
        after_settlement_change(
            project=match.project, cause={"kind": "settlement", "order_id": match.order.order_id}
        )
        record_audit(
            verb=AuditEvent.Verb.SETTLEMENT_UNMATCHED,
            actor=person,
            project=match.project,
            message=_("%(who)s 取消撥款明細 %(ref)s 與訂單 %(order)s 的人工對帳。")
            % {"who": person, "ref": match.line.payment_ref, "order": match.order.order_id},
            match_id=match.pk,
            line_id=match.line_id,
            order_id=match.order.order_id,
        )
    match.refresh_from_db()
    return match
