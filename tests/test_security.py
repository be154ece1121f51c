"""Security headers, cookie flags, ProxyFix and production start checks."""
import pytest

from survey_app import create_app
from survey_app.security import UnsafeConfiguration

STRONG = "x" * 48


def test_security_headers_on_every_response(client):
    for path in ("/healthz", "/no-such-page", "/staff/login"):
        r = client.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "'unsafe-inline'" not in csp and "http:" not in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "same-origin"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in r.headers  # plain HTTP


def test_hsts_only_over_https(client):
    r = client.get("/healthz", base_url="https://sipas.test")
    assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_proxy_fix_by_setting(make_app):
    plain = make_app().test_client().get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in plain.headers  # not trusted without PROXY_FIX
    proxied = make_app(PROXY_FIX=1).test_client().get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in proxied.headers


def _cookies(resp):
    return resp.headers.getlist("Set-Cookie")


def test_cookies_httponly_samesite(client):
    cookies = _cookies(client.get("/healthz?lang=en")) + _cookies(client.get("/staff/login"))
    assert cookies, "expected the language and session cookies"
    for c in cookies:
        assert "HttpOnly" in c and "SameSite=Lax" in c, c
        assert "Secure" not in c  # development over plain HTTP


def test_production_refuses_debug_and_missing_secret(database_url):
    with pytest.raises(UnsafeConfiguration, match="debug"):
        create_app({"PRODUCTION": True, "DEBUG": True, "SECRET_KEY": STRONG,
                    "SQLALCHEMY_DATABASE_URI": database_url})
    with pytest.raises(UnsafeConfiguration, match="SECRET_KEY"):
        create_app({"PRODUCTION": True, "SECRET_KEY": "short", "SQLALCHEMY_DATABASE_URI": database_url})


def test_production_cookies_are_secure(database_url):
    app = create_app({"PRODUCTION": True, "SECRET_KEY": STRONG, "SQLALCHEMY_DATABASE_URI": database_url})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    cookies = _cookies(app.test_client().get("/healthz?lang=en", base_url="https://sipas.test"))
    assert cookies and all("Secure" in c for c in cookies)
