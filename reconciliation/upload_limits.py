"""Refuse an oversized upload before anything reads its body.

Django parses a multipart body the first time anything touches
``request.POST`` or ``request.FILES`` — and the CSRF check does, for every
session POST, before the view runs. DATA_UPLOAD_MAX_MEMORY_SIZE does not
limit files, so a 2 GB post would be streamed to disk before the view could
say no. This middleware answers 413 from the declared Content-Length for
every upload endpoint (Huber's tag file too); the upload service also counts the bytes it
actually receives (a body without a Content-Length has none Django reads).
"""

import re

from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from reconciliation.services.uploads import max_upload_bytes

# Every path that takes a file: Wade's export (API and page), Huber's tag file and
# the live streams' viewer figures.
UPLOAD_PATHS = re.compile(
    r"^/(?:api/kolable/data-requests/[^/]+/upload/?|requests/[^/]+/upload/|evidence/import/"
    r"|api/kolable/live-viewers/?|live/viewers/)$"
)
# Room for the multipart boundary and the form's other fields.
MULTIPART_SLACK = 1_048_576


class UploadSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and UPLOAD_PATHS.match(request.path_info):
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > max_upload_bytes() + MULTIPART_SLACK:
                return self.refuse(request, declared)
        return self.get_response(request)

    def refuse(self, request, declared: int):
        limit_mb = max_upload_bytes() // 1_048_576
        message = _("檔案 %(size)s MB，超過上限 %(limit)s MB。") % {
            "size": f"{declared / 1_048_576:.1f}",
            "limit": limit_mb,
        }
        hint = _("把期間分成幾段分別匯出，或改存成 CSV（通常小很多）再上傳。")
        if request.path_info.startswith("/api/"):
            return JsonResponse(
                {
                    "error": "too_large",
                    "detail": {"message": message, "hint": hint, "limit_mb": limit_mb},
                },
                status=413,
                json_dumps_params={"ensure_ascii": False},
            )
        return render(
            request,
            "reconciliation/upload_too_large.html",
            {"message": message, "hint": hint},
            status=413,
        )
