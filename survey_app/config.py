"""Configuration defaults.

Order of precedence (later wins): these defaults, `instance/config.py`,
environment variables (`DATABASE_URL`, `SECRET_KEY`, `RATELIMIT_STORAGE_URI`,
`PUBLIC_BASE_URL`, and any `SIPAS_<NAME>` for a config key `<NAME>`), then the
mapping passed to `create_app(config)`.
"""
import json
import os


class Defaults:
    # Filled in by create_app: env DATABASE_URL, else SQLite in instance/.
    SQLALCHEMY_DATABASE_URI = None
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SQLITE_FILENAME = "sipas.sqlite3"
    # Filled in by create_app: env SECRET_KEY, else generated once into instance/.
    SECRET_KEY = None

    TIMEZONE = "Asia/Ho_Chi_Minh"
    REPORT_CUTOFF_MONTH = 12
    REPORT_CUTOFF_DAY = 15
    DEFAULT_TARGET = 0.90

    BABEL_DEFAULT_LOCALE = "vi"
    BABEL_DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
    LANGUAGES = ("vi", "en")

    # Base of absolute URLs (QR codes, `counters list`).
    PUBLIC_BASE_URL = "http://127.0.0.1:5000"

    # Rate limiting (Flask-Limiter): memory:// for one process; set
    # RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 for several workers.
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = False
    # A Redis outage must never turn a citizen's submission into an error:
    # fall back to per-process memory limits, and never fail on storage errors.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True

    # CSRF tokens stay valid for a long time: citizens keep the form open.
    WTF_CSRF_TIME_LIMIT = 6 * 3600

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Set True in production behind HTTPS.
    SESSION_COOKIE_SECURE = False
    # Number of proxies in front of the app (ProxyFix); 0 = none.
    PROXY_FIX = 0

    # Flask-Caching: per-process by default; set CACHE_TYPE="RedisCache" and
    # CACHE_REDIS_URL to share cached figures between workers.
    CACHE_TYPE = "SimpleCache"
    CACHE_DEFAULT_TIMEOUT = 300

    # Demo seed on first run of `make run` / `flask demo seed`.
    DEMO_RESPONSES = 50000


ENV_KEYS = ("DATABASE_URL", "SECRET_KEY", "RATELIMIT_STORAGE_URI", "PUBLIC_BASE_URL")


def normalise_database_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` spellings and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def env_overrides() -> dict:
    out = {}
    for key, value in os.environ.items():
        if key.startswith("SIPAS_"):
            try:  # JSON values (numbers, booleans, lists) as Flask's from_prefixed_env
                out[key[len("SIPAS_"):]] = json.loads(value)
            except ValueError:
                out[key[len("SIPAS_"):]] = value
    if os.environ.get("DATABASE_URL"):
        out["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    for key in ENV_KEYS[1:]:
        if os.environ.get(key):
            out[key] = os.environ[key]
    return out
