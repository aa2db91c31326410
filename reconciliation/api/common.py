from django.utils.translation import gettext as _
from ninja import Schema

from reconciliation.errors import Forbidden
from reconciliation.permissions import Action, can


class ErrorOut(Schema):
    error: str
    detail: object = None


def require(request, action: Action) -> None:
    """403 unless the caller (token or session) may do `action`."""
    if not can(request.auth, action):
        raise Forbidden("forbidden", _("你的角色不能執行 %(action)s。") % {"action": action.value})
