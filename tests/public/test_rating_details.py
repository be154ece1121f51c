"""The optional details after "Send" (issue 13 item 2) and what the rating step
accepts (item 3), through the test client: same key + same device + within
DETAILS_WINDOW_MINUTES, once; a dossier link that names the procedure field is
not asked it again; procedure fields per unit."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.helpers import open_form, responses, scrape, submit

RATINGS = {"overall": "4", "staff": "5"}


def _rated(client, place, answers=RATINGS, url=None):
    hidden = open_form(client, url or place.url)
    r = submit(client, (url or place.url).split("?")[0], answers=answers, hidden=hidden)
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    return hidden["k"], r.headers["Location"]


def _details_page(client, place, key):
    r = client.get(f"{place.url}/details?k={key}")
    return r, r.get_data(as_text=True)


def _send_details(client, place, key, **fields):
    html = client.get(f"{place.url}/details?k={key}").get_data(as_text=True)
    hidden = scrape(html)
    return client.post(f"{place.url}/details", data=dict(hidden, attach="1", **fields))


def test_thank_you_page_offers_the_details_of_this_rating(app, client, place):
    key, thanks = _rated(client, place)
    page = client.get(thanks).get_data(as_text=True)
    assert f"/details?k={key}" in page and "Thêm góp ý" in page
    r, html = _details_page(client, place, key)
    assert r.status_code == 200
    assert 'name="stratum"' in html and 'name="age_group"' in html and 'name="gender"' in html
    assert 'id="f-comment"' in html and "không bắt buộc" in html


def test_details_attach_once_to_the_same_row(app, client, place):
    key, _ = _rated(client, place)
    r = _send_details(client, place, key, comment="Gọi tôi: 0912 345 678", age_group="30_44", gender="male",
                      stratum="kinh_doanh")
    assert r.status_code == 303 and r.headers["Location"].endswith("/thanks?done=1")
    [row] = responses(app)
    assert row.answer_map == {"overall": 4, "staff": 5}
    assert (row.stratum, row.age_group, row.gender) == ("kinh_doanh", "30_44", "male")
    assert "0912" not in row.comment and "[số điện thoại]" in row.comment  # masked as on the form
    # a second details post changes nothing and says so
    r, html = _details_page(client, place, key)
    assert r.status_code == 409 and "Góp ý đã được gửi rồi" in html
    hidden = scrape(client.get(place.url + "/details").get_data(as_text=True))
    r = client.post(f"{place.url}/details", data=dict(hidden, k=key, attach="1", comment="khác", gender="female"))
    assert r.status_code == 409
    [row] = responses(app)
    assert row.gender == "male" and "khác" not in row.comment


def test_details_need_the_same_device_and_the_time_window(app, client, place):
    key, _ = _rated(client, place)
    other = app.test_client()  # another phone: its own device cookie
    r = other.get(f"{place.url}/details?k={key}")
    assert r.status_code == 404 and "chính điện thoại đã gửi" in r.get_data(as_text=True)
    hidden = scrape(other.get(place.url + "/details").get_data(as_text=True))
    r = other.post(f"{place.url}/details", data=dict(hidden, k=key, attach="1", comment="không phải của tôi"))
    assert r.status_code == 404
    app.config["DETAILS_WINDOW_MINUTES"] = 30
    from survey_app.extensions import db
    from survey_app.models import Response

    with app.app_context():
        row = db.session.query(Response).one()
        row.received_at = row.received_at - dt.timedelta(minutes=31)
        db.session.commit()
    r = client.get(f"{place.url}/details?k={key}")
    assert r.status_code == 410 and "30 phút" in r.get_data(as_text=True)
    hidden = scrape(client.get(place.url + "/details").get_data(as_text=True))
    r = client.post(f"{place.url}/details", data=dict(hidden, k=key, attach="1", comment="muộn"))
    assert r.status_code == 410
    [row] = responses(app)
    assert row.comment is None


def test_details_post_only_with_csrf(app, client, place):
    key, _ = _rated(client, place)
    r = client.get(f"{place.url}/details?k={key}&comment=x&attach=1")
    assert r.status_code == 200 and responses(app)[0].comment is None  # GET never writes
    r = client.post(f"{place.url}/details", data={"k": key, "attach": "1", "comment": "không có mã CSRF"})
    assert r.status_code == 400 and "gửi lại một lần nữa" in r.get_data(as_text=True)
    assert responses(app)[0].comment is None


def test_details_with_nothing_filled_is_sent_back(app, client, place):
    key, _ = _rated(client, place)
    r = _send_details(client, place, key)
    assert r.status_code == 400 and "Ông/Bà chưa điền gì" in r.get_data(as_text=True)


@pytest.mark.parametrize("answers,stored", [
    ({"overall": "3"}, {"overall": 3}),
    ({k: "na" for k in ("overall", "access", "procedure", "staff", "result", "feedback")}, {}),
    ({"overall": "na", "result": "2"}, {"result": 2}),
], ids=["overall-only", "all-no-opinion", "one-element"])
def test_any_subset_is_a_response(app, client, place, answers, stored):
    _rated(client, place, answers)
    assert [r.answer_map for r in responses(app)] == [stored]


def test_a_comment_alone(app, client, place):
    html = client.get(place.url + "/details").get_data(as_text=True)
    assert 'name="attach"' not in html
    hidden = scrape(html)
    r = client.post(place.url + "/details", data=dict(hidden, comment="Cần thêm quạt ở phòng chờ."))
    assert r.status_code == 303
    [row] = responses(app)
    assert row.answer_map == {} and row.comment == "Cần thêm quạt ở phòng chờ." and row.channel == "qr"
    hidden = scrape(client.get(place.url + "/details").get_data(as_text=True))
    r = client.post(place.url + "/details", data=dict(hidden, age_group="18_29"))  # no comment: asked for one
    assert r.status_code == 400 and "Xin Ông/Bà viết góp ý" in r.get_data(as_text=True)
    assert len(responses(app)) == 1


def test_dossier_link_that_names_the_field_does_not_ask_it(app, client, place):
    from survey_app.services.tokens import dossier_signature

    with app.app_context():
        sig = dossier_signature(place.counter_id, "HS-0042")
    url = f"{place.url}?d={sig}&f=dat_dai"
    html = client.get(url).get_data(as_text=True)
    assert 'type="hidden" name="stratum" value="dat_dai"' in html
    key, _ = _rated(client, place, dict(RATINGS, stratum="dat_dai"), url=url)  # as the browser posts it
    [row] = responses(app)
    assert row.stratum == "dat_dai" and row.dossier_hash
    r, html = _details_page(client, place, key)
    assert r.status_code == 200 and 'name="stratum"' not in html and 'name="age_group"' in html
    # a field that is not one of the instrument's is ignored (asked later instead)
    html = client.get(f"{place.url}?d={dossier_signature_for(app, place, 'HS-0043')}&f=casino").get_data(
        as_text=True)
    assert 'name="stratum"' not in html


def dossier_signature_for(app, place, ref):
    from survey_app.services.tokens import dossier_signature

    with app.app_context():
        return dossier_signature(place.counter_id, ref)


def test_procedure_fields_follow_the_unit(app, client, place):
    """The 2025 ministry areas, none inside another; a commune is not offered the
    province-only fields; a unit with dossier volumes per field is offered those."""
    from survey_app.extensions import db
    from survey_app.models import Volume

    html = client.get(place.url + "/details").get_data(as_text=True)
    offered = re.findall(r'name="stratum" value="([^"]*)"', html)
    assert "ho_tich" in offered and "tu_phap" not in offered and "cong_thuong" not in offered
    assert "Tư pháp (hộ tịch, chứng thực)" in html and ">Tư pháp<" not in html
    with app.app_context():
        for stratum in ("dat_dai", "kinh_doanh"):
            db.session.add(Volume(unit_id=place.unit_id, period_start=dt.date(2025, 1, 1),
                                  period_end=dt.date(2025, 12, 31), stratum=stratum, transactions=100))
        db.session.commit()
    html = client.get(place.url + "/details").get_data(as_text=True)
    assert re.findall(r'name="stratum" value="([^"]+)"', html) == ["dat_dai", "kinh_doanh", "khac"]


def test_posters_and_form_say_the_same_about_what_is_asked(client, place):
    """Issue 13 item 10: the poster no longer claims "no personal information" while the
    form asks age group and gender; it says those are optional, as the form does."""
    from survey_app.services.posters import FOOTER, INSTRUCTION_VI

    assert "thông tin cá nhân" not in FOOTER
    assert "Độ tuổi, giới tính: tùy chọn" in FOOTER and "không hỏi họ tên, số điện thoại" in FOOTER
    assert "6 dòng" in INSTRUCTION_VI
    rating = client.get(place.url).get_data(as_text=True)
    assert 'name="age_group"' not in rating and 'name="gender"' not in rating  # not on the rating step
    details = client.get(place.url + "/details").get_data(as_text=True)
    fieldsets = re.findall(r"<fieldset.*?</fieldset>", details, re.S)
    for key in ("age_group", "gender"):
        [fs] = [f for f in fieldsets if f'name="{key}"' in f]
        assert re.search(r"<legend>[^<]+<span class=\"opt-tag\">\(không bắt buộc\)</span></legend>", fs)
