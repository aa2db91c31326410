"""django-q2 entry points. Each only calls a service; the services hold the
rules and are tested directly."""
