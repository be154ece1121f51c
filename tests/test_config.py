"""Configuration: every default in survey_app/config.py, the environment read through
`from_prefixed_env("SIPAS")` plus the few plain names, one time-zone key, and the
cache chosen from the configuration (Redis shared by all workers when configured)."""
from __future__ import annotations

import ast
import os
import socket
import uuid
from pathlib import Path

import pytest

from survey_app import create_app
from survey_app.config import Defaults, served_base_url
from survey_app.extensions import cache

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "survey_app"
BASE = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "test-config"}
ENV_NAMES = ("DATABASE_URL", "SECRET_KEY", "RATELIMIT_STORAGE_URI", "PUBLIC_BASE_URL", "CACHE_REDIS_URL",
             "FLASK_RUN_HOST", "FLASK_RUN_PORT")


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SIPAS_") or name in ENV_NAMES:
            monkeypatch.delenv(name)
    return monkeypatch


def _app(tmp_path, **config):
    return create_app(dict(BASE, **config), instance_path=str(tmp_path / "instance"))


def test_prefixed_environment_is_read_as_json(clean_env, tmp_path):
    clean_env.setenv("SIPAS_DEFAULT_TARGET", "0.95")
    clean_env.setenv("SIPAS_STAFF_PAGE_SIZE", "20")
    clean_env.setenv("SIPAS_LANGUAGES", '["vi"]')
    clean_env.setenv("SIPAS_STAFF_LOGIN_RATE", "5 per minute")  # not JSON: kept as text
    app = _app(tmp_path)
    assert app.config["DEFAULT_TARGET"] == 0.95
    assert app.config["STAFF_PAGE_SIZE"] == 20
    assert app.config["LANGUAGES"] == ["vi"]
    assert app.config["STAFF_LOGIN_RATE"] == "5 per minute"


def test_plain_environment_names(clean_env, tmp_path):
    clean_env.setenv("DATABASE_URL", "postgres://u@h:5432/x")
    clean_env.setenv("SECRET_KEY", "from-env")
    clean_env.setenv("RATELIMIT_STORAGE_URI", "memory://")
    clean_env.setenv("PUBLIC_BASE_URL", "https://khaosat.example.vn")
    app = create_app({"TESTING": True}, instance_path=str(tmp_path / "instance"))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h:5432/x"
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["PUBLIC_BASE_URL"] == "https://khaosat.example.vn"
    # the mapping passed to create_app wins over the environment
    assert _app(tmp_path, PUBLIC_BASE_URL="http://x.test").config["PUBLIC_BASE_URL"] == "http://x.test"


def test_one_time_zone_key(clean_env, tmp_path):
    assert _app(tmp_path).config["BABEL_DEFAULT_TIMEZONE"] == Defaults.TIMEZONE == "Asia/Ho_Chi_Minh"
    clean_env.setenv("SIPAS_TIMEZONE", "Asia/Bangkok")
    app = _app(tmp_path)
    assert app.config["TIMEZONE"] == app.config["BABEL_DEFAULT_TIMEZONE"] == "Asia/Bangkok"
    assert not hasattr(Defaults, "BABEL_DEFAULT_TIMEZONE"), "one key: TIMEZONE"


def test_public_base_url_follows_the_served_address(clean_env, tmp_path):
    assert _app(tmp_path).config["PUBLIC_BASE_URL"] == "http://127.0.0.1:5000"
    clean_env.setenv("FLASK_RUN_HOST", "0.0.0.0")
    clean_env.setenv("FLASK_RUN_PORT", "8123")
    assert _app(tmp_path).config["PUBLIC_BASE_URL"] == "http://127.0.0.1:8123"
    assert served_base_url({"FLASK_RUN_HOST": "::1", "FLASK_RUN_PORT": "81"}) == "http://[::1]:81"
    clean_env.setenv("PUBLIC_BASE_URL", "https://khaosat.example.vn")
    assert _app(tmp_path).config["PUBLIC_BASE_URL"] == "https://khaosat.example.vn"


# ------------------------------------------------------------------ no default outside config.py

def _config_reads():
    """(file, line, name, has_default) of every `<x>.config.get(NAME, ...)` / `config[NAME]` in the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "config"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                yield path, node.lineno, node.args[0].value, len(node.args) > 1
            elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                  and node.value.attr == "config" and isinstance(node.slice, ast.Constant)
                  and isinstance(node.ctx, ast.Load)):
                yield path, node.lineno, node.slice.value, False


def _inline_defaults():
    """`<x>.config.get(KEY, default)` anywhere in the package (whatever KEY is)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "config"
                    and len(node.args) + len(node.keywords) > 1):
                yield f"{path.relative_to(ROOT)}:{node.lineno}"


def test_no_inline_config_defaults():
    assert list(_inline_defaults()) == [], "put the default in survey_app/config.py and read config[NAME]"


def test_every_key_read_has_a_default(clean_env, tmp_path):
    app = _app(tmp_path)
    unknown = sorted({f"{name} ({p.relative_to(ROOT)}:{line})" for p, line, name, _ in _config_reads()
                      if name not in app.config})
    assert unknown == [], "add these keys to survey_app/config.py"


# ------------------------------------------------------------------ cache

def test_cache_is_per_process_without_redis(clean_env, tmp_path):
    app = _app(tmp_path)
    assert app.config["CACHE_TYPE"] == "SimpleCache"


def test_cache_uses_the_configured_redis(clean_env, tmp_path):
    app = _app(tmp_path, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/3")
    assert app.config["CACHE_TYPE"] == "RedisCache"
    assert app.config["CACHE_REDIS_URL"] == "redis://127.0.0.1:6379/3"
    app = _app(tmp_path, CACHE_REDIS_URL="redis://cache.local:6379/1")
    assert (app.config["CACHE_TYPE"], app.config["CACHE_REDIS_URL"]) == ("RedisCache", "redis://cache.local:6379/1")
    # an explicit CACHE_TYPE wins
    app = _app(tmp_path, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/3", CACHE_TYPE="SimpleCache")
    assert app.config["CACHE_TYPE"] == "SimpleCache"


def _redis_up(host="127.0.0.1", port=6379) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_two_workers_share_the_redis_cache(clean_env, tmp_path):
    if not _redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"sipas-test-{uuid.uuid4().hex[:8]}:"
    worker_a = _app(tmp_path, CACHE_REDIS_URL="redis://127.0.0.1:6379/0", CACHE_KEY_PREFIX=prefix)
    worker_b = _app(tmp_path, CACHE_REDIS_URL="redis://127.0.0.1:6379/0", CACHE_KEY_PREFIX=prefix)
    try:
        with worker_a.app_context():
            cache.set("figures", {"index": 0.91}, timeout=30)
        with worker_b.app_context():
            assert cache.get("figures") == {"index": 0.91}
        per_process = _app(tmp_path)  # SimpleCache: the other worker's entry is not there
        with per_process.app_context():
            assert cache.get("figures") is None
    finally:
        with worker_a.app_context():
            cache.delete("figures")
