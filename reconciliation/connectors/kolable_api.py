"""The HTTP client of the Kolable orders API.

    GET {base_url}/v1/orders?updated_since=<ISO 8601>&limit=<n>[&cursor=<token>]
    Authorization: Bearer <token>
    → 200 {"data": [{order_id, created_at, updated_at, ...}], "next_cursor": "<token>" | null}

Rules of one request: 429 waits `Retry-After` (at most SYNC_MAX_RETRY_AFTER
seconds), 5xx, timeouts and broken connections back off exponentially; a page
is tried at most SYNC_MAX_TRIES times. 401/403 stop at once (`auth`): a
token that is refused once is refused on every retry.

The host of `base_url` is resolved for every request and every address must
be public, unless the host is listed in SYNC_ALLOWED_HOSTS; the connection
goes to exactly the address that was checked. The token never appears in an
error message or a log line.
"""

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode, urlsplit

import orjson
from django.conf import settings
from django.utils.translation import gettext as _

from reconciliation.net import PinnedHTTPConnection, PinnedHTTPSConnection, address_refusal

USER_AGENT = "KolableSync/1.0"
MAX_PAGE_BYTES = 64 * 1_048_576


class SyncFailure(Exception):
    """Why a pull stopped. `code`: auth, http, timeout, connection,
    bad_response, host_refused, abandoned."""

    def __init__(self, code: str, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass
class Page:
    records: list[dict]
    next_cursor: str | None


def _allowed_hosts() -> set[str]:
    return {h.strip().lower().rstrip(".") for h in settings.SYNC_ALLOWED_HOSTS if h.strip()}


def split_base_url(base_url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix) of a base URL, or SyncFailure
    host_refused for anything but a plain http(s) URL."""
    try:
        parts = urlsplit(base_url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise SyncFailure("host_refused", _("網址格式不正確（主機或連接埠）。")) from None
    if scheme not in ("http", "https") or not host:
        raise SyncFailure("host_refused", _("只接受 http(s) 網址。"))
    if parts.username or parts.password:
        raise SyncFailure("host_refused", _("網址不可包含帳號密碼。"))
    if parts.query or parts.fragment:
        raise SyncFailure("host_refused", _("API 網址不可帶查詢字串。"))
    return scheme, host, port, parts.path.rstrip("/")


def resolve_address(host: str, port: int) -> str:
    """The one address to connect to. Every address of the answer must be
    public unless the host is listed in SYNC_ALLOWED_HOSTS."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise SyncFailure("host_refused", _("無法解析主機 %(host)s。") % {"host": host}) from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise SyncFailure("host_refused", _("主機 %(host)s 沒有位址。") % {"host": host})
    if host not in _allowed_hosts():
        for address in addresses:
            refusal = address_refusal(address)
            if refusal:
                raise SyncFailure(
                    "host_refused",
                    _(
                        "%(host)s 解析到 %(address)s（%(kind)s），不連線；需要時列入 SYNC_ALLOWED_HOSTS。"
                    )
                    % {"host": host, "address": address, "kind": refusal},
                )
    return addresses[0]


def check_base_url(base_url: str) -> None:
    """Raises SyncFailure host_refused unless the sync may pull `base_url`."""
    _scheme, host, port, _path = split_base_url(base_url)
    resolve_address(host, port)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float:
    """Retry-After as seconds (a number or an HTTP date), bounded by
    SYNC_MAX_RETRY_AFTER; 1 s when absent or unreadable."""
    limit = float(settings.SYNC_MAX_RETRY_AFTER)
    seconds = 1.0
    if value:
        value = value.strip()
        try:
            seconds = float(value)
        except ValueError:
            try:
                moment = parsedate_to_datetime(value)
                seconds = (moment - (now or datetime.now(UTC))).total_seconds()
            except (TypeError, ValueError):
                seconds = 1.0
    return min(max(seconds, 0.0), limit)


class KolableApiClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        page_size: int,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.scheme, self.host, self.port, self.prefix = split_base_url(base_url)
        self._token = token
        self.page_size = page_size
        self.sleep = sleep
        self.max_tries = int(settings.SYNC_MAX_TRIES)
        self.backoff = float(settings.SYNC_BACKOFF_SECONDS)
        self.timeout = float(settings.SYNC_TIMEOUT_SECONDS)

    def __repr__(self):  # never the token
        return f"KolableApiClient({self.scheme}://{self.host}:{self.port}{self.prefix})"

    def pages(self, *, updated_since: datetime) -> Iterator[Page]:
        """Every page from `updated_since` on, following next_cursor to the end."""
        since = updated_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        cursor = None
        seen = set()
        while True:
            query = {"updated_since": since, "limit": self.page_size}
            if cursor:
                query["cursor"] = cursor
            page = self._page(f"{self.prefix}/v1/orders?{urlencode(query)}")
            yield page
            if not page.next_cursor:
                return
            if page.next_cursor in seen:
                raise SyncFailure("bad_response", _("API 重複回傳同一個 next_cursor。"))
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    def _page(self, path: str) -> Page:
        failure = None
        for attempt in range(1, self.max_tries + 1):
            try:
                status, headers, body = self._get(path)
            except TimeoutError:
                failure = SyncFailure(
                    "timeout", _("%(s)s 秒內沒有回應。") % {"s": f"{self.timeout:g}"}
                )
                wait = self.backoff * 2 ** (attempt - 1)
            except (OSError, http.client.HTTPException) as exc:
                failure = SyncFailure(
                    "connection", _("連線失敗：%(error)s") % {"error": exc.__class__.__name__}
                )
                wait = self.backoff * 2 ** (attempt - 1)
            else:
                if status == 200:
                    return _parse_page(body)
                if status in (401, 403):
                    raise SyncFailure(
                        "auth",
                        _("API 拒絕權杖（HTTP %(status)s）：請更新來源的 API 權杖。")
                        % {"status": status},
                        http_status=status,
                    )
                if status == 429:
                    failure = SyncFailure(
                        "http", _("API 限流（HTTP 429），重試後仍被拒。"), http_status=status
                    )
                    wait = retry_after_seconds(headers.get("retry-after"))
                elif status >= 500:
                    failure = SyncFailure(
                        "http",
                        _("API 伺服器錯誤（HTTP %(status)s），重試 %(n)s 次仍失敗。")
                        % {"status": status, "n": self.max_tries},
                        http_status=status,
                    )
                    wait = self.backoff * 2 ** (attempt - 1)
                else:
                    raise SyncFailure(
                        "http",
                        _("API 回應 HTTP %(status)s。") % {"status": status},
                        http_status=status,
                    )
            if attempt < self.max_tries:
                self.sleep(wait)
        raise failure

    def _get(self, path: str) -> tuple[int, dict, bytes]:
        address = resolve_address(self.host, self.port)
        connection_class = PinnedHTTPSConnection if self.scheme == "https" else PinnedHTTPConnection
        connection = connection_class(self.host, self.port, address=address, timeout=self.timeout)
        try:
            connection.request(
                "GET",
                path,
                headers={
                    "Authorization": f"Bearer {self._token}",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                    "Connection": "close",
                },
            )
            response = connection.getresponse()
            body = response.read(MAX_PAGE_BYTES + 1)
            headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, headers, body
        finally:
            connection.close()


def _loads(body: bytes):
    """orjson (several times faster on a page of a thousand orders); the
    standard parser for what orjson refuses but JSON allows (integers wider
    than 64 bits), so the validator, not the parser, judges such a value."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _parse_page(body: bytes) -> Page:
    if len(body) > MAX_PAGE_BYTES:
        raise SyncFailure("bad_response", _("API 單頁回應超過 64 MB。"))
    try:
        document = _loads(body)
    except (ValueError, UnicodeDecodeError):
        raise SyncFailure("bad_response", _("API 回應不是 JSON。")) from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise SyncFailure("bad_response", _("API 回應缺少 data 陣列。"))
    records = document["data"]
    if not all(isinstance(r, dict) for r in records):
        raise SyncFailure("bad_response", _("API 回應的 data 不是物件陣列。"))
    cursor = document.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise SyncFailure("bad_response", _("API 回應的 next_cursor 不是字串。"))
    return Page(records=records, next_cursor=cursor or None)
