from reconciliation.models import Profile


def profile_for(user) -> Profile:
    """The Profile of a signed-in user, made on first use."""
    profile = getattr(user, "profile", None)
    if profile is not None:
        return profile
    profile, _ = Profile.objects.get_or_create(
        user=user, defaults={"display_name": user.get_full_name() or user.get_username()}
    )
    return profile
