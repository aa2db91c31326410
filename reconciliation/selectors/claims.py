from reconciliation.models import ArtifactClaim, Project


def verified_claims(project: Project):
    """Only verified claims are ever shown as done (seed test E)."""
    return ArtifactClaim.objects.filter(project=project, status=ArtifactClaim.Status.VERIFIED).order_by(
        "-checked_at"
    )
