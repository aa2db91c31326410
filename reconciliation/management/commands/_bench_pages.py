"""A page's median for the benches: what it costs to compute (every reading
computed, `memo.fresh`), or — `reused` — read again while the database holds
the same state (selectors/memo)."""

import contextlib
import statistics
import time

from reconciliation.selectors import memo

WARM_UP = 3  # uncounted: templates, connections, prepared statements


def median_ms(client, url: str, runs: int, *, params=None, reused: bool = False) -> float:
    for _ in range(WARM_UP):
        assert client.get(url, params).status_code == 200, url  # noqa: S101 - a broken page is no figure
    times = []
    with contextlib.nullcontext() if reused else memo.fresh():
        for _ in range(max(runs, 1)):
            started = time.perf_counter()
            response = client.get(url, params)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, url  # noqa: S101
    return round(statistics.median(times), 1)
