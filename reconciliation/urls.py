from django.urls import path

from reconciliation.views import health, inbox, requests

urlpatterns = [
    path("", requests.board, name="board"),
    path("requests/new/", requests.request_create, name="request-create"),
    path("requests/<uuid:pk>/", requests.request_view, name="request-detail"),
    path("requests/<uuid:pk>/close/", requests.request_close, name="request-close"),
    path("template.<str:fmt>", requests.template_download, name="template-download"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/read/", inbox.inbox_mark_read, name="inbox-read-all"),
    path("inbox/<uuid:pk>/read/", inbox.inbox_mark_read, name="inbox-read"),
    path("healthz", health.healthz, name="healthz"),
]
