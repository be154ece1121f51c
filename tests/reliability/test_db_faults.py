"""Database faults under the running app, with real databases.

PostgreSQL: the test starts its own throw-away server (initdb in a temp dir,
its own port), stops it while citizens submit, and starts it again.  While it
is down the citizen gets a 503 "please try again" page that keeps their
answers (never a thank-you), the staff pages and /healthz say 503 without a
traceback; once it is back the same app (no restart: pool_pre_ping) stores the
retried submission exactly once (the form's idempotency key).

SQLite: the same promises when the database file becomes read-only or the
disk is full (SQLite's own limits: `PRAGMA query_only`, `PRAGMA
max_page_count`), switched on and off under the running app.
"""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.factories import make_place
from tests.helpers import ANSWERS, count, disposing, form_fields, scrape, standalone_app

PASSWORD = "correct horse 42"


def _post(client, url, hidden, answers=ANSWERS):
    data = dict(hidden)
    data.update(answers)
    return client.post(url, data=data)


def _assert_please_try_again(resp, answers=ANSWERS):
    """The 503 page of a failed submission: no thank-you, and a form that
    sends the citizen's answers (and the same idempotency key) again.
    Returns what pressing its button would post."""
    html = resp.get_data(as_text=True)
    assert resp.status_code == 503, (resp.status_code, html[:300])
    assert "Location" not in resp.headers, "a failed save must not redirect to the thank-you page"
    assert "Traceback" not in html
    fields = form_fields(html)
    lost = {k: v for k, v in answers.items() if fields.get(k, "").strip() != v.strip()}
    assert not lost, f"the citizen's answers must be kept on the 503 page; lost: {sorted(lost)}"
    return fields


def _resend(client, url, fields):
    """Press the button of a kept form: post exactly what it holds."""
    return client.post(url, data=fields)


def _staff_client(app, unit_id):
    from survey_app.extensions import db
    from survey_app.models import Unit
    from tests.factories import make_user

    with app.app_context():
        make_user(username="fault-analyst", role="analyst", unit=db.session.get(Unit, unit_id),
                  password=PASSWORD)
        db.session.commit()
        db.session.remove()
    c = app.test_client()
    page = c.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = c.post("/staff/login", data={"username": "fault-analyst", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return c


def _responses(app) -> int:
    from survey_app.models import Response

    return count(app, Response)


# ------------------------------------------------------------------ PostgreSQL stopped and restarted

@pytest.fixture(scope="module")
def throwaway_pg(request):
    if request.config.getoption("--db") != "postgresql":
        pytest.skip("the PostgreSQL fault tests run in the --db postgresql run")
    from tests.pgserver import ThrowawayPostgres

    try:
        server = ThrowawayPostgres()
        server.start()
    except Exception as exc:  # noqa: BLE001
        import os

        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip(f"cannot start a throw-away PostgreSQL: {exc}")
    yield server
    server.cleanup()


@pytest.fixture
def pg_world(throwaway_pg):
    """An app on a new database of the throw-away server, a counter, a signed-in
    analyst; the server is running again when the test ends."""
    from tests.helpers import create_pg_database, drop_pg_database

    url = create_pg_database(throwaway_pg.url)
    app = standalone_app(url)  # the default engine options: pool_pre_ping on
    with disposing(app):
        with app.app_context():
            place = make_place()
        staff = _staff_client(app, place.unit_id)
        yield app, place, staff
        from tests.pgserver import reachable

        if not reachable("127.0.0.1", throwaway_pg.port):
            throwaway_pg.start()
    drop_pg_database(url)


@pytest.mark.postgresql
def test_postgresql_down_and_back(pg_world, throwaway_pg):
    """503 while down (never a thank-you, nothing stored), recovery without a
    restart, and each retried submission stored exactly once."""
    app, place, staff = pg_world
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping") is True
    citizen, kiosk = app.test_client(), app.test_client()

    # Up: a normal submission, staff page and health.
    r = _post(citizen, place.url, scrape(citizen.get(place.url).get_data(as_text=True)))
    assert r.status_code == 303 and "/thanks" in r.headers["Location"]
    assert staff.get("/staff/").status_code == 200
    assert citizen.get("/healthz").status_code == 200
    assert _responses(app) == 1

    # Forms opened before the outage, sent during it (twice: "Send" pressed again).
    hidden = scrape(citizen.get(place.url).get_data(as_text=True))
    k_hidden = scrape(kiosk.get(place.kiosk_url).get_data(as_text=True))
    throwaway_pg.stop("fast")
    try:
        for client, url, h in ((citizen, place.url, hidden), (citizen, place.url, hidden),
                               (kiosk, place.kiosk_url, k_hidden)):
            r = _post(client, url, h)
            body = r.get_data(as_text=True)
            assert r.status_code == 503, (r.status_code, body[:300])
            assert "Location" not in r.headers, "a failed save must not redirect to the thank-you page"
            assert "Traceback" not in body
        h = citizen.get("/healthz")
        assert h.status_code == 503
        s = staff.get("/staff/")
        assert s.status_code == 503
        assert "Traceback" not in s.get_data(as_text=True)
        g = citizen.get(place.url)
        assert g.status_code == 503 and "Traceback" not in g.get_data(as_text=True)
    finally:
        throwaway_pg.start()

    # Back: the same app, no restart.  Each retry is stored once, however often it is sent.
    assert citizen.get("/healthz").status_code == 200
    for _ in range(2):
        r = _post(citizen, place.url, hidden)
        assert r.status_code == 303 and "/thanks" in r.headers["Location"]
    r = _post(kiosk, place.kiosk_url, k_hidden)
    assert r.status_code == 303
    assert staff.get("/staff/").status_code == 200
    assert _responses(app) == 3


@pytest.mark.postgresql
def test_postgresql_down_keeps_the_citizens_answers(pg_world, throwaway_pg):
    app, place, staff = pg_world
    citizen = app.test_client()
    hidden = scrape(citizen.get(place.url).get_data(as_text=True))
    throwaway_pg.stop("fast")
    try:
        kept = _assert_please_try_again(_post(citizen, place.url, hidden))
        assert kept.get("k") == hidden["k"], "the retry must carry the same idempotency key"
    finally:
        throwaway_pg.start()
    for _ in range(2):
        r = _resend(citizen, place.url, kept)
        assert r.status_code == 303 and "/thanks" in r.headers["Location"]
    assert _responses(app) == 1


# ------------------------------------------------------------------ SQLite read-only and disk full

class SqliteSwitch:
    """Applies a PRAGMA to every connection the app checks out, so the fault
    starts and ends under the running app (its pool kept)."""

    def __init__(self, app):
        from survey_app.extensions import db

        self.mode = None
        with app.app_context():
            self.engine = db.engine
            with db.engine.connect() as conn:
                self.pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        sa.event.listen(self.engine, "checkout", self._checkout)

    def _checkout(self, dbapi_conn, record, proxy):
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA query_only = {1 if self.mode == 'readonly' else 0}")
            if self.mode == "full":
                pages = cur.execute("PRAGMA page_count").fetchone()[0]
                cur.execute(f"PRAGMA max_page_count = {pages}")
            else:
                cur.execute("PRAGMA max_page_count = 1073741823")
        finally:
            cur.close()

    def close(self):
        sa.event.remove(self.engine, "checkout", self._checkout)


@pytest.fixture
def sqlite_app(tmp_path):
    # A small page size: one comment needs new pages, as on a really full disk.
    import sqlite3

    path = tmp_path / "fault.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size = 512")
    conn.execute("VACUUM")  # the page size takes effect when the file is written
    conn.close()
    app = standalone_app(f"sqlite:///{path}")
    with disposing(app):
        yield app


@pytest.mark.parametrize("mode", ["readonly", "full"])
def test_sqlite_read_only_or_full(sqlite_app, mode):
    app = sqlite_app
    with app.app_context():
        place = make_place()
    staff = _staff_client(app, place.unit_id)
    citizen = app.test_client()
    switch = SqliteSwitch(app)
    try:
        hidden = scrape(citizen.get(place.url).get_data(as_text=True))
        switch.mode = mode
        long_answers = dict(ANSWERS, comment=ANSWERS["comment"] + " Ý kiến dài. " * 60)
        kept = _assert_please_try_again(_post(citizen, place.url, hidden, long_answers), long_answers)
        assert kept.get("k") == hidden["k"]
        assert _responses(app) == 0, "nothing half-written"
        # Reading still works: the form and the staff pages open, health is honest about reads.
        assert citizen.get(place.url).status_code == 200
        assert staff.get("/staff/").status_code == 200  # reads work; only writes fail
        switch.mode = None
        for _ in range(2):
            r = _resend(citizen, place.url, kept)
            assert r.status_code == 303 and "/thanks" in r.headers["Location"]
        assert _responses(app) == 1
    finally:
        switch.close()
