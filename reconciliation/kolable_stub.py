"""A local stand-in for the Kolable orders API (the `kolable_api_stub`
command and the sync tests): generated, deterministic orders whose statuses
change over time, served with the real contract.

    GET /v1/orders?updated_since=<ISO 8601>&limit=<n>[&cursor=<token>]
    Authorization: Bearer <token>
    → {"data": [...], "next_cursor": "<token>" | null}, ascending by updated_at

The same `seed` and `orders` give the same orders. A *change* moves some
orders one step (pending → paid, paid → refunded) and stamps them with an
updated_at after every earlier one; changes happen every `change_every`
seconds, or when asked (`POST /_stub/advance?changes=K`). Faults on demand:
a share of requests answered 429 (with Retry-After) or 503, or every request
401, or the first K orders with a negative amount. `POST /_stub/config`
changes them while running; `GET /_stub/stats`
counts what was asked.

Everything is numpy arrays sorted by (updated_at, index); a page is a binary
search and a slice, so a million orders serve as fast as a thousand.
"""

import base64
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np

START = datetime(2026, 5, 12, tzinfo=UTC)
SPREAD_SECONDS = 10 * 86400
KEY_SCALE = 10_000_000  # sort key: updated_at seconds × scale + index
PROGRAMS = np.array(["TRAIN-28000", "LIVE-1990", "BOOK-680"], dtype=object)
AMOUNTS = np.array([28000.00, 1990.00, 680.50])
STATUSES = np.array(["pending", "paid", "refunded"], dtype=object)
REFUNDED = 2
MAX_LIMIT = 5000
ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass
class Faults:
    fail_429: float = 0.0
    fail_5xx: float = 0.0
    fail_auth: bool = False
    retry_after: float = 1.0
    page_delay: float = 0.0


class StubOrders:
    def __init__(self, orders: int, seed: int = 1):
        if not 0 < orders < KEY_SCALE:
            raise ValueError(f"orders must be between 1 and {KEY_SCALE - 1}")
        self.n = orders
        self.seed = seed
        rng = np.random.default_rng(seed)
        index = np.arange(orders, dtype=np.int64)
        self.order_id = np.char.add(f"KA{seed % 1000:03d}-", np.char.zfill(index.astype(str), 7))
        start = int(START.timestamp())
        self.created = start + (index * SPREAD_SECONDS) // orders
        self.updated = self.created.copy()
        self.status = rng.choice(3, size=orders, p=[0.3, 0.65, 0.05]).astype(np.int8)
        self.program = rng.choice(3, size=orders, p=[0.6, 0.3, 0.1]).astype(np.int8)
        customers = rng.integers(1, max(orders // 2, 2), size=orders, dtype=np.int64)
        hexes = np.char.zfill(np.char.mod("%x", customers * 2654435761 % (1 << 62)), 16)
        self.customer_key = np.char.multiply(hexes, 4)
        self.discount = np.where(rng.random(orders) < 0.2, "LIVE10", "")
        self.source_event = np.char.add(
            "live-05", ((self.created - start) // 86400 + 12).astype(str)
        )
        self.generation = 0
        # The first `bad_orders` orders are served with a negative amount
        # (the validator's row errors, end to end).
        self.bad_orders = 0
        self.lock = threading.Lock()
        self._sort()
        # Each order's JSON, encoded once (and again when it changes): a page
        # is then a join, so the stub never slows the sync it serves.
        self.lines = np.empty(orders, dtype=object)
        for first in range(0, orders, 100_000):
            self._encode(np.arange(first, min(first + 100_000, orders)))

    def _sort(self):
        keys = self.updated * KEY_SCALE + np.arange(self.n, dtype=np.int64)
        self.order = np.argsort(keys, kind="stable")
        self.sorted_keys = keys[self.order]

    def advance(self, changes: int) -> list[str]:
        """Move `changes` orders one step; returns their order_ids."""
        with self.lock:
            self.generation += 1
            rng = np.random.default_rng(self.seed * 1_000_003 + self.generation)
            movable = np.flatnonzero(self.status != REFUNDED)
            picked = rng.choice(movable, size=min(changes, len(movable)), replace=False)
            picked.sort()
            self.status[picked] += 1
            clock = int(self.updated.max())
            self.updated[picked] = clock + 1 + np.arange(len(picked), dtype=np.int64)
            self._sort()
            self._encode(picked)
            return self.order_id[picked].tolist()

    def _encode(self, chosen: np.ndarray) -> None:
        self.lines[chosen] = [ENCODE(record) for record in self._records(chosen)]

    def _chosen(self, *, since: float, cursor: int | None, limit: int):
        lowest = int(np.ceil(since)) * KEY_SCALE
        if cursor is not None:
            lowest = max(lowest, cursor + 1)
        first = int(np.searchsorted(self.sorted_keys, lowest, side="left"))
        chosen = self.order[first : first + limit]
        more = first + limit < self.n
        next_key = int(self.sorted_keys[first + limit - 1]) if more and len(chosen) else None
        return chosen, next_key

    def page(self, *, since: float, cursor: int | None, limit: int):
        """(records, the next page's key or None)."""
        with self.lock:
            chosen, next_key = self._chosen(since=since, cursor=cursor, limit=limit)
            return self._records(chosen), next_key

    def page_json(self, *, since: float, cursor: int | None, limit: int):
        """The page's `data` array as JSON text, its length and the next key."""
        with self.lock:
            chosen, next_key = self._chosen(since=since, cursor=cursor, limit=limit)
            if self.bad_orders:
                return ENCODE(self._records(chosen)), len(chosen), next_key
            return "[" + ",".join(self.lines[chosen]) + "]", len(chosen), next_key

    def _records(self, chosen: np.ndarray) -> list[dict]:
        created = _iso(self.created[chosen])
        updated = _iso(self.updated[chosen])
        status = self.status[chosen]
        program = self.program[chosen]
        ids = self.order_id[chosen]
        refs = np.char.add("PAY-", ids).tolist()
        keys = self.customer_key[chosen].tolist()
        discounts = self.discount[chosen].tolist()
        events = self.source_event[chosen].tolist()
        programs = PROGRAMS[program].tolist()
        amounts = np.where(chosen < self.bad_orders, -1.0, AMOUNTS[program]).tolist()
        statuses = STATUSES[status].tolist()
        ids = ids.tolist()
        return [
            {
                "order_id": ids[i],
                "created_at": created[i],
                "updated_at": updated[i],
                "customer_key": keys[i],
                "program_id": programs[i],
                "amount": amounts[i],
                "payment_status": statuses[i],
                "payment_ref": refs[i],
                "discount_code": discounts[i],
                "source_event": events[i],
                "owner_note": "",
            }
            for i in range(len(ids))
        ]

    def state_of(self, order_id: str) -> str:
        position = int(np.flatnonzero(self.order_id == order_id)[0])
        return STATUSES[self.status[position]]


def _iso(seconds: np.ndarray) -> list[str]:
    return np.char.add(
        np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s"), "Z"
    ).tolist()


def _encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(str(key).encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> int:
    padded = token + "=" * (-len(token) % 4)
    return int(base64.urlsafe_b64decode(padded.encode()).decode())


def _parse_since(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class KolableApiStub:
    """The server: `start()` in a thread, or `serve_forever()` in the command."""

    def __init__(
        self,
        *,
        orders: int,
        seed: int = 1,
        port: int = 0,
        host: str = "127.0.0.1",
        token: str = "stub-token",  # noqa: S107 - the stub's own demo token
        faults: Faults | None = None,
        change_every: float = 0.0,
        changes: int = 0,
    ):
        self.data = StubOrders(orders, seed)
        self.token = token
        self.faults = faults or Faults()
        self.change_every = change_every
        self.changes = changes
        self.stats = {"requests": 0, "pages": 0, "records": 0, "429": 0, "5xx": 0, "401": 0}
        self._counter = 0
        self._last_change = time.monotonic()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._thread = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "KolableApiStub":
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def _fault(self) -> int | None:
        """The status this request fails with, if any (deterministic: a rate
        R fails requests n where ⌊(n+1)R⌋ > ⌊nR⌋, so 0.5 fails every second)."""
        with self._lock:
            n = self._counter
            self._counter += 1
            self.stats["requests"] += 1
            if self.change_every and self.changes:
                if time.monotonic() - self._last_change >= self.change_every:
                    self._last_change = time.monotonic()
                    self.data.advance(self.changes)
            for status, rate in ((429, self.faults.fail_429), (503, self.faults.fail_5xx)):
                if rate and int((n + 1) * rate) > int(n * rate):
                    self.stats["429" if status == 429 else "5xx"] += 1
                    return status
        return None

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One answer is headers then body: without this, Nagle and delayed
            # ACKs hold every page back ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status, document, headers=None):
                body = (document if isinstance(document, str) else ENCODE(document)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                if stub.faults.fail_auth or (
                    self.headers.get("Authorization") != f"Bearer {stub.token}"
                ):
                    stub.stats["401"] += 1
                    self._send(401, {"error": "unauthorized"})
                    return False
                return True

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/_stub/stats":
                    return self._send(200, {**stub.stats, "generation": stub.data.generation})
                if parts.path != "/v1/orders":
                    return self._send(404, {"error": "not_found"})
                if not self._authorised():
                    return None
                fault = stub._fault()
                if fault == 429:
                    return self._send(
                        429,
                        {"error": "rate_limited"},
                        {"Retry-After": f"{stub.faults.retry_after:g}"},
                    )
                if fault:
                    return self._send(fault, {"error": "unavailable"})
                try:
                    since = _parse_since(query["updated_since"])
                    limit = int(query.get("limit", 500))
                    cursor = _decode_cursor(query["cursor"]) if query.get("cursor") else None
                except (KeyError, ValueError):
                    return self._send(400, {"error": "bad_request"})
                if not 1 <= limit <= MAX_LIMIT:
                    return self._send(400, {"error": "bad_limit"})
                if stub.faults.page_delay:
                    time.sleep(stub.faults.page_delay)
                data, count, next_key = stub.data.page_json(since=since, cursor=cursor, limit=limit)
                stub.stats["pages"] += 1
                stub.stats["records"] += count
                next_cursor = ENCODE(_encode_cursor(next_key) if next_key is not None else None)
                self._send(200, '{"data":' + data + ',"next_cursor":' + next_cursor + "}")
                return None

            def do_POST(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not self._authorised_control():
                    return None
                if parts.path == "/_stub/advance":
                    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                    changed = stub.data.advance(int(query.get("changes", 1)))
                    return self._send(200, {"changed": changed, "generation": stub.data.generation})
                if parts.path == "/_stub/config":
                    settings = json.loads(body or b"{}")
                    for name in ("fail_429", "fail_5xx", "retry_after", "page_delay"):
                        if name in settings:
                            setattr(stub.faults, name, float(settings[name]))
                    if "bad_orders" in settings:
                        stub.data.bad_orders = int(settings["bad_orders"])
                    if "fail_auth" in settings:
                        stub.faults.fail_auth = bool(settings["fail_auth"])
                    return self._send(200, {"ok": True})
                return self._send(404, {"error": "not_found"})

            def _authorised_control(self) -> bool:
                # Control calls carry the real token even while 401s are injected.
                if self.headers.get("Authorization") != f"Bearer {stub.token}":
                    self._send(401, {"error": "unauthorized"})
                    return False
                return True

        return Handler
