"""Settings for the `qcluster` subprocess that tests start: the project's
settings with a cluster name of the test's own, so on a shared Redis the
test's worker and queue never meet another run's (django-q2 keys its Redis
queue by the cluster name)."""

import os

from kolable.settings import *  # noqa: F403
from kolable.settings import Q_CLUSTER as _BASE_Q_CLUSTER

Q_CLUSTER = {
    **_BASE_Q_CLUSTER,
    "name": os.environ.get("QCLUSTER_TEST_NAME", _BASE_Q_CLUSTER["name"]),
}
