"""PLS dispatch: decide the next job from the recorded state and
log the decision. The decision itself is `selectors.dispatch.next_job`, the
one copy of the table; this module only records what it answered."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.models import AuditEvent, DispatchDecision, Project
from reconciliation.selectors.dispatch import next_job
from reconciliation.services.audit import record_audit
from reconciliation.services.profiles import profile_for


def dispatch_next_job(
    *, project: Project, requested_by, now: datetime | None = None
) -> DispatchDecision:
    """Record a DispatchDecision (with the rule and evidence that produced
    it) and its audit event, in one transaction."""
    now = now or timezone.now()
    actor = profile_for(requested_by) if requested_by is not None else None
    job = next_job(project, now=now)
    evidence = {
        **job.evidence,
        "rule": job.rule,
        "data_request_id": str(job.data_request.pk) if job.data_request else None,
        "decided_at": timezone.localtime(now).isoformat(),
    }
    with transaction.atomic():
        decision = DispatchDecision.objects.create(
            project=project,
            job_type=job.job_type,
            reason=job.reason,
            evidence=evidence,
            requested_by=actor,
        )
        record_audit(
            verb=AuditEvent.Verb.DISPATCHED,
            actor=actor,
            project=project,
            data_request=job.data_request,
            message=_("PLS 派工：%(job)s — %(reason)s")
            % {"job": job.job_type, "reason": job.reason},
            dispatch_id=str(decision.pk),
            job_type=job.job_type,
            rule=job.rule,
        )
    return decision
