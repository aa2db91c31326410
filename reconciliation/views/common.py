from functools import wraps

from django.core.exceptions import PermissionDenied

from reconciliation.permissions import Action, can


def permission_required(action: Action):
    """403 for a signed-in user without the role (sign-in itself is the
    middleware's job)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not can(request.user, action):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
