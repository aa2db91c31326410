"""Sign-in behind the two locks.

django-axes locks a (username, client address) pair after AXES_FAILURE_LIMIT
failures. An attacker with many addresses could still hammer one account;
this backend adds the per-username lock: once the account has had
USERNAME_FAILURE_LIMIT failures within the cool-off, from whatever
addresses, a sign-in succeeds only when USERNAME_LOCK_SECONDS have passed
since the latest failure. So the account is never locked out for good: its
owner, from an address of their own, gets in after that delay.
"""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Max, Q, Sum
from django.utils import timezone

from reconciliation.selectors.memo import memoised


def username_delay(username: str, *, now=None) -> float:
    """Seconds the account still has to wait (0 when it may sign in)."""
    from axes.models import AccessAttempt

    if not username:
        return 0.0
    now = now or timezone.now()
    recent = AccessAttempt.objects.filter(
        username=username, attempt_time__gte=now - settings.AXES_COOLOFF_TIME
    ).aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
    if (recent["failures"] or 0) < settings.USERNAME_FAILURE_LIMIT:
        return 0.0
    left = settings.USERNAME_LOCK_SECONDS - (now - recent["last"]).total_seconds()
    return max(left, 0.0)


class ThrottledModelBackend(ModelBackend):
    """The model backend, refusing while the account's delay runs."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(self._username_field())
        if username and username_delay(str(username)) > 0:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_all_permissions(self, user_obj, obj=None):
        """The user's own and their groups' permissions in one query (the
        model backend asks twice): every page checks a role."""
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            user_obj._perm_cache = memoised(
                "permissions",
                (user_obj.pk, user_obj.is_superuser),
                lambda: _permissions(user_obj),
            )
        return user_obj._perm_cache

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


def _permissions(user) -> frozenset[str]:
    perms = Permission.objects.all()
    if not user.is_superuser:
        perms = perms.filter(Q(user=user) | Q(group__user=user))
    return frozenset(
        f"{app_label}.{codename}"
        for app_label, codename in perms.values_list(
            "content_type__app_label", "codename"
        ).order_by()
    )
