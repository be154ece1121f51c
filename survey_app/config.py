"""Every configuration default, in one class.

Order of precedence (later wins):

1. `Defaults` below;
2. `instance/config.py` (a Python file of UPPER_CASE names);
3. the environment: `SIPAS_<NAME>` sets the key `<NAME>` (Flask's `from_prefixed_env`: values are read as
   JSON when they parse, so `SIPAS_DEFAULT_TARGET=0.95` is a number and `SIPAS_PRODUCTION=true` a boolean),
   plus the few plain names every host knows: `DATABASE_URL`, `SECRET_KEY`, `RATELIMIT_STORAGE_URI`,
   `PUBLIC_BASE_URL`;
4. the mapping passed to `create_app(config)`.

Code reads `current_app.config[NAME]`, never `config.get(NAME, default)`: a key read anywhere is defined here.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Defaults:
    # ------------------------------------------------------------------ database and secrets
    # None = SQLite file SQLITE_FILENAME in the instance folder (env DATABASE_URL for a server).
    SQLALCHEMY_DATABASE_URI = None
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SQLITE_FILENAME = "sipas.sqlite3"
    # None = generated once into instance/secret_key (env SECRET_KEY in production).
    SECRET_KEY = None
    # Production mode (env SIPAS_PRODUCTION=true): refuse unsafe settings, Secure cookies (security.py).
    PRODUCTION = False
    # Number of proxies in front of the app (werkzeug ProxyFix); 0 = none.
    PROXY_FIX = 0

    # ------------------------------------------------------------------ time, calendar, targets
    # The one time-zone key: the reporting calendar, "today" and Flask-Babel's
    # BABEL_DEFAULT_TIMEZONE (derived from it in create_app) all use it.
    TIMEZONE = "Asia/Ho_Chi_Minh"
    REPORT_CUTOFF_MONTH = 12
    REPORT_CUTOFF_DAY = 15
    DEFAULT_TARGET = 0.90
    # The annual report's official header (print, PDF and XLSX): the issuing body and the body above it
    # (left block of a Vietnamese administrative document), and the place written before the date.
    # None = derived from the province of the report ("ỦY BAN NHÂN DÂN TỈNH …", its name).
    REPORT_ISSUER = "SỞ NỘI VỤ"
    REPORT_ISSUER_PARENT = None
    REPORT_PLACE = None

    # ------------------------------------------------------------------ languages
    BABEL_DEFAULT_LOCALE = "vi"
    LANGUAGES = ("vi", "en")

    # ------------------------------------------------------------------ addresses
    # Base of absolute URLs (QR codes, `counters list`, the demo's printed links).
    # None = the address `flask run` / `make run` serves (FLASK_RUN_HOST/PORT), else http://127.0.0.1:5000.
    PUBLIC_BASE_URL = None

    # ------------------------------------------------------------------ API v1 (issue 12, survey_app/api)
    # Requests per API client (its key), Flask-Limiter syntax.
    API_RATE_LIMIT = "600/minute"
    # Largest request body (bytes): 1,000 portal events fit in well under 1 MiB.
    API_MAX_BODY_BYTES = 2 * 1024 * 1024
    # QĐ 766 metric: an overall answer 1..this counts as "rated dissatisfied" (METHODOLOGY §7).
    M766_DISSATISFIED_MAX = 2
    # Rating links by SMS / Zalo ZNS on `tra_ket_qua` with consent: "log" (stand-in), "http" (POST to
    # SMS_GATEWAY_URL with Bearer SMS_GATEWAY_KEY) or "off" (services/gateway.py).
    SMS_GATEWAY = "log"
    SMS_GATEWAY_URL = None
    SMS_GATEWAY_KEY = None
    # Outbound webhooks (services/webhooks.py): seconds a receiver has to answer one POST, and how long a
    # worker remembers whether anyone subscribes to an event type (a webhook set in another worker starts
    # receiving at most that late).  None = 10, or 0 when TESTING.
    WEBHOOK_TIMEOUT_SECONDS = 5
    WEBHOOK_SUBSCRIBER_CACHE_SECONDS = None

    # ------------------------------------------------------------------ citizen form
    # Rate limits (Flask-Limiter syntax) of the citizen pages, per key (public/routes.py).
    PUBLIC_LIMIT_IP = "300/minute"
    PUBLIC_LIMIT_COUNTER = "60/minute"
    PUBLIC_LIMIT_DEVICE = "10/minute"
    PUBLIC_LIMIT_IP_GET = "600/minute"
    # A form sent less than this many seconds after its device token was issued (a fresh phone that
    # answers at once: a script) is shown again with its answers, not stored (services/devices.py).
    PUBLIC_MIN_FILL_SECONDS = 3
    # Largest citizen form body accepted (bytes); larger gets 413.
    PUBLIC_MAX_FORM_BYTES = 32 * 1024

    # ------------------------------------------------------------------ imports and request size (security.py)
    # Largest CSV file the import page accepts (bytes); the CLI streams files of any size.
    IMPORT_MAX_BYTES = 50 * 1024 * 1024
    # Largest request body of any kind (werkzeug refuses larger with 413): an import plus its form.
    MAX_CONTENT_LENGTH = IMPORT_MAX_BYTES + 1024 * 1024
    # Largest body a staff URL accepts before the sender has signed in (the login form is tiny).
    STAFF_ANONYMOUS_MAX_BYTES = 64 * 1024
    # Seconds before the kiosk's thank-you page returns to an empty form.
    KIOSK_RESET_SECONDS = 8
    # Seconds without a touch after which a half-filled kiosk form goes back to a
    # fresh Vietnamese one (public.js; the next person never sees the last one's answers).
    KIOSK_IDLE_SECONDS = 90
    # Minutes after "Send" during which the thank-you page's optional details
    # (procedure field, comment, age group, gender) can be added to that rating.
    DETAILS_WINDOW_MINUTES = 30
    # CSRF (Flask-WTF); tokens stay valid for a long time: citizens keep the form open.
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = 6 * 3600

    # Quality flags on submissions (seconds / counts; quality.py and collect.py).
    COLLECT_BURST_WINDOW = 600
    COLLECT_BURST_COUNT = 3
    COLLECT_KIOSK_BURST_WINDOW = 60
    COLLECT_KIOSK_BURST_COUNT = 2
    COLLECT_IDENTICAL_WINDOW = 180
    COLLECT_IDENTICAL_COUNT = 2
    COLLECT_DUPLICATE_WINDOW = 60
    # Responses without a valid signed device token (invented/altered/no cookie) at one counter:
    # more than COUNT within WINDOW seconds are flagged no_device_burst (quality.py).
    COLLECT_NO_DEVICE_WINDOW = 600
    COLLECT_NO_DEVICE_COUNT = 3
    # A counter's busiest real hour E (quality.expected_hour), from its unit's volumes of the last 400 days:
    #   E = max(COLLECT_VOLUME_FLOOR, ceil(COLLECT_VOLUME_PEAK * transactions / (weekdays * HOURS_PER_DAY)))
    # (the busiest period).  More than E responses at a counter within an hour: flagged over_volume;
    # more than PUBLIC_CEILING_MULTIPLIER * E per hour: refused by the rate limiter (429, answers kept);
    # multiplier 0 = no hourly ceiling.  Cached per process for COLLECT_VOLUME_CACHE_SECONDS.
    COLLECT_VOLUME_FLOOR = 60
    COLLECT_VOLUME_PEAK = 3
    COLLECT_VOLUME_HOURS_PER_DAY = 8
    # ... and more than max(MINUTE_FLOOR, ceil(MINUTE_FACTOR * E / 60)) within a minute: flagged over_volume too.
    COLLECT_VOLUME_MINUTE_FLOOR = 10
    COLLECT_VOLUME_MINUTE_FACTOR = 3
    COLLECT_VOLUME_CACHE_SECONDS = 300
    PUBLIC_CEILING_MULTIPLIER = 2
    # Seconds a loaded questionnaire is kept per process (0 = read it on every request);
    # None = 60, or 0 when TESTING.
    COLLECT_INSTRUMENT_CACHE_SECONDS = None
    # The form's hot path (public/hotpath.py): seconds a counter's light row and a rendered fresh form are kept
    # per process.  A rotated or deactivated counter answers 410 at most COLLECT_COUNTER_CACHE_SECONDS late;
    # a renamed counter shows its new name within COLLECT_PAGE_CACHE_SECONDS.  None = 30 and 300, 0 when TESTING.
    COLLECT_COUNTER_CACHE_SECONDS = None
    COLLECT_PAGE_CACHE_SECONDS = None

    # ------------------------------------------------------------------ staff
    STAFF_IDLE_TIMEOUT = 30 * 60          # seconds without a request before a session ends
    STAFF_ABSOLUTE_TIMEOUT = 12 * 3600    # seconds after sign-in when a session ends whatever happens
    STAFF_MAX_FAILED_LOGINS = 5           # sign-in attempts per username x client before that client is locked out
    STAFF_LOCK_SECONDS = 15 * 60          # ... within this many seconds, and the lock lasts to the window's end
    STAFF_LOGIN_RATE = "30 per 5 minutes"  # Flask-Limiter limit on POST /staff/login per client (hashed address)
    STAFF_LOGIN_GLOBAL_RATE = "300 per minute"  # ... and for all clients together (a slow-down of spread attacks)
    STAFF_PAGE_SIZE = 50                  # rows per page of the long staff lists
    STAFF_CACHE_SECONDS = 300             # how long computed staff figures are cached
    # The figures store (staff/figures.py): a stale figure is served while a job recomputes it
    # (None = on unless TESTING), not sooner than FIGURES_REFRESH_SECONDS after its last computation;
    # the shared cache keeps an entry FIGURES_KEEP_SECONDS (the database keeps a copy anyway).
    FIGURES_BACKGROUND = None
    FIGURES_REFRESH_SECONDS = 15
    FIGURES_KEEP_SECONDS = 7 * 24 * 3600

    # ------------------------------------------------------------------ background jobs (services/jobs.py)
    # A server process runs due jobs in one daemon thread (started by its first request; never under TESTING).
    # With several hosts or workers this is safe (a job is claimed once); set it off and run
    # `flask jobs work` as its own process to keep the web workers free.
    JOBS_IN_PROCESS = True
    JOBS_POLL_SECONDS = 1.0               # how often that thread (and `flask jobs work`) looks for due jobs
    JOBS_LEASE_SECONDS = 300              # a running job whose worker died is run again after this long

    # ------------------------------------------------------------------ responses exports (services/csv_export.py)
    EXPORT_ASYNC_ROWS = 100_000           # a larger responses export is written by a background job, not streamed
    EXPORT_TTL_HOURS = 24                 # its file (instance/exports/<token>.csv) can be downloaded this long

    # ------------------------------------------------------------------ publishing (services/publishing.py)
    # Acceptances a unit's submitted figures need before they can be published, each by an analyst outside
    # the unit whose scope covers it, every further one a level above the previous (1: the province).
    PUBLISH_APPROVAL_LEVELS = 1
    # Units with fewer responses are shown on the public pages as "chưa đủ mẫu", without any figure or count.
    PUBLIC_MIN_N = 30
    # Seconds the public results pages are cached (Flask-Caching) and may be cached by browsers / proxies.
    PUBLIC_CACHE_SECONDS = 300

    # ------------------------------------------------------------------ alerts and cases (services/cases.py)
    # A stored response whose overall answer is at most M766_DISSATISFIED_MAX (the one definition of
    # "dissatisfied"), or whose citizen asked for a reply, opens a case for the unit's leaders; so does a
    # window: at least ALERT_WINDOW_MIN_RATINGS live ratings (QR, kiosk, online) of one unit within
    # ALERT_WINDOW_MINUTES of which a share >= ALERT_WINDOW_SHARE dissatisfied (one case per window).
    # Paper / phone entry opens cases like the online form; bulk imports and the demo seed never do.
    ALERTS_ENABLED = True
    ALERT_WINDOW_MINUTES = 15
    ALERT_WINDOW_MIN_RATINGS = 4
    ALERT_WINDOW_SHARE = 0.5
    # A case is due this many working days after the local day it was opened (Mon-Fri, less PUBLIC_HOLIDAYS).
    CASE_DEADLINE_WORKING_DAYS = 5
    # Days off besides weekends (ISO dates; services/workdays.py).  Default: Viet Nam's 2026 public
    # holidays for state offices as announced (Tết Dương lịch, Tết Nguyên đán 14-22/02 with its weekdays,
    # Giỗ Tổ Hùng Vương (Sunday 26/04, made up on Monday 27/04), 30/04 and 01/05, Quốc khánh 01-02/09).
    # Check it against each year's official notice and extend it (instance/config.py or SIPAS_PUBLIC_HOLIDAYS).
    PUBLIC_HOLIDAYS = (
        "2026-01-01",
        "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19", "2026-02-20",
        "2026-04-27", "2026-04-30", "2026-05-01",
        "2026-09-01", "2026-09-02",
    )
    # E-mail of the alerts (a link to the case page only, never the answers or the comment), sent by the
    # job queue (services/jobs.py) so a slow or absent mail server never slows a citizen's rating.
    # MAIL_SERVER None = e-mail off: the message is only logged.  MAIL_TLS: "starttls", "ssl" or "none".
    MAIL_SERVER = None
    MAIL_PORT = 25
    MAIL_USER = None
    MAIL_PASSWORD = None
    MAIL_FROM = "sipas@localhost"
    MAIL_TLS = "none"
    MAIL_TIMEOUT = 10

    # ------------------------------------------------------------------ rate-limit storage
    # memory:// for one process; RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 for several workers
    # (the figures cache then uses the same Redis, see CACHE_TYPE).
    RATELIMIT_STORAGE_URI = "memory://"
    # Said explicitly: Flask-Limiter keeps the previous app's flag when an app's config has none.
    RATELIMIT_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = False
    # A Redis outage must never turn a citizen's submission into an error:
    # fall back to per-process memory limits, and never fail on storage errors.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True

    # ------------------------------------------------------------------ cache (Flask-Caching)
    # None = automatic: RedisCache when CACHE_REDIS_URL is set or RATELIMIT_STORAGE_URI is a Redis URL
    # (the staff figures are then shared by all workers), else SimpleCache (per process).
    CACHE_TYPE = None
    CACHE_REDIS_URL = None
    CACHE_KEY_PREFIX = "sipas:cache:"
    CACHE_DEFAULT_TIMEOUT = 300

    # ------------------------------------------------------------------ cookies
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # True in production (forced by PRODUCTION) behind HTTPS.
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False

    # ------------------------------------------------------------------ transfer (assets.py, Flask-Compress)
    # Compressed answers: brotli when the client accepts it, else gzip; bodies under COMPRESS_MIN_SIZE bytes
    # go as they are.  Static files are streamed, so they use the streaming list (brotli, else deflate).
    COMPRESS_ALGORITHM = ["br", "gzip"]
    COMPRESS_ALGORITHM_STREAMING = ["br", "deflate"]
    COMPRESS_BR_LEVEL = 5
    COMPRESS_LEVEL = 6
    COMPRESS_MIN_SIZE = 500

    # ------------------------------------------------------------------ demo
    # Responses made by `flask demo seed` (the first `make run`).
    DEMO_RESPONSES = 50000


# Plain environment names (no SIPAS_ prefix) and the config key each sets.
PLAIN_ENV = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "SECRET_KEY": "SECRET_KEY",
    "RATELIMIT_STORAGE_URI": "RATELIMIT_STORAGE_URI",
    "PUBLIC_BASE_URL": "PUBLIC_BASE_URL",
}
DEFAULT_SERVED = ("127.0.0.1", "5000")


def plain_env(environ: Mapping[str, str] | None = None) -> dict:
    """The config keys set by the plain environment names (empty values ignored)."""
    environ = os.environ if environ is None else environ
    return {key: environ[name] for name, key in PLAIN_ENV.items() if environ.get(name)}


def normalise_database_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` spellings and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def served_base_url(environ: Mapping[str, str] | None = None) -> str:
    """The address `flask run` serves (FLASK_RUN_HOST / FLASK_RUN_PORT, as `make run` sets them)."""
    environ = os.environ if environ is None else environ
    host = environ.get("FLASK_RUN_HOST") or DEFAULT_SERVED[0]
    port = environ.get("FLASK_RUN_PORT") or DEFAULT_SERVED[1]
    if host in ("0.0.0.0", "::"):  # listening everywhere: print a reachable address
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def derive(config: MutableMapping) -> None:
    """The settings computed from others (after every source has been read)."""
    config["BABEL_DEFAULT_TIMEZONE"] = config["TIMEZONE"]
    if not config["PUBLIC_BASE_URL"]:
        config["PUBLIC_BASE_URL"] = served_base_url()
    if config["COLLECT_INSTRUMENT_CACHE_SECONDS"] is None:
        config["COLLECT_INSTRUMENT_CACHE_SECONDS"] = 0 if config["TESTING"] else 60
    for name, seconds in (("COLLECT_COUNTER_CACHE_SECONDS", 30), ("COLLECT_PAGE_CACHE_SECONDS", 300),
                          ("WEBHOOK_SUBSCRIBER_CACHE_SECONDS", 10)):
        if config[name] is None:
            config[name] = 0 if config["TESTING"] else seconds
    if not config["CACHE_TYPE"]:
        redis_url = config["CACHE_REDIS_URL"]
        limiter_url = str(config["RATELIMIT_STORAGE_URI"] or "")
        if not redis_url and limiter_url.startswith(REDIS_SCHEMES):
            redis_url = config["CACHE_REDIS_URL"] = limiter_url
        config["CACHE_TYPE"] = "RedisCache" if redis_url else "SimpleCache"
