"""One input-cleaning layer for every staff request (issue 11, hole 10).

NUL bytes, control characters and huge integers in staff query strings and
forms, and a `next=` with a line break, used to give 500s (two before login).
An attacker walks every staff route with such values in every parameter the
staff pages read: never a 500; NUL / control characters are refused with 400
and a message in Vietnamese."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import make_case, make_exclusion_request, make_place, make_response, make_snapshot, make_user
from tests.helpers import login, route_path
from tests.reliability.fuzz_strategies import budget

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
        case_id = make_case(unit, resp).id  # /staff/cases/<case_id> (issue 14.6)
        snap = make_snapshot(unit, status="submitted")
        db.session.commit()
        from tests.factories import make_api_client, make_webhook_delivery

        api_client = make_api_client(unit)[0]
        delivery = make_webhook_delivery(api_client, unit)
        db.session.commit()
        args = {"code": unit.code, "ccode": counter.code, "rid": str(resp.id), "year": 2025, "uid": admin.id, "tid": 1,
                "name": "elements", "fmt": "svg", "cid": api_client.id, "did": delivery.id,
                "req_id": req.id, "sid": snap.id, "other": snap.id, "token": "t" * 24, "case_id": case_id}
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


# ------------------------------------------------------------------ hypothesis over the staff routes

_VALUES = st.one_of(
    st.text(max_size=40),                                   # any unicode, control characters included
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str),
    st.sampled_from(["2025", "2025-Q1", "2025-H1", "cal:2025", "2025-03", "1", "0", "-1", "", "..", "%00",
                     "/staff/", "//evil.example", "\\evil.example", "9" * 40, "1e308", "nan"]),
)


@budget(40)
@given(data=st.data())
def test_hypothesis_query_strings_on_every_staff_get_route_never_500(staff_target, data):
    """Random query strings (any parameter the pages read, any value) on any staff
    GET route, signed in as an administrator: a page, a redirect or a clear 4xx."""
    app, args = staff_target
    client = app.test_client()
    assert login(client, "probe-admin").status_code == 302
    urls = [u for u, methods in _staff_urls(app, args) if "GET" in methods and u != "/staff/logout"]
    url = data.draw(st.sampled_from(urls), label="url")
    params = data.draw(st.dictionaries(st.sampled_from(PARAMS), _VALUES, max_size=6), label="query")
    try:
        r = client.get(url, query_string=params)
        r.get_data()
        r.close()
        status = r.status_code
    except Exception as exc:  # noqa: BLE001 - TESTING propagates what would be a 500
        raise AssertionError(f"GET {url} {params!r} raised {type(exc).__name__}: {exc}") from exc
    assert status < 500, f"GET {url} {params!r}: {status}"


def test_every_staff_page_has_a_plain_title(staff_target):
    """Each staff HTML page the administrator opens has a short <title> of text
    (a template that opened its title block and never closed it put a whole
    section of the admin API page into the title)."""
    import re

    app, args = staff_target
    client = app.test_client()
    assert login(client, "probe-admin").status_code == 302
    problems = []
    for path, methods in _staff_urls(app, args):
        if "GET" not in methods or path.startswith("/staff/logout"):
            continue
        r = client.get(path)
        body = r.get_data().decode("utf-8", "replace")  # consume and close streamed responses (exports)
        r.close()
        if r.status_code != 200 or r.mimetype != "text/html":
            continue
        m = re.search(r"<title>(.*?)</title>", body, re.S)
        if m is None or "<" in m.group(1) or len(m.group(1)) > 200:
            problems.append(f"{path}: {m.group(1)[:80] if m else 'no title'!r}")
    assert problems == []
