"""The JSON API, django-ninja. Each capability has its own router
module; this one wires authentication, the error shape and the routers."""

import logging

from django.http import Http404
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.renderers import JSONRenderer

from reconciliation.api.auth import SessionAuth, TokenAuth
from reconciliation.errors import DomainError

logger = logging.getLogger(__name__)


class UnicodeJSONRenderer(JSONRenderer):
    # Chinese messages readable in curl and logs, not as escape sequences.
    json_dumps_params = {"ensure_ascii": False}


api = NinjaAPI(
    renderer=UnicodeJSONRenderer(),
    title="Kolable data-gap escalation API",
    version="1.0",
    description=(
        "Tracked data requests, upload validation, reconciliation and the revenue-recognition "
        "guard. People use their session; the PLS bot sends `Authorization: Token <key>` "
        "(make one with `python manage.py create_api_token pls`). Errors are "
        '`{"error": code, "detail": ...}`.'
    ),
    auth=[TokenAuth(), SessionAuth()],
    openapi_url="/schema/",
    docs_url="/docs",
    urls_namespace="api",
)


def error_response(request, status: int, code: str, detail):
    return api.create_response(request, {"error": code, "detail": detail}, status=status)


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    return error_response(request, exc.status, exc.code, exc.detail)


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    if exc.errors and all(list(e.get("loc", []))[:1] == ["path"] for e in exc.errors):
        # A path id that is not a UUID names nothing: the same answer as an
        # unknown one.
        return on_not_found(request, exc)
    detail = [
        {"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors
    ]
    return error_response(request, 422, "invalid_input", detail)


@api.exception_handler(AuthenticationError)
def on_auth_error(request, exc: AuthenticationError):
    return error_response(
        request, 401, "unauthorized", _("請登入，或帶上 Authorization: Token <key>。")
    )


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    codes = {
        400: "bad_request",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        429: "throttled",
    }
    return error_response(request, exc.status_code, codes.get(exc.status_code, "error"), str(exc))


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return error_response(request, 404, "not_found", _("找不到這筆資料。"))


@api.exception_handler(Exception)
def on_unexpected_error(request, exc: Exception):
    """Anything else is our bug, never the caller's: the documented JSON
    shape (not Django's HTML page) and the traceback in the log."""
    logger.exception("API %s %s failed", request.method, request.path)
    return error_response(
        request, 500, "server_error", _("伺服器發生錯誤，已記錄；請稍後再試或通知管理員。")
    )


from reconciliation.api import requests as _requests  # noqa: E402

api.add_router("/kolable/", _requests.router)

from reconciliation.api import pls as _pls  # noqa: E402

api.add_router("/kolable/", _pls.router)

from reconciliation.api import evidence as _evidence  # noqa: E402

api.add_router("/kolable/", _evidence.router)

from reconciliation.api import reconciliation as _reconciliation  # noqa: E402

api.add_router("/kolable/", _reconciliation.router)

from reconciliation.api import uploads as _uploads  # noqa: E402

api.add_router("/kolable/", _uploads.router)

from reconciliation.api import sources as _sources  # noqa: E402

api.add_router("/kolable/", _sources.router)
from reconciliation.api import live as _live  # noqa: E402

api.add_router("/kolable/", _live.router)
from reconciliation.api import settlement as _settlement  # noqa: E402

api.add_router("/kolable/", _settlement.router)
