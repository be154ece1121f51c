"""Sign-in throttling and redirects (issue 11 hole 11), from outside:

(a) parallel wrong passwords are all counted (atomically), never more than the
    limit are checked; (b) the lock is per username x client, the same for
    unknown usernames, and strangers cannot lock `admin` out; a global limit;
(c) the login limiter keeps no raw client address; (d) no `next=` or language
    link leads off the site, and a line break in `next=` is never a 500."""
import re
from urllib.parse import urljoin, urlsplit

import pytest

from tests.factories import PASSWORD, make_user
from tests.helpers import race

MAX = 5  # STAFF_MAX_FAILED_LOGINS (default)


@pytest.fixture
def lapp(make_loaded_app):
    """Rate limiting on (the lock lives in its storage), CSRF off, a roomy per-client rate."""
    app = make_loaded_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, STAFF_LOGIN_RATE="1000 per minute")
    with app.app_context():
        from survey_app.extensions import db

        make_user("admin", role="admin")
        db.session.commit()
    return app


def _client(app, addr="198.51.100.1"):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = addr
    return c


def _try(c, username, password="wrong password"):
    return c.post("/staff/login", data={"username": username, "password": password})


def _failed_logins(app, username="admin"):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import User

    with app.app_context():
        n = db.session.scalar(select(User.failed_logins).where(User.username == username))
        db.session.remove()
        return n


def test_parallel_wrong_passwords_from_one_client_stop_at_the_limit(lapp):
    results = race(20, lambda i: _client(lapp), lambda i, c: _try(c, "admin"))
    codes = [r.status_code if not isinstance(r, BaseException) else repr(r) for r in results]
    assert set(codes) <= {401, 429} and codes.count(429) >= 20 - MAX, codes
    assert _failed_logins(lapp) == MAX  # exactly MAX passwords checked, each counted (none lost)


def test_parallel_wrong_passwords_from_many_clients_lose_no_count(lapp):
    results = race(20, lambda i: _client(lapp, f"198.51.100.{i + 10}"), lambda i, c: _try(c, "admin"))
    codes = [r.status_code if not isinstance(r, BaseException) else repr(r) for r in results]
    assert codes == [401] * 20, codes  # nobody else's failures lock these clients
    assert _failed_logins(lapp) == 20
    assert _try(_client(lapp, "198.51.100.200"), "admin", PASSWORD).status_code == 302
    assert _failed_logins(lapp) == 0


def test_strangers_cannot_lock_admin_out(lapp):
    stranger = _client(lapp, "203.0.113.9")
    codes = [_try(stranger, "admin").status_code for _ in range(MAX + 5)]
    assert codes == [401] * (MAX - 1) + [429] * 6
    assert _try(stranger, "admin", PASSWORD).status_code == 429  # the stranger's client is locked
    assert _try(stranger, "Admin").status_code == 429  # also under another spelling
    r = _try(_client(lapp, "198.51.100.7"), "admin", PASSWORD)
    assert r.status_code == 302 and r.headers["Location"].endswith("/staff/")
    from survey_app.extensions import db
    from survey_app.models import AuditLog

    with lapp.app_context():
        locks = db.session.query(AuditLog).filter_by(action="login_locked").all()
        assert len(locks) == 1 and locks[0].target_id == "admin"
        assert "203.0.113.9" not in str(locks[0].details)


def _normalised(resp, username):
    body = resp.get_data(as_text=True).replace(username, "USER")
    return resp.status_code, re.sub(r'name="csrf_token" value="[^"]*"', "", body)


def test_lockout_reveals_no_username(lapp, monkeypatch):
    from survey_app.services import accounts

    checks = []
    real = accounts.verify_password
    monkeypatch.setattr(accounts, "verify_password", lambda h, p: checks.append(1) or real(h, p))
    seen = {}
    for username, addr in (("admin", "198.51.100.31"), ("no-such-user", "198.51.100.32")):
        c = _client(lapp, addr)
        checks.clear()
        seen[username] = [_normalised(_try(c, username), username) for _ in range(MAX + 2)]
        seen[username + " checks"] = len(checks)
    assert seen["admin"] == seen["no-such-user"]
    assert [s for s, _ in seen["admin"]] == [401] * (MAX - 1) + [429] * 3
    assert seen["admin checks"] == seen["no-such-user checks"] == MAX  # the same password checks, same path


def test_global_limit_over_all_clients(make_loaded_app):
    app = make_loaded_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, STAFF_LOGIN_GLOBAL_RATE="3 per minute")
    codes = [_try(_client(app, f"198.51.100.{50 + i}"), f"user{i}").status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]


def test_login_limiter_keeps_no_raw_client_address(make_loaded_app):
    app = make_loaded_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, STAFF_LOGIN_RATE="3 per minute")
    from survey_app.extensions import limiter

    c = _client(app, "203.0.113.77")
    codes = [_try(c, "admin").status_code for _ in range(4)]
    assert codes[-1] == 429  # the per-client limit is in force
    keys = list(limiter.storage.storage) + list(limiter.storage.expirations)
    assert keys and any("staff-login" in k for k in keys)
    for key in keys:
        assert "203.0.113.77" not in key and "admin" not in key, key


EVIL = ["https://evil.example/", "//evil.example/", "/\\evil.example/", "\\evil.example", "/\\/evil.example",
        "/staff/\\..\\\\evil.example", " /staff/", "/\t/evil.example", "javascript:alert(1)",
        "/staff/\r\nSet-Cookie: x=1", "https:/staff/", "/staff/%0d%0aX: y"]


def _stays_here(url: str) -> bool:
    """Whether a browser following `url` from a page of ours stays on our host
    (browsers read backslashes as slashes and drop tabs and line breaks)."""
    seen_as = re.sub(r"[\t\r\n]", "", url).replace("\\", "/")
    return urlsplit(urljoin("http://sipas.test/staff/login", seen_as)).netloc == "sipas.test"


def test_language_link_on_404_pages_stays_on_the_site(lapp):
    c = lapp.test_client()
    for path in ("/%5Cevil.example/", "/%5C%5Cevil.example/", "//evil.example/", "/%09/evil.example/",
                 "/staff/%5Cevil.example/"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code in (302, 404), (path, r.status_code)
        if r.status_code == 302:
            assert _stays_here(r.headers["Location"]), r.headers["Location"]
            continue
        links = re.findall(r'<a href="([^"]*lang=[^"]*)"', r.get_data(as_text=True))
        assert links, path
        for href in links:
            href = href.replace("&amp;", "&")
            assert _stays_here(href), (path, href)


@pytest.mark.parametrize("target", EVIL)
def test_next_never_leads_off_the_site_nor_500s(lapp, target):
    c = _client(lapp, "198.51.100.90")
    page = c.get("/staff/login", query_string={"next": target})
    assert page.status_code in (200, 400)
    if page.status_code == 200:
        hidden = re.search(r'name="next" value="([^"]*)"', page.get_data(as_text=True)).group(1)
        assert hidden.startswith("/staff/") and _stays_here(hidden), hidden
    r = c.post("/staff/login", data={"username": "admin", "password": PASSWORD, "next": target})
    assert r.status_code in (302, 400), r.status_code
    if r.status_code == 302:
        location = r.headers["Location"]
        assert _stays_here(location) and urlsplit(location).path.startswith("/staff/"), location
        again = c.get("/staff/login", query_string={"next": target})  # signed in: redirected at once
        assert again.status_code in (302, 400)
        if again.status_code == 302:
            assert _stays_here(again.headers["Location"])


def test_line_break_in_a_staff_path_or_next_is_not_a_500(lapp):
    c = lapp.test_client()
    for url in ("/staff/units/a%0d%0aSet-Cookie:x", "/staff/login?next=%0d%0a", "/staff/%0a?next=/staff/%0a"):
        r = c.get(url)
        assert r.status_code in (302, 400, 404), (url, r.status_code)
        assert "\n" not in r.headers.get("Location", "") and "\r" not in r.headers.get("Location", "")
