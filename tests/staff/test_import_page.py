"""The import page (issue 11, hole 6): the scope check cannot be side-stepped
by the header's spelling, volumes can be replaced only on purpose, and a body
is refused by its size before it is read — before sign-in at all."""
import io

import pytest
from sqlalchemy import func, select

from survey_app.extensions import db
from survey_app.models import AuditLog, Volume

VOL_HEAD = b"unit_code,period_start,period_end,stratum,transactions\n"


def _post(client, data: bytes, kind="volumes", **extra):
    return client.post("/staff/data/import", data=dict({"kind": kind, "file": (io.BytesIO(data), "f.csv")}, **extra),
                       content_type="multipart/form-data")


def _volumes(app) -> list[int]:
    with app.app_context():
        return sorted(db.session.scalars(select(Volume.transactions)))


def test_a_space_in_the_header_does_not_open_other_units(sapp, world, as_role):
    before = _volumes(sapp)
    c = as_role("analyst")  # scoped to province P; Q-Y is outside
    r = _post(c, VOL_HEAD.replace(b"unit_code", b" unit_code") + b"Q-Y,2030-01-01,2030-01-31,_all,999\n")
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "đơn vị Q-Y nằm ngoài phạm vi" in html and "<td>unit_code</td>" in html
    resp = (b"response_id, unit_code ,submitted_at,channel,instrument,stratum,excluded,overall\n"
            b",Q-Y,2030-01-01T09:00:00+07:00,paper,,,,1\n")
    r = _post(c, resp, kind="responses")
    assert r.status_code == 422 and "đơn vị Q-Y nằm ngoài phạm vi" in r.get_data(as_text=True)
    assert _volumes(sapp) == before


def test_replacing_volumes_needs_the_box_and_is_audited(sapp, world, as_role):
    c = as_role("analyst")
    year = b"P-B,2030-01-01,2030-12-31,_all,5391\n"
    assert _post(c, VOL_HEAD + year).status_code == 200
    july = VOL_HEAD + b"P-B,2030-07-01,2030-07-31,_all,200\n"
    r = _post(c, july)
    assert r.status_code == 422 and "trùng thời gian với kỳ 2030-01-01–2030-12-31 đã có (5391 hồ sơ)" in \
        r.get_data(as_text=True)
    r = _post(c, july, replace="y")
    assert r.status_code == 200 and "Đã nhập 1 dòng" in r.get_data(as_text=True)
    assert 5391 not in _volumes(sapp) and 200 in _volumes(sapp)
    with sapp.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "replace_volumes"))
        assert entry.actor == world["users"]["analyst"] and entry.details["rows"][0]["transactions"] == 5391


def test_year_one_in_a_file_is_a_row_error_not_a_500(sapp, world, as_role):
    resp = (b"response_id,unit_code,submitted_at,channel,instrument,stratum,excluded,overall\n"
            b",P-A,0001-01-01T00:00:00Z,paper,,,,5\n,P-A,9999-12-31T23:59:59-01:00,paper,,,,5\n")
    r = _post(as_role("analyst"), resp, kind="responses")
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and html.count("không nằm trong khoảng năm 2000–2099") == 2


# ------------------------------------------------------------------ the size of a request, before its body is read

BIG = 200 * 1024 * 1024


class CountingBody(io.RawIOBase):
    """A request body of `size` bytes that counts what the server read."""

    def __init__(self, size: int):
        self.size, self.read_bytes = size, 0

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.size - self.read_bytes)
        b[:n] = b"a" * n
        self.read_bytes += n
        return n


def _raw_post(client, path, body: CountingBody, content_type: str, length: int | None = BIG, **headers):
    """POST `body` as the raw WSGI input (the test client would otherwise buffer it)."""
    environ = {"wsgi.input": body, "CONTENT_TYPE": content_type}
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    return client.post(path, environ_overrides=environ, headers=headers)


@pytest.mark.parametrize("path, mimetype", [
    ("/staff/login", "application/x-www-form-urlencoded"),
    ("/staff/data/import", "multipart/form-data; boundary=x"),
    ("/staff/data/import", "application/x-www-form-urlencoded"),
])
def test_a_huge_body_before_sign_in_is_refused_unread(make_loaded_app, path, mimetype):
    app = make_loaded_app()  # CSRF on, as in production: the CSRF check would read the form
    body = CountingBody(BIG)
    r = _raw_post(app.test_client(), path, body, mimetype)
    assert r.status_code == 413
    assert body.read_bytes == 0
    assert "Xin đăng nhập trước" in r.get_data(as_text=True)


def test_a_body_without_length_before_sign_in_is_refused(make_loaded_app):
    app = make_loaded_app()
    body = CountingBody(BIG)
    r = _raw_post(app.test_client(), "/staff/login", body, "application/x-www-form-urlencoded", length=None,
                  **{"Transfer-Encoding": "chunked"})
    assert r.status_code == 413 and body.read_bytes == 0


def test_sign_in_still_works_under_the_cap(sapp, world):
    r = sapp.test_client().post("/staff/login", data={"username": world["users"]["analyst"],
                                                      "password": "correct horse 42"})
    assert r.status_code == 302


def test_a_signed_in_upload_above_the_limit_gets_a_vietnamese_413_unread(sapp, world, as_role):
    c = as_role("analyst")
    body = CountingBody(BIG)
    r = _raw_post(c, "/staff/data/import", body, "multipart/form-data; boundary=x")
    html = r.get_data(as_text=True)
    assert r.status_code == 413 and body.read_bytes == 0
    assert "Tệp quá lớn" in html and "tối đa 50 MB" in html


def test_a_file_just_above_the_import_limit_gets_413(make_loaded_app):
    from tests.factories import seed_world
    from tests.helpers import login

    app = make_loaded_app(WTF_CSRF_ENABLED=False, STAFF_LOGIN_RATE="1000 per minute", IMPORT_MAX_BYTES=1024 * 1024)
    world = seed_world(app)
    c = app.test_client()
    assert login(c, world["users"]["analyst"]).status_code == 302
    data = VOL_HEAD + b"P-B,2030-01-01,2030-01-31,_all,1\n" * (1024 * 1024 // 33 + 100)  # just over 1 MB
    r = _post(c, data)
    assert r.status_code == 413 and "Tệp quá lớn (tối đa 1 MB)." in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Volume).where(Volume.transactions == 1)) == 0
