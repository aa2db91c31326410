"""Reads computed once per state of the database (and per second).

The scorecard and `/latest` read a dozen tables to say what the database
holds; under load most requests ask while it holds exactly what it held a
moment ago. The database names that state itself, so a reused answer is
never one the database no longer holds:

- PostgreSQL: `pg_current_snapshot()` (the transactions a statement sees
  as committed) moves whenever any transaction starts writing or commits.
- SQLite: `PRAGMA data_version` moves when another connection commits, and
  the connection's `total_changes` when it writes itself; both belong to one
  connection, so an answer is reused only on the connection that read it.

Inside a transaction the state would not show the transaction's own writes,
so nothing is reused there (tests run inside one: they always compute), nor
on an in-memory SQLite database, whose connections share one cache. What a
read derives from the clock (a request overdue by N seconds) is kept exact
by the second: an answer is reused within the second it was computed.
"""

import itertools
import threading
from collections import OrderedDict
from contextlib import contextmanager

from django.db import connection
from django.utils import timezone, translation

KEEP = 32  # answers per process: a few pages and people × languages × the last states
_answers: OrderedDict = OrderedDict()
_lock = threading.Lock()
_connections = itertools.count(1)
_fresh = threading.local()


def database_state() -> tuple | None:
    """What the database holds as this connection sees it, or None when that
    cannot be named (inside a transaction, in memory, another database) or
    is not wanted (`fresh`)."""
    if connection.in_atomic_block or getattr(_fresh, "on", False):
        return None
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_current_snapshot()::text")
            return (connection.settings_dict["NAME"], cursor.fetchone()[0])
        if connection.vendor == "sqlite" and not connection.is_in_memory_db():
            cursor.execute("PRAGMA data_version")
            return (
                _sqlite_connection_id(),
                cursor.fetchone()[0],
                connection.connection.total_changes,
            )
    return None


def _sqlite_connection_id() -> int:
    raw = connection.connection
    if getattr(connection, "_memo_raw", None) is not raw:
        connection._memo_raw, connection._memo_id = raw, next(_connections)
    return connection._memo_id


def memoised(name: str, args: tuple, compute, *, clock: bool = True):
    """`compute()`, or its answer from earlier in this second when the
    database holds the same state. `clock=False` for a reading that never
    reads the clock: reused for as long as the state holds. The answer is
    shared: callers only read it."""
    state = database_state()
    if state is None:
        return compute()
    second = int(timezone.now().timestamp()) if clock else None
    key = (name, args, translation.get_language(), state, second)
    with _lock:
        if key in _answers:
            _answers.move_to_end(key)
            return _answers[key]
    answer = compute()
    with _lock:
        _answers[key] = answer
        while len(_answers) > KEEP:
            _answers.popitem(last=False)
    return answer


@contextmanager
def fresh():
    """Every read computed, none reused (what a page costs to compute)."""
    before, _fresh.on = getattr(_fresh, "on", False), True
    try:
        yield
    finally:
        _fresh.on = before
