"""The data model, one module per part of the app.

OrderRow, OrderEvidence, AuditEvent and ComplianceRecord are append-only: migration
0002_append_only_triggers (and 0012 for ComplianceRecord) installs database triggers that refuse UPDATE and
DELETE on them, so the rule holds for every client of the database, not just
this code. Foreign keys into those tables use PROTECT for the same reason.
"""

from .book import BookSummary, Order, OrderEvidence, OrderTag, RevenueDecision
from .imports import ImportSummary, OrderRow, ReconciliationImport
from .live import ComplianceRecord, LiveBookTotals, LiveStreamFigures, StreamViewers
from .messages import ArtifactClaim, AuditEvent, DispatchDecision, Notification, NotificationAttempt
from .people import ApiToken, Profile, Project
from .requests import DEFAULT_DATASET, DataRequest, Upload, default_due_at
from .settlement import (
    OrderSettlement,
    SettlementAcceptance,
    SettlementClaim,
    SettlementImport,
    SettlementLine,
    SettlementMatch,
    SettlementSummary,
)
from .sync import SyncRun, SyncSource

__all__ = [
    "Project",
    "Profile",
    "ApiToken",
    "DEFAULT_DATASET",
    "default_due_at",
    "DataRequest",
    "Upload",
    "ReconciliationImport",
    "ImportSummary",
    "OrderRow",
    "Order",
    "BookSummary",
    "OrderEvidence",
    "OrderTag",
    "RevenueDecision",
    "Notification",
    "NotificationAttempt",
    "DispatchDecision",
    "ArtifactClaim",
    "AuditEvent",
    "SyncSource",
    "SyncRun",
    "LiveStreamFigures",
    "LiveBookTotals",
    "ComplianceRecord",
    "StreamViewers",
    "SettlementImport",
    "SettlementLine",
    "SettlementMatch",
    "SettlementClaim",
    "SettlementAcceptance",
    "OrderSettlement",
    "SettlementSummary",
]
