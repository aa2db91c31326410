"""Orphan settlement lines stored before claims existed count for the order
that came after them now, not only after the project's next import: for
every project with a settlement file, its claims are derived once from the
whole book, then every order's settlement result and the project's
settlement summary are rebuilt, as a settlement import does.

It runs the app's own steps (services.settlement.claims.claim_orphans over
the whole book, results.rebuild_order_settlements, summary.refresh_summary)
so the claiming rule has one definition: the trimmed, case-folded
payment_ref; the first order (earliest created, then order_id) carrying it;
a live manual match wins. Those steps read and write the settlement tables in their current
shape, which is the one this migration leaves. A later migration that
reshapes them must keep this step working or make it a no-op: a database
past this migration has its claims, and every import rewrites them.

The streams' settled figures are marked behind, as after an import (the
every-minute sweep rewrites them); the book's version and Louis's
notifications are left to the next import or decision."""

from django.db import migrations, transaction


def claim_earlier_orphans(apps, schema_editor):
    from reconciliation.models import Project
    from reconciliation.services import book, live
    from reconciliation.services.settlement import claims, results, summary

    SettlementImport = apps.get_model("reconciliation", "SettlementImport")
    project_ids = (
        SettlementImport.objects.order_by("project_id")
        .values_list("project_id", flat=True)
        .distinct()
    )
    for project_id in project_ids:
        project = Project.objects.only("id").get(pk=project_id)
        with transaction.atomic():
            book.lock(project)
            claims.claim_orphans(project=project)
            results.rebuild_order_settlements(project=project)
            summary.refresh_summary(project=project)
            live.mark_behind(project)


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0017_settlement_claims_and_acceptances"),
    ]

    operations = [
        migrations.RunPython(claim_earlier_orphans, migrations.RunPython.noop),
    ]
