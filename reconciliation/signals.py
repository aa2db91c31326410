from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from reconciliation.models import AuditEvent
from reconciliation.services.audit import record_audit


@receiver(user_login_failed, dispatch_uid="kolable_audit_login_failed")
def audit_failed_login(sender, credentials, request=None, **kwargs):
    """Every failed sign-in leaves a trace in the decision trail (the password
    never: Django passes it already masked, and only the username is kept)."""
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    username = str(credentials.get("username", ""))[:150]
    record_audit(
        verb=AuditEvent.Verb.LOGIN_FAILED,
        message=f"登入失敗：{username}",
        username=username,
        address=address,
    )
