"""Project settings. Everything that differs between machines comes from the
environment (12-factor, through django-environ); a `.env` file beside
manage.py is read when present."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEV_SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 - refused by `make serve`

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Everything the app writes at run time: the SQLite file, kept uploads, reports.
DATA_DIR = Path(env("DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)
UPLOAD_DIR = DATA_DIR / "uploads"

INSTALLED_APPS = [
    "reconciliation",  # first, so its `flush` override wins (see the command)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ninja",
    "django_q",
    "csp",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "reconciliation.middleware.PagesLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Refuses an oversized upload before the CSRF check reads its body.
    "reconciliation.upload_limits.UploadSizeLimitMiddleware",
    # A NUL in a parameter, form field or JSON body → 422 (after the size check).
    "reconciliation.middleware.RejectNulMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "kolable.urls"
WSGI_APPLICATION = "kolable.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "reconciliation.context_processors.navigation",
            ],
        },
    },
]

# --- Database: SQLite by default, PostgreSQL through DATABASE_URL -------------
# Lets two test runs on one machine use separate test databases.
TEST_DB_SUFFIX = env("KOLABLE_TEST_DB_SUFFIX", default=env("TEST_DB_SUFFIX", default=""))
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # IMMEDIATE takes the write lock at BEGIN, so two writers queue on
            # the busy timeout instead of failing with "database is locked".
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                "PRAGMA foreign_keys=ON; PRAGMA cache_size=-64000;"
            ),
        }
    )
    # A file, not :memory:, so the live server, a qcluster subprocess and the
    # test process all see the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-db{TEST_DB_SUFFIX}.sqlite3")}
else:
    if TEST_DB_SUFFIX:
        DATABASES["default"]["TEST"] = {
            "NAME": f"test_{DATABASES['default']['NAME']}{TEST_DB_SUFFIX}"
        }
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        # Server-side binding lets psycopg prepare a statement once it has run
        # twice on a connection: a page repeats the same dozen queries, and
        # PostgreSQL then skips planning them (3 ms for the board's join).
        # Off behind a pooler in transaction mode (PgBouncer < 1.21).
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": 2}
        )
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Login throttling (django-axes): 5 failures per username and address lock that
# pair out for 15 minutes; each failure is also an AuditEvent (signals.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "reconciliation.auth_backends.ThrottledModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The per-username lock (reconciliation/auth_backends.py): after this many
# failures within the cool-off from any addresses, a sign-in waits this long
# after the latest failure — a delay, never a lock-out of the account's owner.
USERNAME_FAILURE_LIMIT = env.int("USERNAME_FAILURE_LIMIT", default=20)
USERNAME_LOCK_SECONDS = env.int("USERNAME_LOCK_SECONDS", default=60)
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The lock is keyed on the real client address: behind PROXY_COUNT proxies
# (a load balancer is 1) it is the X-Forwarded-For entry the outermost proxy
# wrote, counted from the right so a client cannot forge it; with 0 only
# REMOTE_ADDR counts (reconciliation/client_address.py).
PROXY_COUNT = env.int("PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "reconciliation.client_address.client_address"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "board"
LOGOUT_REDIRECT_URL = "login"

# --- Language and time --------------------------------------------------------
LANGUAGE_CODE = "zh-hant"
LANGUAGES = [("zh-hant", "繁體中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Taipei"
USE_TZ = True

# --- Static files -------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Uploads ------------------------------------------------------------------
MAX_UPLOAD_MB = env.int("MAX_UPLOAD_MB", default=100)
MAX_ROWS = env.int("MAX_ROWS", default=2_000_000)
# Zip-bomb bounds, checked on the declared sizes before an XLSX is inflated.
MAX_XLSX_UNCOMPRESSED_MB = env.int("MAX_XLSX_UNCOMPRESSED_MB", default=1024)
XLSX_MAX_COMPRESSION_RATIO = env.int("XLSX_MAX_COMPRESSION_RATIO", default=200)
# Spreadsheets are refused from cheap facts (extent, longest cell) before they
# are read, then read in a child process under this address-space limit.
SHEET_MAX_COLUMNS = env.int("SHEET_MAX_COLUMNS", default=256)
SHEET_MAX_CELLS = env.int("SHEET_MAX_CELLS", default=30_000_000)
SHEET_MAX_CELL_BYTES = env.int("SHEET_MAX_CELL_BYTES", default=131_072)
SHEET_READER_MEMORY_MB = env.int("SHEET_READER_MEMORY_MB", default=2048)
SHEET_READER_TIMEOUT_SECONDS = env.int("SHEET_READER_TIMEOUT_SECONDS", default=600)
# Larger files are validated in the django-q2 worker, not in the web request.
UPLOAD_SYNC_MAX_MB = env.float("UPLOAD_SYNC_MAX_MB", default=10)
# Row errors described per upload (the first by row); the rest are counted by code.
ROW_ERRORS_REPORTED = env.int("ROW_ERRORS_REPORTED", default=50_000)
# Error reports and refused files are purged after this (accepted files stay).
UPLOAD_RETENTION_DAYS = env.int("UPLOAD_RETENTION_DAYS", default=30)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Key for hashing raw customer identifiers; separate from SECRET_KEY so the
# hashes stay stable when the session key is rotated.
CUSTOMER_KEY_SECRET = env("CUSTOMER_KEY_SECRET", default=SECRET_KEY)

# --- Security -----------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    # Off only for a plain-HTTP loopback run (`make loadtest`); never in production.
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # The load balancer's health check speaks plain HTTP to the app.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- E-mail -------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="kolable-pls@localhost")

# --- Jobs: django-q2, ORM broker unless REDIS_URL is set ----------------------
REDIS_URL = env("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "kolable",
    "workers": env.int("QCLUSTER_WORKERS", default=2),
    "timeout": 600,  # a 1,000,000-row import fits
    "retry": 720,  # longer than timeout, so a running task is never handed out twice
    "max_attempts": 3,
    "queue_limit": 50,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Django Q2",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = env.float("QCLUSTER_POLL", default=1.0)

HEARTBEAT_MAX_AGE_SECONDS = env.int("HEARTBEAT_MAX_AGE_SECONDS", default=180)
# An accepted upload with no import after this long is imported by the sweep.
IMPORT_STALL_MINUTES = env.int("IMPORT_STALL_MINUTES", default=5)
# A paid order without a settled line is in flight this long, then missing.
SETTLEMENT_WINDOW_DAYS = env.int("SETTLEMENT_WINDOW_DAYS", default=7)

# --- Outside channels and claims ---------------------------------------------
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
NOTIFY_WEBHOOK_URL = env("NOTIFY_WEBHOOK_URL", default="")
LINE_CHANNEL_TOKEN = env("LINE_CHANNEL_TOKEN", default="")
LINE_API_URL = env("LINE_API_URL", default="https://api.line.me/v2/bot/message/push")
CLAIM_ALLOWED_HOSTS = env.list(
    "CLAIM_ALLOWED_HOSTS", default=["github.com", "vercel.app", "netlify.app", "onrender.com"]
)
CLAIM_ALLOW_PRIVATE = env.bool("CLAIM_ALLOW_PRIVATE", default=False)
CLAIM_TIMEOUT_SECONDS = env.float("CLAIM_TIMEOUT_SECONDS", default=5.0)

# --- The training programme Huber verifies ------------------------------------
TRAINING_PROGRAM_ID = env("TRAINING_PROGRAM_ID", default="")
TRAINING_PROGRAM_AMOUNT = env.int("TRAINING_PROGRAM_AMOUNT", default=28000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- The daily sync from the Kolable API ---------------------------------------
# Hosts the sync may pull although they resolve to loopback/private addresses.
SYNC_ALLOWED_HOSTS = env.list("SYNC_ALLOWED_HOSTS", default=[])
SYNC_TIMEOUT_SECONDS = env.float("SYNC_TIMEOUT_SECONDS", default=30.0)
SYNC_MAX_TRIES = env.int("SYNC_MAX_TRIES", default=5)
SYNC_BACKOFF_SECONDS = env.float("SYNC_BACKOFF_SECONDS", default=2.0)
SYNC_MAX_RETRY_AFTER = env.float("SYNC_MAX_RETRY_AFTER", default=60.0)
# A running sync whose heartbeat is older than this was lost with its worker.
SYNC_STALE_MINUTES = env.int("SYNC_STALE_MINUTES", default=10)
# A sync's NDJSON may be larger than a person's upload.
SYNC_MAX_UPLOAD_MB = env.int("SYNC_MAX_UPLOAD_MB", default=2048)

# --- The live dashboard -----------------------------------------------------------
# Rewrite the live streams' figures inside each import's transaction instead
# of in the worker after it (imports on a large book then wait seconds more).
LIVE_FIGURES_INLINE = env.bool("LIVE_FIGURES_INLINE", default=False)
