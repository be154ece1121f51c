"""The staff session cookie carries the `__Host-` prefix when cookies are Secure
(production), and stays `session` on plain-HTTP development set-ups."""
from tests.factories import PASSWORD, make_user
from tests.helpers import TEST_CONFIG

STRONG = "x" * 40


def _app(database_url, **cfg):
    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.services.instruments import sync_instruments

    app = create_app(dict(TEST_CONFIG, SQLALCHEMY_DATABASE_URI=database_url, SECRET_KEY=STRONG,
                          WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False, **cfg))
    with app.app_context():
        sync_instruments(db.session)
        make_user("cookie-admin", role="admin")
        db.session.commit()
    return app


def _session_cookie(resp):
    (cookie,) = [c for c in resp.headers.getlist("Set-Cookie") if "session=" in c.split(";")[0]]
    return cookie


def test_production_session_cookie_is_host_prefixed(make_app, database_url):
    make_app()  # the clean-up of this test's rows
    app = _app(database_url, PRODUCTION=True)
    c = app.test_client()
    r = c.post("/staff/login", data={"username": "cookie-admin", "password": PASSWORD},
               base_url="https://sipas.test")
    assert r.status_code == 302
    cookie = _session_cookie(r)
    parts = [p.strip().lower() for p in cookie.split(";")]
    assert cookie.startswith("__Host-session=")
    assert "secure" in parts and "path=/" in parts and not any(p.startswith("domain=") for p in parts)
    assert c.get("/staff/", base_url="https://sipas.test").status_code == 200  # the session works


def test_plain_http_development_keeps_the_plain_name(make_app, database_url):
    make_app()
    app = _app(database_url)
    r = app.test_client().post("/staff/login", data={"username": "cookie-admin", "password": PASSWORD})
    assert r.status_code == 302 and _session_cookie(r).startswith("session=")
