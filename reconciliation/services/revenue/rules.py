"""The revenue rules — the one place they live: the
state every order ends in, the exceptions and who owns them. The full rule
text is in the package docstring (services/revenue/__init__.py)."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reconciliation.models import (
    OrderEvidence,
    OrderRow,
    ReconciliationImport,
)
from reconciliation.permissions import Role
from reconciliation.services.columns import utc_naive

Classification = OrderRow.Classification
Tag = OrderEvidence.Tag

# Imports whose numbers are verified (a failed import verifies nothing).
VERIFIED_IMPORT_STATUSES = (
    ReconciliationImport.Status.ACCEPTED,
    ReconciliationImport.Status.PARTIAL,
)
EXCEPTION_LIST_LIMIT = 200


class State(models.IntegerChoices):
    RECOGNISED = 0, _("已驗證營收")
    HELD = 1, _("保留待決")
    PENDING = 2, _("待付款")
    REFUNDED = 3, _("已退款")
    DUPLICATE = 4, _("重複")


class ExceptionCode(models.TextChoices):
    AMOUNT_MISMATCH = "amount_mismatch", _("同一訂單編號重複付款但金額不同")
    PAID_WITH_REFUND_REF = "paid_with_refund_ref", _("付款狀態為已付款，付款單號卻是退款單號")
    UNRESOLVED = "unresolved", _("Huber 標記待釐清")
    REBUY_UNMATCHED = "rebuy_unmatched", _("標記重買，但找不到同客戶同課程的另一筆訂單")
    TAG_CONFLICT = "tag_conflict", _("佐證與匯出檔矛盾（佐證已付款，匯出為已退款或待付款）")
    MISSING_FROM_SNAPSHOT = "missing_from_snapshot", _("訂單在訂單簿裡，最新的完整快照卻沒有它")


@dataclass(frozen=True)
class ExceptionRule:
    owner: Role
    # Evidence can settle it (Huber's tag clears it); a data error needs a new file.
    evidence_resolves: bool


# Owners: Wade for data errors, Huber for evidence, Louis for decisions.
EXCEPTION_RULES: dict[str, ExceptionRule] = {
    ExceptionCode.AMOUNT_MISMATCH: ExceptionRule(Role.WADE, evidence_resolves=False),
    ExceptionCode.PAID_WITH_REFUND_REF: ExceptionRule(Role.HUBER, evidence_resolves=True),
    ExceptionCode.UNRESOLVED: ExceptionRule(Role.HUBER, evidence_resolves=False),
    ExceptionCode.REBUY_UNMATCHED: ExceptionRule(Role.HUBER, evidence_resolves=False),
    ExceptionCode.TAG_CONFLICT: ExceptionRule(Role.LOUIS, evidence_resolves=False),
    ExceptionCode.MISSING_FROM_SNAPSHOT: ExceptionRule(Role.WADE, evidence_resolves=False),
}
EVIDENCE_RESOLVES = frozenset(c for c, r in EXCEPTION_RULES.items() if r.evidence_resolves)

METRICS = (
    "orders",
    "gmv",
    "paid_orders",
    "paid_amount",
    "held_orders",
    "held_amount",
    "pending_orders",
    "pending_amount",
    "refunded_orders",
    "refunded_amount",
    "duplicate_rows",
    "rebuy_orders",
    "rebuy_amount",
)
AMOUNT_METRICS = frozenset(m for m in METRICS if m.endswith("amount") or m == "gmv")
# ImportSummary field → the column it groups by.
DIMENSIONS = {
    "by_day": "day",
    "by_source_event": "source_event",
    "by_program": "program_id",
    "by_discount_code": "discount_code",
}
_STATE_OF_CLASS = {
    Classification.PAID: State.RECOGNISED,
    Classification.PENDING: State.PENDING,
    Classification.REFUNDED: State.REFUNDED,
    Classification.DUPLICATE: State.DUPLICATE,
}
_COUNTING = (State.RECOGNISED, State.HELD)


def exception_owner(code: str) -> str:
    rule = EXCEPTION_RULES.get(code)
    return rule.owner.value if rule else Role.LOUIS.value


# --- Row states -------------------------------------------------------------


def export_states(classification: pd.Series, exception_code: pd.Series) -> np.ndarray:
    """The state a row has from the export alone."""
    state = (
        pd.Series(classification, copy=False)
        .map(_STATE_OF_CLASS)
        .fillna(State.PENDING)
        .to_numpy(np.int8)
    )
    held = (state == State.RECOGNISED) & (np.asarray(exception_code) != "")
    state[held] = State.HELD
    return state


def export_rebuys(classification: pd.Series, rebuy_of: pd.Series) -> np.ndarray:
    return (np.asarray(classification) == Classification.PAID) & (np.asarray(rebuy_of) != "")


def taipei_days(created_at: pd.Series) -> pd.Series:
    """'YYYY-MM-DD' of each timestamp in Asia/Taipei (formatting only the
    distinct days, not a million timestamps)."""
    if len(created_at) == 0:
        return pd.Series([], index=created_at.index, dtype=object)
    local = (
        pd.DatetimeIndex(utc_naive(created_at))
        .tz_localize("UTC")
        .tz_convert(timezone.get_default_timezone_name())
        .tz_localize(None)
    )
    days = local.to_numpy().astype("datetime64[D]")
    found, uniques = pd.factorize(days)
    labels = np.datetime_as_string(uniques, unit="D")
    return pd.Series(pd.Categorical.from_codes(found, categories=labels), index=created_at.index)
