"""Delivery channels for people-sync Notifications: the in-app inbox, e-mail
through Django's e-mail backend (`EMAIL_URL`), and a webhook channel that posts
JSON — to the LINE Messaging API push endpoint when `LINE_CHANNEL_TOKEN` is set
and the person has a LINE user id, else to `NOTIFY_WEBHOOK_URL`.

A channel either returns (delivered) or raises `DeliveryError`, saying whether
trying again could help. `services/delivery.py` decides about retries; this
module only talks to the outside world, with short timeouts."""

import json
import smtplib
import urllib.error
import urllib.request

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.translation import gettext as _

from reconciliation.models import Notification

# Outside calls must not hold a worker for long: a slow endpoint is retried
# later rather than waited for.
DEFAULT_TIMEOUT_SECONDS = 5.0
LINE_TEXT_LIMIT = 5000  # the Messaging API refuses longer text messages


class DeliveryError(Exception):
    """permanent: the same request will fail again (bad address, 4xx), so the
    message goes dead instead of being retried. retry_after: seconds the
    other side asked us to wait (HTTP 429/503 Retry-After)."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


def timeout_seconds() -> float:
    return float(getattr(settings, "NOTIFY_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def send(notification: Notification) -> None:
    sender = CHANNELS.get(notification.channel)
    if sender is None:
        raise DeliveryError(
            _("未知的管道 %(channel)s") % {"channel": notification.channel}, permanent=True
        )
    sender(notification)


def send_inbox(notification: Notification) -> None:
    """The inbox is the app's own database: the row is the message. Inbox rows
    are written as sent; one that is queued for any reason is delivered by
    being there."""


def send_email(notification: Notification) -> None:
    address = notification.recipient.user.email
    if not address:
        raise DeliveryError(_("收件人沒有電子郵件地址"), permanent=True)
    message = EmailMessage(
        subject=notification.subject,
        body=notification.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        # Lets a mail system drop a retried duplicate.
        headers={"X-Kolable-Notification": str(notification.pk)},
    )
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(
            _("SMTP 拒收這個收件人：%(error)s") % {"error": exc}, permanent=True
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP: {exc.__class__.__name__}: {exc}") from exc


def send_webhook(notification: Notification) -> None:
    line_user_id = notification.recipient.line_user_id
    if settings.LINE_CHANNEL_TOKEN and line_user_id:
        _send_line_push(notification, line_user_id)
    elif settings.NOTIFY_WEBHOOK_URL:
        _send_generic_webhook(notification)
    else:
        raise DeliveryError(
            _("未設定 webhook（NOTIFY_WEBHOOK_URL，或 LINE_CHANNEL_TOKEN 加上收件人的 LINE ID）"),
            permanent=True,
        )


def message_text(notification: Notification) -> str:
    return f"{notification.subject}\n{notification.body}"


def _send_line_push(notification: Notification, line_user_id: str) -> None:
    text = message_text(notification)
    if len(text) > LINE_TEXT_LIMIT:
        text = text[: LINE_TEXT_LIMIT - 1] + "…"
    body = {"to": line_user_id, "messages": [{"type": "text", "text": text}]}
    headers = {
        "Authorization": f"Bearer {settings.LINE_CHANNEL_TOKEN}",
        # LINE delivers a push with a given retry key once; a retry after a
        # timeout that did reach LINE answers 409 instead of a second message.
        "X-Line-Retry-Key": str(notification.pk),
    }
    status = post_json(settings.LINE_API_URL, body, headers=headers, accept={409})
    if status == 409:
        return  # already accepted under this retry key


def _send_generic_webhook(notification: Notification) -> None:
    recipient = notification.recipient
    body = {
        "id": str(notification.pk),
        "kind": notification.kind,
        "recipient": {
            "username": recipient.username,
            "display_name": str(recipient),
            "line_user_id": recipient.line_user_id or None,
        },
        "subject": notification.subject,
        "text": notification.body,
        "data_request_id": str(notification.data_request_id)
        if notification.data_request_id
        else None,
        "payload": notification.payload,
        "created_at": notification.created_at.isoformat(),
    }
    post_json(
        settings.NOTIFY_WEBHOOK_URL,
        body,
        headers={"Idempotency-Key": str(notification.pk)},
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A webhook that redirects is misconfigured; urllib would turn the POST
    # into a GET and lose the message, so the redirect becomes an error.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, body: dict, *, headers: dict, accept=frozenset()) -> int:
    """POST `body` as JSON; return the HTTP status when it is 2xx or in
    `accept`, else raise DeliveryError (permanent for 4xx other than 429)."""
    if not url.lower().startswith(("http://", "https://")):
        raise DeliveryError(_("不是 http(s) 網址：%(url)s") % {"url": url}, permanent=True)
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - URLs come from settings, http(s) only
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", **headers},
    )
    try:
        with _opener.open(request, timeout=timeout_seconds()) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        if exc.code in accept:
            return exc.code
        detail = _snippet(exc)
        retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        if exc.code == 429 or exc.code >= 500:
            raise DeliveryError(f"HTTP {exc.code}{detail}", retry_after=retry_after) from exc
        raise DeliveryError(f"HTTP {exc.code}{detail}", permanent=True) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{reason.__class__.__name__}: {reason}") from exc


def _snippet(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(300).decode("utf-8", "replace").strip()
    except Exception:  # noqa: BLE001 - the body is only a hint for the attempt log
        return ""
    return f": {text}" if text else ""


def _retry_after(value: str | None) -> int | None:
    if value and value.strip().isdigit():
        return min(int(value.strip()), 24 * 3600)
    return None


CHANNELS = {
    Notification.Channel.INBOX: send_inbox,
    Notification.Channel.EMAIL: send_email,
    Notification.Channel.WEBHOOK: send_webhook,
}
