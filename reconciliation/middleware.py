import re

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import JsonResponse
from django.shortcuts import render

from reconciliation.inputs import nul_message


class PagesLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Pages need a signed-in user; the API answers 401 JSON itself (token or
    session) and the health check is for machines."""

    open_prefixes = ("/api/", "/healthz", "/static/")

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(self.open_prefixes):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class RejectNulMiddleware:
    """A NUL in any query parameter, form field or JSON body is refused here,
    in one place, with a 422 naming the field: no database text column takes
    one (PostgreSQL answers an error, SQLite stores it). File cells have their
    own row error (`nul_character`)."""

    JSON_NUL = re.compile(rb"\\u0000", re.IGNORECASE)

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        field = self.nul_field(request)
        if field is not None:
            return self.refuse(request, field)
        return self.get_response(request)

    def nul_field(self, request) -> str | None:
        if "\x00" in request.path:
            return "path"
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                return key.replace("\x00", "")
        content_type = request.content_type or ""
        if request.method == "POST" and content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            for key, values in request.POST.lists():
                if "\x00" in key or any("\x00" in v for v in values):
                    return key.replace("\x00", "")
        elif request.method in ("POST", "PUT", "PATCH") and content_type == "application/json":
            body = request.body
            if b"\x00" in body or self.JSON_NUL.search(body):
                return "body"
        return None

    def refuse(self, request, field: str):
        message = nul_message()
        if request.path.startswith("/api/"):
            return JsonResponse(
                {"error": "invalid_input", "detail": {"field": field, "message": message}},
                status=422,
                json_dumps_params={"ensure_ascii": False},
            )
        return render(
            request,
            "reconciliation/bad_input.html",
            {"field": field, "message": message},
            status=422,
        )
