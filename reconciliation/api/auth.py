import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone
from ninja.security import APIKeyHeader
from ninja.security import SessionAuth as NinjaSessionAuth

from reconciliation.models import ApiToken

TOKEN_PREFIX = "kol_"  # noqa: S105 - a public prefix, not a secret
# How fresh a token's last_used_at is kept: a write per API read (PLS polls
# /latest) would make every read a committed transaction, and two workers
# would queue on the token's row.
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(user) -> str:
    """Create a token for `user` and return the only copy of its key."""
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, key_hash=hash_token(key), prefix=key[:8])
    return key


class TokenAuth(APIKeyHeader):
    """`Authorization: Token <key>` (PLS and scripts)."""

    param_name = "Authorization"

    def authenticate(self, request, key):
        if not key or not key.startswith("Token "):
            return None
        token = (
            ApiToken.objects.select_related("user")
            .filter(
                key_hash=hash_token(key[6:].strip()), revoked_at__isnull=True, user__is_active=True
            )
            .first()
        )
        if token is None:
            return None
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        request.user = token.user
        return token.user


class SessionAuth(NinjaSessionAuth):
    """The signed-in person's session (CSRF checked on writes). Without a
    session there is nothing to check: the caller gets 401, not a CSRF 403."""

    def _get_key(self, request):
        if not request.user.is_authenticated:
            return None
        return super()._get_key(request)

    def authenticate(self, request, key):
        return request.user if request.user.is_authenticated else None
