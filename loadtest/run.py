"""Load and fault scenarios against the production shape, on loopback only.

`make loadtest` runs this. It starts its own stack — the same processes as
`make serve`: gunicorn ($WEB_CONCURRENCY workers) and $QCLUSTER_PROCESSES
django-q2 clusters — against DATABASE_URL (PostgreSQL) and REDIS_URL, so it
can kill and restart them. Every loop is bounded in count and time and the
script stops by itself. Figures are printed; they are not assertions about
speed, but every scenario checks correctness (no error, no lost upload, no
duplicate import) and exits non-zero when that fails.

Scenarios:
  read     N signed-in people read the board, the scorecard and the evidence queue for S
           seconds, each pausing a few seconds between pages (--think) as a person does
  saturation  each page driven alone by wrk (saturation.py): requests/s at saturation, p50/p99,
           beside the login page (Django's own floor here)
  uploads  10 concurrent uploads of the 28,000-row XLSX to 10 requests, then 10 to one request
  kill     SIGKILL the workers mid-import, restart them: the import ends once, complete
  postgres restart PostgreSQL while the app runs: /healthz 503 meanwhile, then 200 without a restart
  redis    stop Redis: pages still answer; jobs queued meanwhile run once Redis is back
"""

import argparse
import http.cookiejar
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import saturation

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
DEMO_PASSWORD = os.environ.setdefault("DEMO_PASSWORD", "loadtest-demo-pass")
SHORT = 30  # seconds: bound on any single wait


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def manage(*args, env=None, check=True):
    return subprocess.run(
        [PY, "manage.py", *args],
        cwd=ROOT,
        env=env or os.environ,
        check=check,
        capture_output=True,
        text=True,
    )


class Stack:
    """gunicorn + qcluster processes, each in its own process group."""

    def __init__(self, port, web_workers, clusters, env):
        self.port, self.web_workers, self.clusters, self.env = port, web_workers, clusters, env
        self.web = None
        self.workers = []
        self.base = f"http://127.0.0.1:{port}"

    def start_web(self):
        self.web = subprocess.Popen(
            [
                GUNICORN,
                "kolable.wsgi",
                "--workers",
                str(self.web_workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "900",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
        )

    def start_workers(self):
        self.workers = [
            subprocess.Popen(
                [PY, "manage.py", "qcluster"],
                cwd=ROOT,
                env=self.env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(self.clusters)
        ]

    def kill_workers(self, sig=signal.SIGKILL):
        for process in self.workers:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
        for process in self.workers:
            try:
                process.wait(timeout=SHORT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # a cluster still finishing a task
                process.wait(timeout=SHORT)
        self.workers = []

    def stop(self):
        self.kill_workers(signal.SIGTERM)
        if self.web:
            os.killpg(self.web.pid, signal.SIGTERM)
            try:
                self.web.wait(timeout=SHORT)
            except subprocess.TimeoutExpired:
                os.killpg(self.web.pid, signal.SIGKILL)

    def wait_ready(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=2)  # noqa: S310 - loopback
                return
            except urllib.error.HTTPError:
                return  # answering, even if a part is unhealthy
            except OSError:
                time.sleep(0.3)
        raise SystemExit("server did not start")


class Session:
    """A signed-in browser-like session (cookies + CSRF)."""

    def __init__(self, base, username):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(base + "/accounts/login/", timeout=SHORT).read()
        csrf = next(c.value for c in self.jar if c.name == "csrftoken")
        body = urllib.parse.urlencode(
            {"username": username, "password": DEMO_PASSWORD, "csrfmiddlewaretoken": csrf}
        )
        request = urllib.request.Request(
            base + "/accounts/login/",
            data=body.encode(),
            headers={"Referer": base + "/accounts/login/"},
        )
        self.opener.open(request, timeout=SHORT).read()
        if not any(c.name == "sessionid" for c in self.jar):
            raise SystemExit(f"could not sign in as {username}")

    def get(self, path):
        started = time.perf_counter()
        try:
            with self.opener.open(self.base + path, timeout=SHORT) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        return status, time.perf_counter() - started


def api(base, token, method, path, payload=None, files=None, timeout=300):
    headers = {"Authorization": f"Token {token}"}
    data = None
    if files:
        boundary = uuid.uuid4().hex
        name, content = files
        data = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif payload is not None:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, body.decode(errors="replace")[:300]


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def scenario_read(stack, users, seconds, think):
    paths = ["/", "/scorecard/", "/evidence/"]
    names = ["louis", "huber", "wade"]
    sessions = [Session(stack.base, names[i % len(names)]) for i in range(users)]
    results = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(index, session):
        local = []
        n = index
        pauses = random.Random(index)  # noqa: S311 - think times, not secrets
        # People do not all arrive in the same millisecond.
        time.sleep(pauses.uniform(0, think))
        while time.monotonic() < deadline and len(local) < 100_000:
            path = paths[n % len(paths)]
            if path == "/evidence/" and session is not None and names[index % 3] == "wade":
                path = "/scorecard/"  # Wade has no evidence queue
            local.append((path, *session.get(path)))
            n += 1
            # A person reads the page before the next one: think/2 .. 3·think/2.
            time.sleep(
                min(pauses.uniform(think / 2, think * 1.5), max(deadline - time.monotonic(), 0))
            )
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=worker, args=(i, s)) for i, s in enumerate(sessions)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + SHORT)
    elapsed = time.monotonic() - started
    errors = [r for r in results if r[1] != 200]
    latencies = [r[2] * 1000 for r in results]
    log(
        f"read: {users} people × {seconds}s, ~{think:g} s between pages: {len(results)} requests, "
        f"{len(results) / elapsed:.1f} req/s, "
        f"median {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
        f"errors {len(errors)}"
    )
    for path in paths:
        subset = [r[2] * 1000 for r in results if r[0] == path]
        if subset:
            log(
                f"  {path:12} n={len(subset):6} median {statistics.median(subset):.1f} ms "
                f"p99 {percentile(subset, 0.99):.1f} ms"
            )
    return not errors


def scenario_saturation(stack, token, seconds):
    if not saturation.available():
        log("saturation: wrk is not installed (make loadtest installs Debian's wrk as root)")
        return False
    cookies = {}
    for name in ("louis", "huber"):
        session = Session(stack.base, name)
        cookies[name] = "; ".join(f"{c.name}={c.value}" for c in session.jar)
    figures = saturation.measure(stack.base, cookies, token, seconds, log)
    return all(figure["errors"] == 0 and figure["rps"] > 0 for figure in figures.values())


def wait_for_import(base, token, request_id, seconds=180):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, body = api(base, token, "GET", f"/api/kolable/data-requests/{request_id}")
        if status == 200 and body["imports"]:
            return body
        time.sleep(1)
    return None


def scenario_uploads(stack, token, xlsx: bytes):
    ok = True
    run = uuid.uuid4().hex[:6]
    request_ids = []
    for i in range(10):
        status, body = api(
            stack.base,
            token,
            "POST",
            "/api/kolable/data-requests",
            {"requested_dataset": f"loadtest {run} #{i}"},
        )
        assert status == 201, body
        request_ids.append(body["id"])

    def upload_to(request_id, out, index):
        started = time.perf_counter()
        out[index] = (
            *api(
                stack.base,
                token,
                "POST",
                f"/api/kolable/data-requests/{request_id}/upload",
                files=("orders-28000.xlsx", xlsx),
            ),
            time.perf_counter() - started,
        )

    status, body = api(
        stack.base,
        token,
        "POST",
        "/api/kolable/data-requests",
        {"requested_dataset": f"loadtest {run} same"},
    )
    same = body["id"]
    request_ids.append(same)
    for label, targets in (("10 requests", request_ids[:10]), ("1 request", [same] * 10)):
        out = [None] * 10
        threads = [
            threading.Thread(target=upload_to, args=(rid, out, i)) for i, rid in enumerate(targets)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        statuses = [o[0] if o else None for o in out]
        times = [o[2] for o in out if o]
        log(
            f"uploads to {label}: statuses {statuses}, median {statistics.median(times):.2f} s, "
            f"max {max(times):.2f} s"
        )
        if any(s not in (200, 201) for s in statuses):
            ok = False
    for request_id in dict.fromkeys(request_ids):
        body = wait_for_import(stack.base, token, request_id)
        if body is None:
            log(f"  request {request_id}: no import after waiting")
            ok = False
            continue
        uploads, imports = body["uploads"], body["imports"]
        if len(uploads) != 1 or len(imports) != 1 or imports[0]["row_count"] != 28000:
            log(
                f"  request {request_id}: {len(uploads)} uploads, {len(imports)} imports "
                f"rows={[i['row_count'] for i in imports]}"
            )
            ok = False
    log(f"uploads: every upload answered, one kept upload and one import per request: {ok}")
    return ok


def seed_orders(stack, token, csv_bytes: bytes):
    """Store the 1,000,000 OrderRows the way production does: upload the
    export through the API and let the worker import it."""
    status, body = api(stack.base, token, "POST", "/api/kolable/data-requests", {})
    request_id = body["id"]
    started = time.perf_counter()
    status, body = api(
        stack.base,
        token,
        "POST",
        f"/api/kolable/data-requests/{request_id}/upload",
        files=("orders-1000000.csv", csv_bytes),
    )
    uploaded = time.perf_counter() - started
    detail = wait_for_import(stack.base, token, request_id, seconds=600)
    rows = detail["imports"][0]["row_count"] if detail else None
    log(
        f"seed: upload answered {status} in {uploaded:.1f} s; imported {rows} rows "
        f"{time.perf_counter() - started:.1f} s after the upload started"
    )
    # 202: above UPLOAD_SYNC_MAX_MB the worker validates, then imports.
    return status in (201, 202) and rows == csv_bytes.count(b"\n") - 1


def scenario_kill(stack, token, csv_bytes: bytes, rows: int):
    status, body = api(
        stack.base,
        token,
        "POST",
        "/api/kolable/data-requests",
        {"requested_dataset": f"loadtest kill {uuid.uuid4().hex[:6]}"},
    )
    request_id = body["id"]
    status, body = api(
        stack.base,
        token,
        "POST",
        f"/api/kolable/data-requests/{request_id}/upload",
        files=("orders-big.csv", csv_bytes),
    )
    assert status in (201, 202), body
    time.sleep(2.0)  # the worker is inside the import transaction now
    log("kill: SIGKILL the workers mid-import")
    stack.kill_workers(signal.SIGKILL)
    _, detail = api(stack.base, token, "GET", f"/api/kolable/data-requests/{request_id}")
    half = detail["imports"]
    log(f"kill: imports visible right after the kill: {len(half)} (0 = nothing half-written)")
    stack.start_workers()
    body = wait_for_import(stack.base, token, request_id, seconds=600)
    ok = body is not None and len(body["imports"]) == 1 and body["imports"][0]["row_count"] == rows
    log(
        f"kill: after restart imports={len(body['imports']) if body else 0}, "
        f"rows={body['imports'][0]['row_count'] if body else None} of {rows}: {ok}"
    )
    return ok and not half


def health(stack):
    try:
        with urllib.request.urlopen(stack.base + "/healthz", timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError as exc:
        return 0, str(exc)


def scenario_postgres(stack):
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    log("postgres: stopping PostgreSQL")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop", "-m", "fast"],
        check=True,
    )
    status_down, body_down = health(stack)
    log(f"postgres: /healthz while down → {status_down} {body_down}")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True
    )
    deadline = time.monotonic() + 60
    status_up = None
    while time.monotonic() < deadline:
        status_up, body_up = health(stack)
        if status_up == 200:
            break
        time.sleep(1)
    log(f"postgres: /healthz after start → {status_up}")
    return status_down == 503 and status_up == 200


def scenario_redis(stack, token):
    log("redis: stopping Redis")
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], check=False, capture_output=True
    )
    session = Session(stack.base, "louis")
    pages = [session.get(p)[0] for p in ("/", "/scorecard/", "/inbox/")]
    status_health, body = health(stack)
    created, created_body = api(
        stack.base,
        token,
        "POST",
        "/api/kolable/data-requests",
        {"requested_dataset": f"loadtest redis {uuid.uuid4().hex[:6]}"},
    )
    log(
        f"redis: pages while down {pages}, /healthz {status_health} {body}, create request {created}"
    )
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status_health, body = health(stack)
        if status_health == 200:
            break
        time.sleep(2)
    # Jobs resume: a heartbeat task ran after Redis came back.
    back_at = time.monotonic()
    resumed = False
    while time.monotonic() < deadline + 60:
        status_health, body = health(stack)
        worker = body.get("checks", {}).get("worker", "") if isinstance(body, dict) else ""
        if worker.startswith("heartbeat") and int(worker.split()[1]) < time.monotonic() - back_at:
            resumed = True
            break
        time.sleep(3)
    log(
        f"redis: /healthz after restart {status_health}, a job ran after the restart: {resumed} ({worker})"
    )
    return all(p == 200 for p in pages) and created == 201 and status_health == 200 and resumed


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOADTEST_PORT", 8077)))
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument(
        "--orders", type=int, default=1_000_000, help="OrderRows stored before the read load"
    )
    parser.add_argument(
        "--think", type=float, default=4.0, help="seconds a person reads a page (read scenario)"
    )
    parser.add_argument(
        "--wrk-seconds", type=int, default=10, help="seconds per page (saturation scenario)"
    )
    parser.add_argument("--scenarios", default="read,saturation,uploads,kill,postgres,redis")
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")

    env = dict(os.environ)
    env.setdefault("DEBUG", "false")
    env.setdefault("SECRET_KEY", "loadtest-" + "k" * 60)
    env.setdefault("SECURE_SSL_REDIRECT", "false")
    env.setdefault("SECURE_HSTS_SECONDS", "0")
    env.setdefault("SECURE_COOKIES", "false")  # plain HTTP on loopback
    env.setdefault("AXES_ENABLED", "false")  # 50 sign-ins from one address
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kolable_loadtest")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/3")
    env.setdefault("DATA_DIR", str(ROOT / "var" / "loadtest"))
    env.setdefault("WEB_CONCURRENCY", "2")
    env.setdefault("QCLUSTER_PROCESSES", "2")
    env.setdefault("QCLUSTER_WORKERS", "1")  # 2 clusters × 1 worker on 2 cores
    env.setdefault("MAX_UPLOAD_MB", "256")  # the 1,000,000-row CSV is 164 MB
    env.setdefault("IMPORT_STALL_MINUTES", "1")
    env["DJANGO_SETTINGS_MODULE"] = "kolable.settings"
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DATA_DIR")})

    database = urllib.parse.urlparse(env["DATABASE_URL"]).path.lstrip("/")
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {database}"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {database}"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "redis-cli",
            "-n",
            urllib.parse.urlparse(env["REDIS_URL"]).path.lstrip("/") or "0",
            "flushdb",
        ],
        check=False,
        capture_output=True,
    )
    log(f"database {database}, broker {env['REDIS_URL']}, data {env['DATA_DIR']}")
    bench = ROOT / "var" / "bench"
    for step in (
        ["migrate", "--noinput", "-v", "0"],
        ["seed_demo"],
        ["setup_schedules"],
        ["collectstatic", "--noinput", "-v", "0"],
        ["make_sample_export", "--out", str(bench)],
    ):
        manage(*step, env=env)
    token = manage("create_api_token", "pls", env=env).stdout.strip().splitlines()[-1]

    stack = Stack(args.port, int(env["WEB_CONCURRENCY"]), int(env["QCLUSTER_PROCESSES"]), env)
    stack.start_web()
    stack.start_workers()
    results = {}
    try:
        stack.wait_ready()
        if "read" in scenarios or "saturation" in scenarios:
            results["seed"] = seed_orders(stack, token, (bench / "orders-1000000.csv").read_bytes())
        if "read" in scenarios:
            results["read"] = scenario_read(stack, args.users, args.seconds, args.think)
        if "saturation" in scenarios:
            results["saturation"] = scenario_saturation(stack, token, args.wrk_seconds)
        if "uploads" in scenarios:
            results["uploads"] = scenario_uploads(
                stack, token, (bench / "orders-28000.xlsx").read_bytes()
            )
        if "kill" in scenarios:
            data = (bench / "orders-1000000.csv").read_bytes()
            results["kill"] = scenario_kill(stack, token, data, data.count(b"\n") - 1)
        if "postgres" in scenarios:
            results["postgres"] = scenario_postgres(stack)
        if "redis" in scenarios:
            results["redis"] = scenario_redis(stack, token)
    finally:
        stack.stop()
    log(f"results: {results}")
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()
