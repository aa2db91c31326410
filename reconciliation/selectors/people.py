"""How a read loads the people it names: the profile and the user's name,
not the user's password hash, flags and dates — nothing a page shows, and
the widest part of every join that names a person."""

# What a page never reads of a named person's user: a page that did would
# load the field by itself (one more query), never show a wrong value.
UNREAD_USER_FIELDS = (
    "password",
    "last_login",
    "is_superuser",
    "is_staff",
    "is_active",
    "date_joined",
    "first_name",
    "last_name",
)


def with_people(queryset, *profiles: str):
    """`queryset` joined to each profile path with its user's name."""
    return queryset.select_related(*(f"{path}__user" for path in profiles)).defer(
        *(f"{path}__user__{name}" for path in profiles for name in UNREAD_USER_FIELDS)
    )
