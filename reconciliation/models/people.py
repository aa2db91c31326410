"""Who works here: projects, people and API tokens."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Project(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("名稱"), max_length=200, unique=True)
    owner_profile = models.ForeignKey(
        "Profile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data_owner_profile = models.ForeignKey(
        "Profile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verifier_profile = models.ForeignKey(
        "Profile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Seed test B: whether an earlier reconciliation pack (the 對帳工具箱)
    # exists decides whether PLS may ever dispatch another project_runner.
    previous_pack_ref = models.CharField(_("上一輪成果"), max_length=500, blank=True)
    previous_pack_recorded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("專案")
        verbose_name_plural = _("專案")

    def __str__(self):
        return self.name


class Profile(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    display_name = models.CharField(_("顯示名稱"), max_length=100, blank=True)
    line_user_id = models.CharField(_("LINE user ID"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("個人檔案")
        verbose_name_plural = _("個人檔案")

    def __str__(self):
        return self.display_name or self.user.get_username()

    @property
    def username(self):
        return self.user.get_username()


class ApiToken(models.Model):
    """A bearer token for the API (PLS). Only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API 權杖")
        verbose_name_plural = _("API 權杖")

    def __str__(self):
        return f"{self.user} {self.prefix}…"
