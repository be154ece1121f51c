"""One input-cleaning layer for every staff request (issue 11, hole 10).

NUL bytes, control characters and huge integers in staff query strings and
forms, and a `next=` with a line break, used to give 500s (two before login).
An attacker walks every staff route with such values in every parameter the
staff pages read: never a 500; NUL / control characters are refused with 400
and a message in Vietnamese."""
from __future__ import annotations

import pytest

from tests.factories import make_exclusion_request, make_place, make_response, make_user
from tests.helpers import login, route_path

#: Every query / form parameter a staff page reads (kept in step with the views by the walk below).
PARAMS = ("period", "year", "view", "units", "sort", "dir", "q", "trend", "kind", "element", "rating", "actor",
          "action", "code", "name_vi", "name_en", "kiosk", "reason", "saved", "page", "next", "counter",
          "instrument", "channel", "date", "username", "password", "role", "unit", "parent_code")
BAD = {"nul": "a\x00", "control": "a\x01b", "newline": "/staff/\r\nSet-Cookie: x=1", "huge": "9" * 40,
       "negative-huge": "-" + "9" * 40}


@pytest.fixture
def staff_target(make_loaded_app):
    app = make_loaded_app(RATELIMIT_ENABLED=False, WTF_CSRF_ENABLED=False)
    from survey_app.extensions import db
    from survey_app.models import Counter, Unit

    with app.app_context():
        place = make_place()
        unit = db.session.get(Unit, place.unit_id)
        counter = db.session.get(Counter, place.counter_id)
        resp = make_response(unit, counter=counter)
        admin = make_user("probe-admin", role="admin")
        req = make_exclusion_request(resp, make_user("probe-leader", role="unit_leader", unit=unit))
        db.session.commit()
        args = {"code": unit.code, "ccode": counter.code, "rid": str(resp.id), "year": 2025, "uid": admin.id, "tid": 1,
                "name": "elements", "fmt": "svg", "req_id": req.id}
    return app, args


def _staff_urls(app, args):
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/staff"):
            continue
        path = route_path(rule, args)
        out.append((path, sorted(rule.methods - {"HEAD", "OPTIONS"})))
    return out


def _call(client, method, url, value, problems, label):
    params = {p: value for p in PARAMS}
    try:
        if method == "GET":
            r = client.get(url, query_string=params)
        else:
            r = client.post(url, data=params, query_string={"next": value})
    except Exception as exc:  # noqa: BLE001 - TESTING propagates what would be a 500
        problems.append(f"{label}: raised {type(exc).__name__}: {exc}"[:200])
        return None
    r.get_data()
    r.close()  # a streamed export keeps its context until closed
    if r.status_code >= 500:
        problems.append(f"{label}: {r.status_code}")
    return r


@pytest.mark.parametrize("signed_in", [False, True], ids=["before-login", "admin"])
def test_bad_values_in_every_staff_parameter_never_500(staff_target, signed_in):
    app, args = staff_target
    client = app.test_client()
    if signed_in:
        assert login(client, "probe-admin").status_code == 302
    problems = []
    for url, methods in _staff_urls(app, args):
        if url == "/staff/logout":
            continue  # would end the signed-in walk
        for method in methods:
            for name, value in BAD.items():
                r = _call(client, method, url, value, problems, f"{method} {url} [{name}]")
                if r is not None and name in ("nul", "control", "newline"):
                    if r.status_code != 400:
                        problems.append(f"{method} {url} [{name}]: {r.status_code}, not refused")
                    elif "Yêu cầu có ký tự không hợp lệ" not in r.get_data(as_text=True):
                        problems.append(f"{method} {url} [{name}]: 400 without the message")
    assert not problems, "\n".join(problems)


def test_login_with_nul_username_and_newline_next(staff_target):
    app, _args = staff_target
    client = app.test_client()
    r = client.post("/staff/login", data={"username": "a\x00", "password": "x"})
    assert r.status_code == 400
    r = client.get("/staff/login", query_string={"next": "/staff/\nLocation: //evil.example"})
    assert r.status_code == 400
    # a clean request still works
    assert client.get("/staff/login?next=/staff/report").status_code == 200
    assert login(client, "probe-admin").status_code == 302


def test_huge_integers_in_the_path_and_query(staff_target):
    app, _args = staff_target
    client = app.test_client()
    assert login(client, "probe-admin").status_code == 302
    for url in ("/staff/report/" + "9" * 30, "/staff/report/99999", "/staff/report/0",
                "/staff/report/" + "9" * 30 + ".csv", "/staff/report/99999.xlsx",
                "/staff/admin/users/" + "9" * 30, "/staff/report?year=" + "9" * 30,
                "/staff/units/XA-TP?period=" + "9" * 30, "/staff/admin/audit?page=" + "9" * 30):
        try:
            r = client.get(url)
            r.get_data()
            r.close()
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"{url} raised {exc!r}")
        assert r.status_code < 500, url
