from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = _("Kolable 資料缺口")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from reconciliation import signals  # noqa: F401 - connects the receivers
