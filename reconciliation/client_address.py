"""The client's address as the sign-in throttle sees it.

Behind PROXY_COUNT proxies (a load balancer is 1), each proxy appends the
address it received the request from to X-Forwarded-For. The rightmost
PROXY_COUNT entries were therefore written by our own proxies, and the entry
at -PROXY_COUNT is the client the outermost proxy saw; anything to its left
came from the client and may be forged. With PROXY_COUNT=0 only REMOTE_ADDR
counts (a forwarded header from a direct client is ignored).
"""

import ipaddress

from django.conf import settings


def client_address(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = int(getattr(settings, "PROXY_COUNT", 0))
    if proxies <= 0:
        return remote
    forwarded = [
        part.strip()
        for part in (request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",")
        if part.strip()
    ]
    if len(forwarded) < proxies:
        return remote
    candidate = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
