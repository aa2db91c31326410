"""One answer to "may this user do X", for pages and the API alike.

Roles are Django groups (louis, wade, huber, pls) holding model permissions
that migration 0003_roles grants; a user may hold several roles, and a
superuser may do everything."""

from enum import StrEnum


class Role(StrEnum):
    LOUIS = "louis"
    WADE = "wade"
    HUBER = "huber"
    PLS = "pls"


class Action(StrEnum):
    VIEW_DASHBOARD = "view_dashboard"
    CREATE_REQUEST = "add_datarequest"
    CLOSE_REQUEST = "close_datarequest"
    UPLOAD_EXPORT = "upload_export"
    RUN_IMPORT = "run_import"
    VIEW_EVIDENCE = "view_evidence"
    TAG_EVIDENCE = "tag_evidence"
    DECIDE_REVENUE = "decide_revenue"
    DISPATCH_JOBS = "dispatch_jobs"
    RECORD_CLAIM = "record_claim"
    RECORD_PROJECT_CONTEXT = "record_project_context"
    CONFIGURE_SOURCE = "configure_source"
    SYNC_SOURCE = "sync_source"


ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.LOUIS: frozenset(
        {
            Action.VIEW_DASHBOARD,
            Action.CREATE_REQUEST,
            Action.CLOSE_REQUEST,
            Action.RUN_IMPORT,
            Action.VIEW_EVIDENCE,
            Action.DECIDE_REVENUE,
            Action.RECORD_CLAIM,
            Action.RECORD_PROJECT_CONTEXT,
            Action.CONFIGURE_SOURCE,
            Action.SYNC_SOURCE,
        }
    ),
    Role.WADE: frozenset({Action.VIEW_DASHBOARD, Action.UPLOAD_EXPORT, Action.RUN_IMPORT}),
    Role.HUBER: frozenset({Action.VIEW_DASHBOARD, Action.VIEW_EVIDENCE, Action.TAG_EVIDENCE}),
    Role.PLS: frozenset(
        {
            Action.VIEW_DASHBOARD,
            Action.CREATE_REQUEST,
            Action.UPLOAD_EXPORT,
            Action.RUN_IMPORT,
            Action.VIEW_EVIDENCE,
            Action.TAG_EVIDENCE,
            Action.DISPATCH_JOBS,
            Action.RECORD_CLAIM,
            Action.SYNC_SOURCE,
        }
    ),
}


def can(user, action: Action) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.has_perm(f"reconciliation.{action.value}")


def has_role(user, role: Role) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return user.groups.filter(name=role.value).exists()


def ensure_role_groups() -> None:
    """Create the role groups with their permissions (idempotent). Migration
    0003 does this on migrate; seed_demo calls it again so a flushed database
    (test teardown, `manage.py flush`) gets its roles back."""
    from django.contrib.auth.models import Group, Permission

    for role, actions in ROLE_ACTIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        perms = Permission.objects.filter(
            content_type__app_label="reconciliation", codename__in=[a.value for a in actions]
        )
        group.permissions.set(perms)
