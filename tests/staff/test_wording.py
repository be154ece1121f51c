"""Plain readings on the staff and public pages (issue 14.5): the index sentence says what the index is,
adequacy says "enough" or "N more needed" (never both), a small sample gets a muted headline with the
reason; staff error pages speak to staff inside the staff layout."""
import datetime as dt
import re
import uuid

import pytest

from analysis.schema import ALL_STRATUM, ITEM_KEYS

INDEX_SENTENCE = re.compile(r"Chỉ số hài lòng \(bình quân 5 yếu tố\) từ (\d\d/\d\d/\d{4}) đến (\d\d/\d\d/\d{4}): "
                            r"\d+,\d% \(khoảng tin cậy 95%: từ \d+,\d% đến \d+,\d%\)\.")


def _add_unit(app, code, name, transactions, answers_list):
    """A commune under P with `transactions` this year and one response per answers dict."""
    from survey_app.extensions import db
    from survey_app.models import Unit, answer_pattern
    from survey_app.services.instruments import latest
    from survey_app.services.periods import current_report_year, resolve_period
    from survey_app.services.responses import insert_responses
    from tests.factories import make_unit, make_volume

    with app.app_context():
        per = resolve_period(str(current_report_year()))
        parent = db.session.query(Unit).filter_by(code="P").one()
        unit = make_unit(code, kind="commune", parent=parent, name_vi=name)
        make_volume(unit, transactions, start=per.first, end=per.last)
        inst_id = latest(db.session, "counter-quick").id
        at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
        rows, ans = [], []
        for a in answers_list:
            rid = uuid.uuid4()
            rows.append(dict(id=rid, unit_id=unit.id, counter_id=None, instrument_id=inst_id, channel="qr",
                             submitted_at=at, received_at=at, stratum=ALL_STRATUM, comment=None, flags="",
                             excluded=False, pattern=answer_pattern(a)))
            ans.extend({"response_id": rid, "item_key": k, "value": v} for k, v in a.items())
        insert_responses(rows, ans)
        db.session.commit()
        return per


def _headline(html, id_="unit-index"):
    m = re.search(r'<p class="([^"]*)" id="' + id_ + r'"[^>]*>(.*?)</p>', html, re.S)
    assert m, "no index headline"
    return m.group(1), m.group(0)


def test_index_sentence_names_the_index_and_its_period(sapp, world, as_role):
    from survey_app.services.periods import resolve_period

    c = as_role("unit_leader")
    with sapp.app_context():
        per = resolve_period(str(world["year"]))
    want = (per.first.strftime("%d/%m/%Y"), per.last.strftime("%d/%m/%Y"))
    for url in ("/staff/units/P-A", "/staff/"):
        html = c.get(url).get_data(as_text=True)
        m = INDEX_SENTENCE.search(html)
        assert m, url
        assert m.groups() == want, url
        assert "người dân hài lòng" not in html and not re.search(r"ít nhất \d+%", html), url
    en = c.get("/staff/units/P-A?lang=en").get_data(as_text=True)
    assert re.search(r"Satisfaction index \(average of the 5 elements\) from \d\d/\d\d/\d{4} to \d\d/\d\d/\d{4}: "
                     r"\d+\.\d% \(95% confidence interval: from \d+\.\d% to \d+\.\d%\)\.", en)
    assert "of people are satisfied" not in en


def test_adequacy_says_enough_or_how_many_more_never_both(sapp, world, as_role):
    # P-D: 30 transactions (Yamane: 28 needed) and 30 responses, an adequate sample.
    _add_unit(sapp, "P-D", "Xã Đủ Mẫu", 30, [{k: 5 if i % 3 else 3 for k in ITEM_KEYS} for i in range(30)])
    c = as_role("admin")
    enough = c.get("/staff/units/P-D").get_data(as_text=True)
    assert '<span class="badge ok">Đủ mẫu</span>' in enough
    assert "Còn thiếu" not in enough and "cần 28" not in enough and "responses needed" not in enough
    short = c.get("/staff/units/P-A").get_data(as_text=True)  # N 1000 -> 286 needed, 130 responses
    assert '<span class="badge warn">Còn thiếu 156 phiếu (cần 286)</span>' in short
    assert "Đủ mẫu" not in short.split('id="dossier-figures"')[0]
    over = c.get("/staff/?units=&view=unit").get_data(as_text=True)
    assert "Còn thiếu 156 phiếu (cần 286)" in over and "Đủ mẫu" in over
    en = c.get("/staff/units/P-A?lang=en").get_data(as_text=True)
    assert "156 more responses needed (286 required)" in en


def test_small_sample_gets_a_muted_headline_with_the_reason(sapp, world, as_role):
    _add_unit(sapp, "P-C", "Xã Một Phiếu", 200, [{k: 5 for k in ITEM_KEYS}])
    c = as_role("admin")
    html = c.get("/staff/units/P-C").get_data(as_text=True)
    cls, tag = _headline(html)
    assert "big" not in cls.split() and "muted" in cls.split() and 'data-small="1"' in tag
    assert "mẫu nhỏ: n = 1, chưa đủ để kết luận" in tag
    assert INDEX_SENTENCE.search(html) or "Chỉ số hài lòng (bình quân 5 yếu tố)" in html
    big_cls, big_tag = _headline(c.get("/staff/units/P-A").get_data(as_text=True))  # 130 responses
    assert "big" in big_cls.split() and "mẫu nhỏ" not in big_tag
    en = c.get("/staff/units/P-C?lang=en").get_data(as_text=True)
    assert "small sample: n = 1, not enough to draw conclusions" in en


@pytest.mark.parametrize("path, code", [("/staff/no-such-page", 404), ("/staff/units/Q-Y", 404),
                                        ("/staff/admin/users", 403)])
def test_staff_errors_speak_to_staff_in_the_staff_layout(sapp, world, as_role, path, code):
    c = as_role("unit_leader")
    r = c.get(path)
    assert r.status_code == code
    html = r.get_data(as_text=True)
    assert 'class="mainnav"' in html and "Đăng xuất" in html  # the staff menu and sign-out
    assert "quét lại mã QR" not in html and "mã QR tại quầy" not in html  # not the citizens' wording
    assert 'id="error-home"' in html and f"Mã lỗi: {code}" in html
    if code == 404:
        assert "nằm ngoài các đơn vị của tài khoản" in html
    else:
        assert "Vai trò của tài khoản không được mở trang này" in html


def test_staff_404_when_signed_out_and_citizen_404_unchanged(sapp, world):
    c = sapp.test_client()
    staff = c.get("/staff/no-such-page")
    assert staff.status_code == 404
    html = staff.get_data(as_text=True)
    assert "nằm ngoài các đơn vị của tài khoản" in html and 'class="mainnav"' not in html
    public = c.get("/no-such-page").get_data(as_text=True)
    assert "quét lại mã QR" in public and "nằm ngoài các đơn vị" not in public
    assert c.get("/api/v1/nothing", headers={"Accept": "application/json"}).mimetype == "application/json"
