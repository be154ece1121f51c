"""Only POST ever writes (issue 11, hole 1: HEAD stuffing).

An attacker from outside walks EVERY route of the app with every method and a
valid-looking form body (answers, a fresh idempotency key, a CSRF token scraped
from a real page, a real username and password).  Nothing may be written
(responses, answers, audit log, users' failed-login counters, any table)
except by a POST that carries a valid CSRF token, and nothing answers 500.
"""
from __future__ import annotations

import re

import pytest

from tests.factories import (
    PASSWORD,
    make_case,
    make_exclusion_request,
    make_place,
    make_response,
    make_snapshot,
    make_user,
)
from tests.helpers import ANSWERS, fingerprint, login, route_path, scrape

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
WRITE_WITHOUT_CSRF = ("HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "GET")

#: Audit rows a GET may write: recording who READ microdata is the audit, not
#: a change of any figure (the export of a unit's responses, of a report).
READ_AUDITS = {"export_responses", "export_report"}


@pytest.fixture
def target(make_loaded_app):
    """An app with CSRF on and the default login limit; a counter, a response,
    an admin and a victim account."""
    app = make_loaded_app(RATELIMIT_ENABLED=False)
    from survey_app.extensions import db
    from survey_app.models import Counter, Unit

    with app.app_context():
        place = make_place()
        unit = db.session.get(Unit, place.unit_id)
        counter = db.session.get(Counter, place.counter_id)
        resp = make_response(unit, counter=counter)
        make_user("walker-admin", role="admin")
        victim = make_user("victim", role="unit_leader", unit=unit)
        req = make_exclusion_request(resp, victim)
        case_id = make_case(unit, resp).id  # /staff/cases/<case_id> (issue 14.6)
        snap = make_snapshot(unit, status="accepted")
        db.session.commit()
        from tests.factories import make_api_client

        api_client = make_api_client(unit)[0]  # /staff/admin/api/<cid>/revoke (issue 12)
        from tests.factories import make_webhook_delivery

        delivery = make_webhook_delivery(api_client, unit)  # /staff/admin/api/deliveries/<did>/resend
        db.session.commit()
        args = {"token": place.token, "code": unit.code, "ccode": counter.code, "rid": str(resp.id),
                "year": 2025, "uid": victim.id, "tid": 1, "name": "elements", "fmt": "svg", "filename": "public.js",
                "cid": api_client.id, "did": delivery.id, "req_id": req.id, "sid": snap.id, "other": snap.id,
                "case_id": case_id}
    return app, place, args


def _urls(app, args):
    out = []
    for rule in app.url_map.iter_rules():
        missing = [a for a in rule.arguments if a not in args]
        assert not missing, f"the walker has no value for {rule.rule} {missing}: add one"
        path = route_path(rule, args)
        out.append(path)
    return sorted(set(out))


def _body(client, place, password):
    hidden = scrape(client.get(place.url).get_data(as_text=True))
    return dict(ANSWERS, **hidden, username="victim", password=password, next="/staff/")


def _audit_actions(app):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import AuditLog

    with app.app_context():
        rows = [a for a in db.session.scalars(select(AuditLog.action))]
        db.session.remove()
        return rows


@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_no_method_but_post_with_csrf_writes_anything(target, who):
    app, place, args = target
    client = app.test_client()
    if who == "admin":
        # sign in through the real form (with its CSRF token)
        page = client.get("/staff/login").get_data(as_text=True)
        tok = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = client.post("/staff/login", data={"username": "walker-admin", "password": PASSWORD,
                                              "csrf_token": tok})
        assert r.status_code == 302
    urls = _urls(app, args)
    assert "/c/" + place.token in urls and "/staff/login" in urls
    problems = []
    for url in urls:
        for method in METHODS:
            for password in (PASSWORD, "wrong-password"):
                body = _body(client, place, password)
                if method == "POST":
                    body.pop("csrf_token")  # a POST without its CSRF token is an outsider too
                before = fingerprint(app)
                audits_before = _audit_actions(app)
                try:
                    r = client.open(url, method=method, data=body)
                    r.get_data()
                    r.close()  # a streamed export keeps its context until closed
                except Exception as exc:  # noqa: BLE001 - TESTING propagates what would be a 500
                    problems.append(f"{method} {url}: raised {type(exc).__name__}")
                else:
                    if r.status_code >= 500:
                        problems.append(f"{method} {url}: {r.status_code}")
                after = fingerprint(app)
                if after != before:
                    new = _audit_actions(app)[len(audits_before):]
                    changed = sorted(t for t in after if after[t] != before[t])
                    if not (method == "GET" and changed == ["audit_log"] and set(new) <= READ_AUDITS):
                        problems.append(f"{method} {url} ({'right' if password == PASSWORD else 'wrong'} "
                                        f"password) wrote {changed} {new}")
    assert not problems, "\n".join(problems)


def test_head_to_the_form_is_the_get_page_and_stores_nothing(target):
    app, place, _args = target
    client = app.test_client()
    for url in (place.url, place.kiosk_url):
        body = _body(client, place, PASSWORD)
        r = client.head(url, data=body)
        assert r.status_code == 400 and r.get_data() == b""
        assert client.head(url).status_code == 200  # HEAD without a body is the GET page
    from tests.helpers import responses

    assert len(responses(app)) == 1  # the seeded one only


def test_head_to_login_does_not_sign_in_nor_count(target):
    app, place, _args = target
    client = app.test_client()
    for password in (PASSWORD, "wrong-password"):
        r = client.head("/staff/login", data=_body(client, place, password))
        assert r.status_code == 400
        assert client.get("/staff/").status_code in (302, 401)  # still signed out
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import User

    with app.app_context():
        assert db.session.scalar(select(User.failed_logins).where(User.username == "victim")) in (0, None)
    # and HEAD without a body shows the sign-in page's headers, as GET
    assert client.head("/staff/login").status_code == 200
    assert login(client, "victim").status_code == 400  # a POST still needs its CSRF token
