from reconciliation.models import AuditEvent


def record_audit(
    *, verb: AuditEvent.Verb, actor=None, data_request=None, project=None, message="", **data
) -> AuditEvent:
    """Append one event to the decision trail (call inside the transaction of
    the change it records)."""
    if project is None and data_request is not None:
        project = data_request.project_id and data_request.project
    return AuditEvent.objects.create(
        verb=verb,
        actor=actor,
        data_request=data_request,
        project=project,
        message=message,
        data=data,
    )
