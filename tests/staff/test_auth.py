"""Sign-in, sign-out, time-outs and throttling."""
import re

from tests.factories import PASSWORD
from tests.helpers import login


def test_login_page_and_wrong_password(sapp, world):
    c = sapp.test_client()
    r = c.get("/staff/login")
    assert r.status_code == 200 and 'name="username"' in r.get_data(as_text=True)
    r = login(c, world["users"]["analyst"], "wrong password")
    assert r.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu" in r.get_data(as_text=True)
    r = login(c, "nobody-here", "whatever")
    assert r.status_code == 401  # same answer for an unknown user
    assert login(c, world["users"]["analyst"]).status_code == 302


def test_lockout_after_repeated_failures(make_app, world, frozen_clock):
    app = make_app(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=True, STAFF_LOGIN_RATE="1000 per minute")
    c = app.test_client()
    name = world["users"]["unit_leader"]
    for _ in range(4):
        assert login(c, name, "nope").status_code == 401
    r = login(c, name, "nope")
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 15 * 60
    assert "khóa" in r.get_data(as_text=True)
    r = login(c, name)  # even the right password waits for the lock to end, from this client
    assert r.status_code == 429
    from survey_app.extensions import db
    from survey_app.models import AuditLog

    with app.app_context():
        assert db.session.query(AuditLog).filter_by(action="login_locked").count() == 1
    frozen_clock.shift(15 * 60 + 1)  # the lock window ends (STAFF_LOCK_SECONDS)
    assert login(c, name).status_code == 302


def test_login_rate_limit_per_client(make_app):
    app = make_app(WTF_CSRF_ENABLED=False, STAFF_LOGIN_RATE="3 per minute", RATELIMIT_ENABLED=True)
    c = app.test_client()
    codes = [login(c, "nobody", "x").status_code for _ in range(4)]
    assert codes[:3] == [401, 401, 401] and codes[3] == 429


def test_next_is_kept_and_safe(sapp, world):
    c = sapp.test_client()
    r = c.get("/staff/units/P-A")
    assert "/staff/login?next=/staff/units/P-A" in r.headers["Location"]
    r = c.post("/staff/login?next=/staff/units/P-A", data={"username": world["users"]["admin"], "password": PASSWORD,
                                                             "next": "/staff/units/P-A"})
    assert r.headers["Location"].endswith("/staff/units/P-A")
    c2 = sapp.test_client()
    r = c2.post("/staff/login", data={"username": world["users"]["admin"], "password": PASSWORD,
                                       "next": "https://evil.example/"})
    assert r.headers["Location"].endswith("/staff/")


def test_idle_and_absolute_timeouts(sapp, world):
    import time

    c = sapp.test_client()
    login(c, world["users"]["analyst"])
    with c.session_transaction() as s:
        s["seen_at"] = int(time.time()) - 31 * 60
    r = c.get("/staff/")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    login(c, world["users"]["analyst"])
    with c.session_transaction() as s:
        s["login_at"] = int(time.time()) - 13 * 3600
    assert c.get("/staff/").status_code == 302
    login(c, world["users"]["analyst"])
    assert c.get("/staff/").status_code == 200


def test_logout_needs_post_and_csrf(make_app, world):
    app = make_app(STAFF_LOGIN_RATE="1000 per minute")  # CSRF on
    c = app.test_client()
    page = c.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = c.post("/staff/login", data={"username": world["users"]["analyst"], "password": PASSWORD,
                                      "csrf_token": token})
    assert r.status_code == 302
    page = c.get("/staff/").get_data(as_text=True)
    assert 'action="/staff/logout"' in page
    assert c.get("/staff/logout").status_code == 405
    assert c.post("/staff/logout").status_code == 400  # no CSRF token
    assert c.get("/staff/").status_code == 200  # still signed in
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert c.post("/staff/logout", data={"csrf_token": token}).status_code == 302
    assert c.get("/staff/").status_code == 302


def test_password_change_revokes_other_sessions(sapp, world, as_role):
    victim = as_role("analyst")
    admin = as_role("admin")
    from survey_app.extensions import db
    from survey_app.models import User

    with sapp.app_context():
        uid = db.session.query(User).filter_by(username=world["users"]["analyst"]).one().id
    r = admin.post(f"/staff/admin/users/{uid}", data={"role": "analyst", "unit_code": "P", "active": "1",
                                                       "password": "a brand new password"})
    assert r.status_code == 302
    assert victim.get("/staff/").status_code == 302
    assert login(sapp.test_client(), world["users"]["analyst"], "a brand new password").status_code == 302
