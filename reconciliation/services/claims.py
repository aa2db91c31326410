"""Verified claims and the project context Louis records.

A GitHub PR, a deployment or the target repository/API is recorded as
*verified* only when, at recording time, its URL answered HTTP 200 to a GET
from this server. Every claim is kept — a refused one with its reason — so the
trail shows what was claimed and why it was not believed. Nothing in the app
reports a PR or deployment as done without a verified claim
(`selectors/claims.py` only ever returns verified ones).

Checking a URL someone hands us is a server-side request, so `check_url`:

1. accepts only http(s) URLs without credentials, whose host is on
   `CLAIM_ALLOWED_HOSTS` (the host or a subdomain of a listed domain);
2. resolves the host once and refuses private, loopback, link-local,
   reserved or otherwise non-public addresses (unless `CLAIM_ALLOW_PRIVATE`,
   for tests) — and then connects to exactly the address it checked, so a
   second DNS answer cannot swap in an internal one;
3. sends one GET, follows at most MAX_REDIRECTS redirects and only to the
   same scheme, host and port, and reads no body — all of it, redirects
   included, within one deadline of `CLAIM_TIMEOUT_SECONDS` (a server that
   trickles its headers a byte at a time is cut off at the deadline);
4. verified on 200, refused with the reason on anything else.
"""

import http.client
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.errors import InvalidInput
from reconciliation.models import ArtifactClaim, AuditEvent, Project
from reconciliation.net import PinnedHTTPConnection as _PinnedHTTPConnection
from reconciliation.net import PinnedHTTPSConnection as _PinnedHTTPSConnection
from reconciliation.net import address_refusal
from reconciliation.services.audit import record_audit
from reconciliation.services.profiles import profile_for

MAX_REDIRECTS = 3
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
USER_AGENT = "KolableClaimCheck/1.0 (+verifies PR/deployment URLs)"
# A PR claim must point at a pull request, not at a repository or a profile.
GITHUB_PR_PATH = re.compile(r"^/[^/]+/[^/]+/pull/\d+(/.*)?$")


@dataclass
class UrlCheck:
    verified: bool
    code: str  # machine-readable: "ok", "host_not_allowed", "private_address", ...
    reason: str  # for people, zh-Hant
    http_status: int | None = None


def _refuse(code: str, reason: str, http_status: int | None = None) -> UrlCheck:
    return UrlCheck(False, code, reason, http_status)


def host_allowed(host: str) -> bool:
    """The host itself, or a subdomain of, an entry of CLAIM_ALLOWED_HOSTS
    ("github.com" allows "www.github.com", never "evilgithub.com")."""
    host = host.lower().rstrip(".")
    for entry in settings.CLAIM_ALLOWED_HOSTS:
        allowed = entry.strip().lower().lstrip("*").lstrip(".").rstrip(".")
        if allowed and (host == allowed or host.endswith("." + allowed)):
            return True
    return False


def _resolve(host: str, port: int) -> tuple[str | None, UrlCheck | None]:
    """The one address we will connect to, or why none is acceptable. Every
    address in the answer must be public: a mixed answer is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return None, _refuse(
            "dns_failed", _("無法解析主機 %(host)s：%(error)s") % {"host": host, "error": exc}
        )
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        return None, _refuse("dns_failed", _("主機 %(host)s 沒有位址。") % {"host": host})
    if not settings.CLAIM_ALLOW_PRIVATE:
        for address in addresses:
            refusal = address_refusal(address)
            if refusal:
                return None, _refuse(
                    "private_address",
                    _("%(host)s 解析到 %(address)s（%(kind)s），不連線。")
                    % {"host": host, "address": address, "kind": refusal},
                )
    return addresses[0], None


def _origin(url: str) -> tuple[tuple[str, str, int] | None, object]:
    """((scheme, host, port), the split URL), or (None, None) for a URL that
    does not parse: a bad port (":99999", ":abc") or bracket ("[::1")."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None, None
    return (scheme, host, port), parts


def _timed_out() -> UrlCheck:
    return _refuse(
        "timeout",
        _("%(seconds)s 秒內沒有回應。") % {"seconds": f"{settings.CLAIM_TIMEOUT_SECONDS:g}"},
    )


def _get_once(url: str, deadline: float) -> tuple[int | None, str | None, UrlCheck | None]:
    """One GET without following redirects: (status, Location, refusal)."""
    origin, parts = _origin(url)
    if origin is None:
        return None, None, _refuse("bad_url", _("網址格式不正確（主機或連接埠）。"))
    scheme, host, port = origin
    if not host_allowed(host):
        return (
            None,
            None,
            _refuse(
                "host_not_allowed",
                _("主機 %(host)s 不在允許清單（CLAIM_ALLOWED_HOSTS）。") % {"host": host},
            ),
        )
    address, refusal = _resolve(host, port)
    if refusal:
        return None, None, refusal
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None, None, _timed_out()
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, address=address, timeout=remaining)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # A socket timeout bounds each read, not the whole answer: at the
    # deadline the watchdog shuts the socket, whatever is being read.
    watchdog = threading.Timer(remaining, _shut, args=(connection,))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request(
            "GET", path, headers={"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
        )
        response = connection.getresponse()
        return response.status, response.getheader("Location"), None
    except TimeoutError:
        return None, None, _timed_out()
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= deadline:
            return None, None, _timed_out()
        if isinstance(exc, ssl.SSLError):
            return None, None, _refuse("tls_failed", _("TLS 驗證失敗：%(error)s") % {"error": exc})
        return (
            None,
            None,
            _refuse(
                "connection_failed",
                _("連線失敗：%(error)s") % {"error": f"{exc.__class__.__name__}: {exc}"},
            ),
        )
    finally:
        watchdog.cancel()
        connection.close()


def _shut(connection) -> None:
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def check_url(url: str, *, kind: str) -> UrlCheck:
    """Does `url` answer 200 from an allowed, public host right now?"""
    origin, parts = _origin(url)
    if origin is None:
        return _refuse("bad_url", _("網址格式不正確（主機或連接埠）。"))
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return _refuse("bad_url", _("只接受 http(s) 網址。"))
    if parts.username or parts.password:
        return _refuse("credentials_in_url", _("網址不可包含帳號密碼。"))
    if kind == ArtifactClaim.Kind.GITHUB_PR and not GITHUB_PR_PATH.match(parts.path):
        return _refuse(
            "not_a_pull_request", _("GitHub PR 網址必須是 /<owner>/<repo>/pull/<編號>。")
        )
    deadline = time.monotonic() + settings.CLAIM_TIMEOUT_SECONDS
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        status, location, refusal = _get_once(current, deadline)
        if refusal:
            return refusal
        if status in REDIRECT_STATUSES and location:
            try:
                target = urljoin(current, location)
            except ValueError:
                target = ""
            target_origin, _parts = _origin(target)
            if target_origin is None or target_origin[0] not in ("http", "https"):
                return _refuse("bad_redirect", _("轉址到非 http(s) 網址。"), status)
            if target_origin != origin:
                # Another host, another port of the same host, or https → http.
                return _refuse(
                    "redirect_other_host",
                    _("轉址到其他位置 %(origin)s，不跟隨。")
                    % {"origin": f"{target_origin[0]}://{target_origin[1]}:{target_origin[2]}"},
                    status,
                )
            current = target
            continue
        if status == 200:
            return UrlCheck(True, "ok", _("HTTP 200"), status)
        return _refuse("http_status", _("HTTP %(status)s，不是 200。") % {"status": status}, status)
    return _refuse("too_many_redirects", _("轉址超過 %(n)d 次。") % {"n": MAX_REDIRECTS})


def record_claim(
    *, project: Project, kind: str, url: str, claimed_by
) -> tuple[ArtifactClaim, UrlCheck]:
    """Check `url` now and keep the claim, verified or refused with why.
    The network check runs before (outside) the transaction."""
    if kind not in ArtifactClaim.Kind.values:
        raise InvalidInput(
            "invalid_kind",
            _("類型必須是 %(kinds)s。") % {"kinds": ", ".join(ArtifactClaim.Kind.values)},
        )
    url = (url or "").strip()
    if not url:
        raise InvalidInput("invalid_url", _("請提供網址。"))
    if len(url) > 1000:
        raise InvalidInput("invalid_url", _("網址太長（上限 1000 字元）。"))
    actor = profile_for(claimed_by)
    check = check_url(url, kind=kind)
    checked_at = timezone.now()
    with transaction.atomic():
        claim = ArtifactClaim.objects.create(
            project=project,
            kind=kind,
            url=url,
            status=ArtifactClaim.Status.VERIFIED
            if check.verified
            else ArtifactClaim.Status.REFUSED,
            http_status=check.http_status,
            reason=check.reason,
            checked_at=checked_at,
            claimed_by=actor,
        )
        label = ArtifactClaim.Kind(kind).label
        record_audit(
            verb=AuditEvent.Verb.CLAIM_VERIFIED
            if check.verified
            else AuditEvent.Verb.CLAIM_REFUSED,
            actor=actor,
            project=project,
            message=(
                _("%(actor)s 登記的 %(kind)s 已驗證（HTTP 200）：%(url)s")
                if check.verified
                else _("%(actor)s 登記的 %(kind)s 未通過驗證，不算完成：%(url)s（%(reason)s）")
            )
            % {"actor": actor, "kind": label, "url": url, "reason": check.reason},
            claim_id=str(claim.pk),
            kind=kind,
            url=url,
            code=check.code,
            http_status=check.http_status,
        )
    return claim, check


def record_previous_pack(*, project: Project, ref: str, recorded_by) -> Project:
    """Louis records that an earlier reconciliation pack (the seed's 對帳工具箱)
    exists; from then on PLS is never sent to build another one."""
    ref = (ref or "").strip()
    if not ref:
        raise InvalidInput("invalid_previous_pack", _("請填上一輪成果的連結或說明。"))
    if len(ref) > 500:
        raise InvalidInput("invalid_previous_pack", _("上一輪成果太長（上限 500 字元）。"))
    actor = profile_for(recorded_by)
    now = timezone.now()
    with transaction.atomic():
        Project.objects.filter(pk=project.pk).update(
            previous_pack_ref=ref, previous_pack_recorded_at=now
        )
        record_audit(
            verb=AuditEvent.Verb.PROJECT_CONTEXT,
            actor=actor,
            project=project,
            message=_("%(actor)s 登記上一輪成果：%(ref)s") % {"actor": actor, "ref": ref},
            previous_pack_ref=ref,
        )
    project.refresh_from_db()
    return project
