"""The access matrix: every role × a unit inside / outside its scope × every
staff route and export → allowed, 403 (role may not) or 404 (outside scope)."""
import pytest

from survey_app.services.accounts import PERMISSIONS
from tests.factories import ROLES
from tests.helpers import login

# (method, url template, permission, takes a unit)
UNIT_ROUTES = [
    ("GET", "/staff/units/{u}", "view"),
    ("GET", "/staff/units/{u}/charts/elements.svg", "view"),
    ("GET", "/staff/units/{u}/charts/distribution.svg", "view"),
    ("GET", "/staff/units/{u}/responses.csv", "export"),
    ("GET", "/staff/units/{u}/posters", "posters"),
    ("GET", "/staff/units/{u}/counters/{c}/poster.png", "posters"),
    ("POST", "/staff/units/{u}/counters/{c}/rotate", "rotate_token"),
    ("POST", "/staff/units/{u}/responses/{r}/exclusion", "exclude"),
    ("POST", "/staff/units/{u}/responses/{r}/inclusion", "exclude"),
]
GLOBAL_ROUTES = [
    ("GET", "/staff/", "view"),
    ("GET", "/staff/report/{y}", "report"),
    ("GET", "/staff/report/{y}.xlsx", "report"),
    ("GET", "/staff/report/{y}.csv", "report"),
    ("GET", "/staff/data/import", "import"),
    ("GET", "/staff/admin/", "admin"),
    ("GET", "/staff/admin/units", "admin"),
    ("GET", "/staff/admin/units/{u}", "admin"),
    ("GET", "/staff/admin/users", "admin"),
    ("GET", "/staff/admin/targets", "admin"),
    ("GET", "/staff/admin/audit", "admin"),
    ("GET", "/staff/exclusions", "approve_exclusions"),
]


def _call(client, method, url):
    if method == "GET":
        return client.get(url)
    return client.post(url, data={"reason": "phiếu trùng lặp"})


def test_access_matrix(sapp, world):
    problems = []
    from survey_app.extensions import db
    from survey_app.models import Response, Unit

    with sapp.app_context():  # a response of the outside unit, for the exclusion route
        y = db.session.query(Unit).filter_by(code="Q-Y").one()
        outside_resp = str(db.session.query(Response.id).filter_by(unit_id=y.id).first()[0])
    for role in ROLES:
        client = sapp.test_client()
        assert login(client, world["users"][role]).status_code == 302
        for where in ("inside", "outside"):
            unit = world[where]
            counter = world["counter_in" if where == "inside" else "counter_out"]
            rid = world["flagged"] if where == "inside" else outside_resp
            allowed_scope = role == "admin" or where == "inside"
            for method, tpl, perm in UNIT_ROUTES:
                url = tpl.format(u=unit, c=counter, r=rid)
                got = _call(client, method, url).status_code
                if role not in PERMISSIONS[perm]:
                    want = {403}
                elif not allowed_scope:
                    want = {404}
                else:  # an exclusion request may meet one already waiting, or a response already counted: 409
                    want = {200, 302, 409} if "/responses/" in tpl else {200, 302}
                if got not in want:
                    problems.append(f"{role} {where} {method} {url}: {got}, expected {sorted(want)}")
        for method, tpl, perm in GLOBAL_ROUTES:
            url = tpl.format(y=world["year"], u=world["outside"])
            got = _call(client, method, url).status_code
            want = {200} if role in PERMISSIONS[perm] else {403}
            if got not in want:
                problems.append(f"{role} {method} {url}: {got}, expected {sorted(want)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ["unit_leader", "analyst"])
def test_scoped_pages_reveal_nothing_outside(sapp, world, as_role, role):
    c = as_role(role)
    pages = ["/staff/", "/staff/units/P-A"]
    if role in PERMISSIONS["report"]:
        pages += [f"/staff/report/{world['year']}", f"/staff/report/{world['year']}.csv"]
    if role in PERMISSIONS["export"]:
        pages.append("/staff/units/P-A/responses.csv")
    for url in pages:
        body = c.get(url).get_data(as_text=True)
        assert "Q-Y" not in body and "SECRET-Y" not in body and "Ngoài Phạm Vi" not in body, url


def test_anonymous_is_sent_to_login(sapp, world):
    c = sapp.test_client()
    for url in ["/staff/", "/staff/units/P-A", "/staff/units/P-A/responses.csv", f"/staff/report/{world['year']}.xlsx",
                "/staff/admin/users"]:
        r = c.get(url)
        assert r.status_code == 302 and "/staff/login" in r.headers["Location"], url
    r = c.post(f"/staff/units/P-A/responses/{world['flagged']}/exclusion", data={"action": "exclude"})
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]


def test_logged_out_cookie_replayed_is_refused(sapp, world):
    c = sapp.test_client()
    assert login(c, world["users"]["analyst"]).status_code == 302
    assert c.get("/staff/").status_code == 200
    cookie = c.get_cookie("session").value
    assert c.post("/staff/logout").status_code == 302
    assert c.get("/staff/").status_code == 302
    thief = sapp.test_client()
    thief.set_cookie("session", cookie)
    r = thief.get("/staff/")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    assert thief.get("/staff/units/P-A/responses.csv").status_code == 302


def test_bad_ids_never_500(sapp, world, as_role):
    c = as_role("admin")
    for url in ["/staff/units/" + "x" * 300, "/staff/units/NOPE", "/staff/units/P-A/charts/nope.svg",
                "/staff/report/99999", "/staff/report/abc", "/staff/units/P-A/counters/NOPE/poster.png",
                "/staff/units/P-A/counters/P-A-Q1/poster.exe", "/staff/admin/units/NOPE",
                "/staff/?period=garbage&sort=evil&dir=sideways&page=-4&kind=zzz",
                "/staff/units/P-A?period=2025-Q9&cpage=abc&element=x&rating=y"]:
        assert c.get(url).status_code in (200, 302, 404), url
    assert c.post("/staff/units/P-A/responses/not-a-uuid/exclusion", data={"action": "exclude"}).status_code == 404
    assert c.post(f"/staff/units/P-A/responses/{world['flagged']}/exclusion",
                  data={"reason": "x" * 501}).status_code == 400  # too long: refused, not cut
    assert c.post("/staff/admin/users/99999", data={}).status_code == 404
    assert c.post("/staff/admin/users/99999/unlock", data={}).status_code == 404
    assert c.post("/staff/admin/targets/x/delete", data={}).status_code == 404
    assert c.post("/staff/admin/targets/99999/delete", data={}).status_code == 404


def test_bad_form_input_is_a_400_with_a_translated_message(sapp, world, as_role):
    c = as_role("admin")
    cases = [
        ("/staff/admin/units/new", {"code": "P-Z", "name_vi": "Xã Z", "kind": "commune", "valid_from": "2025-13-45"},
         "Ngày viết theo dạng YYYY-MM-DD."),
        ("/staff/admin/units/new", {"code": "P-Z", "name_vi": "Xã Z", "kind": "planet"}, "Chọn loại đơn vị."),
        ("/staff/admin/units/new", {"code": "P-A", "name_vi": "Xã Z", "kind": "commune"}, "P-A"),
        ("/staff/admin/targets", {"year": "năm nay", "target": "90"}, "Nhập năm và mục tiêu"),
        ("/staff/admin/targets", {"year": "2026", "target": "chín mươi"}, "Nhập năm và mục tiêu"),
        ("/staff/admin/calendar", {"cutoff_day": "x", "cutoff_month": "12"}, "Nhập ngày và tháng chốt số liệu hợp lệ."),
        ("/staff/admin/users", {"username": "", "role": "boss", "password": "mot mat khau dai"}, "Chọn vai trò."),
        ("/staff/admin/units/P-A/counters", {"code": "", "name_vi": ""}, "Nhập mã và tên quầy."),
        ("/staff/data/import", {"kind": "volumes"}, "Chọn tệp CSV để nhập."),
    ]
    for url, data, words in cases:
        r = c.post(url, data=data)
        assert r.status_code == 400, (url, data, r.status_code)
        assert words in r.get_data(as_text=True), (url, data)
