from ninja import Schema

from reconciliation.errors import Forbidden
from reconciliation.permissions import Action, can


class ErrorOut(Schema):
    error: str
    detail: object = None


def require(request, action: Action) -> None:
    """403 unless the caller (token or session) may do `action`."""
    if not can(request.auth, action):
        raise Forbidden("forbidden", f"你的角色不能執行 {action.value}。")
