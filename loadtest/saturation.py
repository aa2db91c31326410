"""Throughput at saturation, measured with wrk (a C load generator from
Debian) so the generator does not eat the cores it measures.

Each page is driven on its own for a few seconds by `wrk --latency` with a
signed-in session cookie (or the PLS token for the API), at 8 connections;
the login page, which does almost nothing but render, is Django's own floor
on this machine and is printed first for comparison.
"""

import re
import shutil
import subprocess

PAGES = (
    # (label, path, who): who signs in (None: anonymous, "token": the PLS API token)
    ("login (Django's floor)", "/accounts/login/", None),
    ("board", "/", "louis"),
    ("scorecard", "/scorecard/", "louis"),
    ("/latest API", "/api/kolable/reconciliation/latest", "token"),
    ("evidence queue", "/evidence/", "huber"),
)
CONNECTIONS = 8
THREADS = 2
WARM_UP_SECONDS = 2

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def available() -> bool:
    return shutil.which("wrk") is not None


def measure(base: str, cookies: dict, token: str, seconds: int, log) -> dict:
    """{label: {rps, p50_ms, p99_ms, errors}} for every page; logs a table."""
    results = {}
    for label, path, who in PAGES:
        headers = []
        if who == "token":
            headers = ["-H", f"Authorization: Token {token}"]
        elif who is not None:
            headers = ["-H", f"Cookie: {cookies[who]}"]
        # A short uncounted run first: each worker's first requests for a page
        # (its database connection, templates, prepared statements) are the
        # start-up, not the page's steady cost.
        _wrk(base + path, headers, WARM_UP_SECONDS)
        results[label] = parse(_wrk(base + path, headers, seconds))
    floor = results[PAGES[0][0]]["rps"] or 1
    log(
        f"saturation (wrk, {CONNECTIONS} connections, {seconds} s per page "
        f"after {WARM_UP_SECONDS} s uncounted):"
    )
    for label, figure in results.items():
        log(
            f"  {label:24} {figure['rps']:8.0f} req/s ({figure['rps'] / floor:4.2f}× the floor)  "
            f"p50 {figure['p50_ms']:7.1f} ms  p99 {figure['p99_ms']:7.1f} ms "
            f"(p99/p50 {figure['p99_ms'] / max(figure['p50_ms'], 0.001):.1f})  "
            f"errors {figure['errors']}"
        )
    return results


def _wrk(url: str, headers: list[str], seconds: int) -> str:
    completed = subprocess.run(  # noqa: S603 - wrk on loopback, fixed arguments
        [
            "wrk",
            "--latency",
            "-t",
            str(THREADS),
            "-c",
            str(CONNECTIONS),
            "-d",
            f"{seconds}s",
            *headers,
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )
    return completed.stdout


def parse(output: str) -> dict:
    """requests/s, p50/p99 and errors (non-2xx/3xx plus socket errors) from wrk's output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": _percentile(output, "50%"),
        "p99_ms": _percentile(output, "99%"),
        "errors": errors if rps else -1,
    }


def _percentile(output: str, label: str) -> float:
    found = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if not found:
        return 0.0
    return float(found.group(1)) * _UNITS[found.group(2)]
