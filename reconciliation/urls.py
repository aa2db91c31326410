from django.urls import path

from reconciliation import converters  # noqa: F401 - the anytext path converter
from reconciliation.views import evidence as evidence_views
from reconciliation.views import health, inbox, requests
from reconciliation.views import live as live_views
from reconciliation.views import orders as order_views
from reconciliation.views import pls as pls_views
from reconciliation.views import scorecard as scorecard_views
from reconciliation.views import settlement as settlement_views
from reconciliation.views import sources as source_views
from reconciliation.views import uploads as upload_views

urlpatterns = [
    path("", requests.board, name="board"),
    path("requests/new/", requests.request_create, name="request-create"),
    path("requests/<uuid:pk>/", requests.request_view, name="request-detail"),
    path("requests/<uuid:pk>/close/", requests.request_close, name="request-close"),
    path("requests/<uuid:pk>/extend/", requests.request_extend, name="request-extend"),
    path("template.<str:fmt>", requests.template_download, name="template-download"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/read/", inbox.inbox_mark_read, name="inbox-read-all"),
    path("inbox/<uuid:pk>/read/", inbox.inbox_mark_read, name="inbox-read"),
    path("inbox/<uuid:pk>/pause/", inbox.inbox_pause_revenue, name="inbox-pause"),
    path("healthz", health.healthz, name="healthz"),
    path("pls/", pls_views.pls_console, name="pls"),
    path("pls/context/", pls_views.pls_context, name="pls-context"),
    path("pls/claims/", pls_views.pls_claim, name="pls-claim"),
    path("evidence/", evidence_views.evidence_queue, name="evidence"),
    path("orders/<anytext:order_id>/", order_views.order_page, name="order-detail"),
    path("evidence/tag/", evidence_views.evidence_tag, name="evidence-tag"),
    path("evidence/import/", evidence_views.evidence_import, name="evidence-import"),
    path("evidence/template.<str:fmt>", evidence_views.evidence_template, name="evidence-template"),
    path("evidence/export.<str:fmt>", evidence_views.evidence_export, name="evidence-export"),
    path("sources/", source_views.sources_page, name="sources"),
    path("sources/new/", source_views.source_create, name="source-create"),
    path("sources/<uuid:pk>/sync/", source_views.source_sync, name="source-sync"),
    path("sources/<uuid:pk>/token/", source_views.source_token, name="source-token"),
    path("scorecard/", scorecard_views.scorecard_page, name="scorecard"),
    path("settlement/orphans/", settlement_views.settlement_orphans, name="settlement-orphans"),
    path("settlement/match/", settlement_views.settlement_match, name="settlement-match"),
    path("settlement/accept/", settlement_views.settlement_accept, name="settlement-accept"),
    path(
        "settlement/accept/<int:acceptance_id>/undo/",
        settlement_views.settlement_unaccept,
        name="settlement-unaccept",
    ),
    path(
        "settlement/match/<int:match_id>/undo/",
        settlement_views.settlement_undo,
        name="settlement-undo",
    ),
    path("scorecard/decision/", scorecard_views.scorecard_decide, name="scorecard-decide"),
    path("scorecard/export.<str:fmt>", scorecard_views.scorecard_export, name="scorecard-export"),
    path("live/", live_views.live_dashboard, name="live"),
    path("live/export.<str:fmt>", live_views.live_export, name="live-export"),
    path("live/compliance/", live_views.live_compliance, name="live-compliance"),
    path("live/viewers/", live_views.live_viewers, name="live-viewers"),
    # A source_event may hold any character ('/' and newlines included).
    path("live/streams/<anytext:source_event>/", live_views.live_stream, name="live-stream"),
    path("requests/<uuid:pk>/upload/", upload_views.upload_page, name="upload-page"),
    path(
        "uploads/<uuid:upload_id>/report.<str:fmt>",
        upload_views.upload_report,
        name="upload-report",
    ),
]
