# Two commands on a fresh machine with only Python 3.11+ and make:
#   make run    — venv, install, migrate, demo users, web + django-q2 worker on 127.0.0.1:$(PORT)
#   make test   — the whole suite, browser tests included
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

WEB_CONCURRENCY ?= 2
BIND ?= 127.0.0.1:$(PORT)

.PHONY: run test lint bench serve loadtest migrate browser wrk clean messages

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

# The demo's links (SITE_URL) follow PORT unless SITE_URL is set.
SITE_URL ?= http://127.0.0.1:$(PORT)
export SITE_URL

# Stopping: each child runs in its own session (setsid), so Ctrl-C reaches
# only this shell, which sends each child one SIGTERM, gives them
# STOP_SECONDS, then SIGKILLs what is left. (Before, Ctrl-C hit every
# process at once and `kill 0` signalled them again — a segfault at
# interpreter exit and a qcluster master that hung for minutes.)
STOP_SECONDS ?= 8
define STOP_CHILDREN
trap - INT TERM EXIT; \
kill -TERM $$QPID $$WPID 2>/dev/null; \
for i in $$(seq 1 $$(( $(STOP_SECONDS) * 10 ))); do \
  kill -0 $$QPID 2>/dev/null || kill -0 $$WPID 2>/dev/null || break; sleep 0.1; \
done; \
kill -KILL -- -$$QPID -$$WPID 2>/dev/null; wait 2>/dev/null; exit 0
endef

run: migrate
	$(BIN)/python manage.py seed_demo --token
	$(BIN)/python manage.py setup_schedules
	@echo "Serving $(SITE_URL)  (web + django-q2 worker; Ctrl-C stops both)"
	@setsid $(BIN)/python manage.py qcluster & QPID=$$!; \
	  setsid $(BIN)/python manage.py runserver 127.0.0.1:$(PORT) --noreload & WPID=$$!; \
	  trap '$(STOP_CHILDREN)' INT TERM EXIT; \
	  wait

# The production shape: gunicorn + whitenoise and a django-q2 cluster
# ($$QCLUSTER_WORKERS workers) against DATABASE_URL (PostgreSQL) and REDIS_URL.
# `preflight` refuses DEBUG, the default SECRET_KEY and SQLite (unless ALLOW_SQLITE=1).
serve: $(STAMP)
	$(BIN)/python manage.py preflight
	$(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_schedules
	@echo "Serving on http://$(BIND) with $(WEB_CONCURRENCY) gunicorn workers + django-q2 (Ctrl-C stops all)"
	@trap 'kill 0' INT TERM EXIT; \
	  $(BIN)/python manage.py qcluster & \
	  $(BIN)/gunicorn kolable.wsgi --workers $(WEB_CONCURRENCY) --bind $(BIND) \
	    --timeout 900 --graceful-timeout 30 --max-requests 2000 --max-requests-jitter 200 \
	    --access-logfile - & \
	  wait

# Load and fault scenarios (loopback only, bounded, stops by itself): starts
# the production shape on PostgreSQL + Redis itself so it can kill parts of it.
# Needs root for the PostgreSQL/Redis restarts. See loadtest/run.py --help.
loadtest: $(STAMP) wrk
	$(BIN)/python loadtest/run.py $(LOADTEST_ARGS)

# Debian's wrk for the saturation figures (a C load generator: it leaves the
# cores to the app it measures).
wrk:
	@if command -v wrk >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's wrk for make loadtest"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
	  || echo "!!! could not install wrk"; \
	else \
	  echo "!!! wrk missing and cannot be installed here: the saturation scenario will fail"; \
	fi

# Debian's Chromium for the browser tests (never `playwright install`).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium + CJK fonts for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
	  || echo "!!! could not install chromium"; \
	else \
	  echo "!!!!!!!! /usr/bin/chromium missing and cannot be installed here: BROWSER TESTS WILL BE SKIPPED !!!!!!!!"; \
	fi

test: $(STAMP) browser
	$(BIN)/pytest -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

# Benchmarks, not tests: figures to read, never asserted. make_sample_export
# writes deterministic files into var/bench/ (skipped when up to date); each
# area appends its own timing line below.
bench: $(STAMP)
	$(BIN)/python manage.py make_sample_export
	$(BIN)/python manage.py bench_import
	$(BIN)/python manage.py bench_evidence
	$(BIN)/python manage.py bench_reconcile
	$(BIN)/python manage.py bench_sync
	$(BIN)/python manage.py bench_live
	$(BIN)/python manage.py bench_settlement

# Translators' step (needs GNU gettext); the compiled .mo files are committed so
# a fresh machine needs nothing but Python.
messages: $(STAMP)
	$(BIN)/python manage.py makemessages -l en --ignore=.venv --ignore=var --ignore=staticfiles
	$(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var staticfiles
