"""Paper entry (/staff/entry) is guarded like every staff page: signed in,
idle time-out, no caching."""
import time

from tests.helpers import login


def test_entry_needs_login_and_times_out(sapp, world):
    c = sapp.test_client()
    r = c.get("/staff/entry/")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    login(c, world["users"]["analyst"])
    r = c.get("/staff/entry/")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    with c.session_transaction() as s:
        s["seen_at"] = int(time.time()) - 31 * 60
    r = c.get("/staff/entry/")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
