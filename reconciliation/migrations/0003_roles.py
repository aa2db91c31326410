"""The role groups and their permissions (permissions.ROLE_ACTIONS)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_ACTIONS = {
    "louis": [
        "view_dashboard",
        "add_datarequest",
        "close_datarequest",
        "run_import",
        "view_evidence",
        "decide_revenue",
        "record_claim",
        "record_project_context",
    ],
    "wade": ["view_dashboard", "upload_export", "run_import"],
    "huber": ["view_dashboard", "view_evidence", "tag_evidence"],
    "pls": [
        "view_dashboard",
        "add_datarequest",
        "upload_export",
        "run_import",
        "view_evidence",
        "tag_evidence",
        "dispatch_jobs",
        "record_claim",
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally made after migrate; make them now.
    app_config = apps.get_app_config("reconciliation")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_ACTIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = Permission.objects.filter(
            content_type__app_label="reconciliation", codename__in=codenames
        )
        missing = set(codenames) - set(perms.values_list("codename", flat=True))
        if missing:
            raise RuntimeError(f"permissions missing for role {role}: {sorted(missing)}")
        group.permissions.set(perms)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_ACTIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0002_append_only_triggers"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
