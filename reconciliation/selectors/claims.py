from reconciliation.models import ArtifactClaim, Project


def verified_claims(project: Project):
    """Only verified claims are ever shown as done."""
    return ArtifactClaim.objects.filter(
        project=project, status=ArtifactClaim.Status.VERIFIED
    ).order_by("-checked_at")


def recent_claims(project: Project, *, limit: int = 50):
    """Every claim, verified or refused, newest check first (the PLS page
    shows the refused ones with their reason, never as done)."""
    return (
        ArtifactClaim.objects.filter(project=project)
        .select_related("claimed_by__user")
        .order_by("-checked_at")[:limit]
    )
