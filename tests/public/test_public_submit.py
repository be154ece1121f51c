"""Citizen submission path: stored once with all answers, idempotency, CSRF
expiry keeps answers, validation (400, nothing stored), tokens, dossier links,
PII masking, honeypot, kiosk, flags."""
from __future__ import annotations

import re

import pytest

from tests.helpers import ANSWERS, open_form, responses, scrape, submit


def test_valid_submission_stored_once_with_all_answers(app, client, place):
    r = submit(client, place.url)
    assert r.status_code == 303
    assert re.search(rf"/c/{re.escape(place.token)}/thanks\?k=[0-9a-f]{{32}}$", r.headers["Location"])
    rows = responses(app)
    assert len(rows) == 1
    row = rows[0]
    assert row.answer_map == {"overall": 5, "access": 4, "procedure": 3, "staff": 5, "feedback": 2}
    assert "result" not in row.answer_map  # "no opinion" is no answer, not a zero
    assert (row.channel, row.stratum, row.age_group, row.gender) == ("qr", "ho_tich", "45_59", "female")
    assert row.comment == "Cán bộ nhiệt tình."
    assert row.counter_id == place.counter_id and row.unit_id == place.unit_id
    assert row.submitted_at.tzinfo is not None
    assert row.flags == "" and not row.excluded
    from survey_app.models import answer_pattern

    assert row.pattern == answer_pattern(row.answer_map) > 0  # the packed pattern the statistics read
    assert row.device_hash and len(row.device_hash) == 64
    # no raw IP anywhere in the row
    for col in row.__table__.columns:
        assert "127.0.0.1" not in str(getattr(row, col.key))
    thanks = client.get(r.headers["Location"])
    assert thanks.status_code == 200
    assert "Cảm ơn Ông/Bà đã đánh giá!" in thanks.get_data(as_text=True)
    assert "no-store" in thanks.headers["Cache-Control"]


def test_double_submit_is_one_row_and_same_thank_you(app, client, place):
    hidden = open_form(client, place.url)
    first = submit(client, place.url, hidden=hidden)
    second = submit(client, place.url, hidden=hidden)
    third = submit(client, place.url, answers=dict(ANSWERS, overall="1"), hidden=hidden)  # retry, changed mind
    assert first.status_code == second.status_code == third.status_code == 303
    assert first.headers["Location"] == second.headers["Location"] == third.headers["Location"]
    rows = responses(app)
    assert len(rows) == 1 and rows[0].answer_map["overall"] == 5
    # a new rendering of the form is a new key: a second person on the same phone counts
    assert submit(client, place.url, answers=dict(ANSWERS, overall="4")).status_code == 303
    assert len(responses(app)) == 2


def _old_csrf_form(client, url, monkeypatch):
    """Render the form with a CSRF token issued 7 hours ago (the limit is 6 h)."""
    import time

    from itsdangerous import timed

    real = time.time()
    monkeypatch.setattr(timed.TimestampSigner, "get_timestamp", lambda self: int(real - 7 * 3600))
    hidden = open_form(client, url)
    monkeypatch.undo()
    return hidden


def test_expired_csrf_reshows_form_with_answers_kept(app, client, place, monkeypatch):
    hidden = _old_csrf_form(client, place.url, monkeypatch)
    r = submit(client, place.url, hidden=hidden)
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "<form" in html and "Câu trả lời của Ông/Bà vẫn được giữ nguyên" in html
    assert re.search(r'name="overall" value="5"[^>]*checked', html)
    assert re.search(r'name="feedback" value="2"[^>]*checked', html)
    assert re.search(r'type="hidden" name="stratum" value="ho_tich"', html)  # details posted along are kept
    assert 'type="hidden" name="comment" value="Cán bộ nhiệt tình."' in html
    assert responses(app) == []
    # the re-shown form carries a fresh CSRF token and the same one-time key: sending again works once
    again = scrape(html)
    assert again["k"] == hidden["k"] and again["csrf_token"] != hidden["csrf_token"]
    assert submit(client, place.url, hidden=again).status_code == 303
    assert submit(client, place.url, hidden=again).status_code == 303
    assert len(responses(app)) == 1


def test_missing_csrf_and_no_session_cookie_keep_answers(app, place):
    fresh = app.test_client()
    hidden = open_form(fresh, place.url)
    other = app.test_client()  # a browser that lost its session cookie
    r = submit(other, place.url, hidden=hidden)
    assert r.status_code == 400 and re.search(r'name="staff" value="5"[^>]*checked', r.get_data(as_text=True))
    no_token = {k: v for k, v in hidden.items() if k != "csrf_token"}
    r = submit(fresh, place.url, hidden=no_token)
    assert r.status_code == 400 and "<form" in r.get_data(as_text=True)
    assert responses(app) == []


INVALID = [
    ("out_of_range", {"overall": "6"}, "Câu trả lời này không nằm trong các lựa chọn.",
     "This answer is not one of the choices."),
    ("not_a_number", {"staff": "abc"}, "Câu trả lời này không nằm trong các lựa chọn.",
     "This answer is not one of the choices."),
    ("unknown_field", {"favourite_colour": "blue"}, "có mục không thuộc bảng câu hỏi này",
     "fields this questionnaire does not have"),
    ("item_of_other_instrument", {"access_c1": "1"}, "có mục không thuộc bảng câu hỏi này",
     "fields this questionnaire does not have"),
    ("bad_choice", {"stratum": "casino"}, "Câu trả lời này không nằm trong các lựa chọn.",
     "This answer is not one of the choices."),
    ("oversize_comment", {"comment": "x" * 1001}, "Quá dài: tối đa 1.000 ký tự (hiện có 1.001)",
     "Too long: at most 1,000 characters (now 1,001)"),
    ("oversize_field", {"gender": "f" * 5000}, "Câu trả lời này không nằm trong các lựa chọn.",
     "This answer is not one of the choices."),
    ("repeated_value", {"overall": ["5", "1"]}, "Câu này chỉ được chọn một câu trả lời.",
     "Only one answer can be chosen here."),
    ("nothing_chosen", {"overall": "", "access": ""}, "Ông/Bà chưa chọn gì",
     "Nothing was chosen"),
    ("missing_key", {"k": ""}, "Phiếu gửi lên không đúng dạng", "The form was sent in an unexpected shape"),
]


@pytest.mark.parametrize("name,change,msg_vi,msg_en", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_input_is_400_with_message_and_nothing_stored(app, place, name, change, msg_vi, msg_en):
    for lang in ("vi", "en"):
        client = app.test_client()
        if lang == "en":
            client.set_cookie("lang", "en")
        hidden = open_form(client, place.url)
        answers = {} if name == "nothing_chosen" else dict(ANSWERS)
        answers.update(change)
        if "k" in change:
            hidden["k"] = answers.pop("k")
        r = submit(client, place.url, answers=answers, hidden=hidden)
        assert r.status_code == 400
        html = r.get_data(as_text=True)
        assert (msg_en if lang == "en" else msg_vi) in html
        assert 'class="errs"' in html  # the error summary at the top
        assert f'<html lang="{lang}">' in html
        assert responses(app) == []


def test_error_summary_links_to_the_fields(client, place):
    hidden = open_form(client, place.url)
    r = submit(client, place.url, answers=dict(ANSWERS, overall="9", staff="0"), hidden=hidden)
    html = r.get_data(as_text=True)
    summary = html[html.index('class="errs"'):html.index("<form")]
    links = re.findall(r'href="#([^"]+)"', summary)
    assert links == ["f-overall", "f-staff"]
    for target in links:
        assert f'id="{target}"' in html
    # the answers that were fine are kept
    assert re.search(r'name="access" value="4"[^>]*checked', html)


def test_oversize_body_is_413_page(client, place):
    hidden = open_form(client, place.url)
    r = client.post(place.url, data=dict(hidden, comment="x" * 100_000))
    assert r.status_code == 413
    assert "Nội dung gửi quá lớn" in r.get_data(as_text=True)


def test_tampered_unknown_rotated_and_inactive_tokens(app, client, place):
    from survey_app.extensions import db
    from survey_app.models import Counter
    from survey_app.services.tokens import counter_token

    tampered = place.token[:-2] + ("AA" if not place.token.endswith("AA") else "BB")
    for url in (f"/c/{tampered}", f"/c/{place.token}x", "/c/nonsense", f"/k/{tampered}"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "Mã này không hợp lệ" in r.get_data(as_text=True)
    with app.app_context():
        unknown = counter_token(place.counter_id + 999, 1)
        future = counter_token(place.counter_id, 5)
    assert client.get(f"/c/{unknown}").status_code == 404
    assert client.get(f"/c/{future}").status_code == 404
    hidden = open_form(client, place.url)
    with app.app_context():
        c = db.session.get(Counter, place.counter_id)
        c.token_version += 1
        db.session.commit()
        new_token = counter_token(c.id, c.token_version)
    r = client.get(place.url)
    assert r.status_code == 410
    assert "Mã này đã được thay bằng mã mới" in r.get_data(as_text=True)
    assert submit(client, place.url, hidden=hidden).status_code == 410  # an open old form cannot submit
    assert responses(app) == []
    assert client.get(f"/c/{new_token}").status_code == 200
    client.set_cookie("lang", "en")
    assert "This code has been replaced" in client.get(place.url).get_data(as_text=True)
    with app.app_context():
        c = db.session.get(Counter, place.counter_id)
        c.active = False
        db.session.commit()
    assert client.get(f"/c/{new_token}").status_code == 410


def test_dossier_link_can_be_used_once(app, client, place):
    from survey_app.services.tokens import dossier_signature

    with app.app_context():
        sig = dossier_signature(place.counter_id, "HS-2025-000123")
        other_counter_sig = dossier_signature(place.counter_id + 1, "HS-2025-000123")
    url = f"{place.url}?d={sig}"
    hidden = open_form(client, url)
    assert hidden["d"] == sig
    second_tab = open_form(client, url)  # the same receipt opened twice
    assert submit(client, place.url, hidden=hidden).status_code == 303
    rows = responses(app)
    assert len(rows) == 1 and rows[0].dossier_hash and "HS-2025" not in rows[0].dossier_hash
    r = client.get(url)
    assert r.status_code == 409
    assert "Hồ sơ này đã được đánh giá" in r.get_data(as_text=True)
    r = submit(client, place.url, hidden=second_tab)
    assert r.status_code == 409 and "Hồ sơ này đã được đánh giá" in r.get_data(as_text=True)
    assert len(responses(app)) == 1
    # the double tap of the first form is still the same thank-you
    assert submit(client, place.url, hidden=hidden).status_code == 303
    for bad in (sig[:-3] + "abc", other_counter_sig, "garbage"):
        assert client.get(f"{place.url}?d={bad}").status_code == 404
    assert len(responses(app)) == 1


def test_pii_is_masked_before_storage(app, client, place):
    comment = ("Gọi tôi 0912 345 678 hoặc +84 912345678, email an.nguyen@example.com, "
               "CCCD 001203004567, CMND 123456789. Cảm ơn.")
    assert submit(client, place.url, answers=dict(ANSWERS, comment=comment)).status_code == 303
    stored = responses(app)[0].comment
    for secret in ("0912", "345 678", "912345678", "an.nguyen", "example.com", "001203004567", "123456789"):
        assert secret not in stored
    assert "[số điện thoại]" in stored and "[email]" in stored and "[số giấy tờ]" in stored
    assert stored.endswith("Cảm ơn.")


def test_honeypot_gets_thank_you_and_nothing_is_stored(app, client, place):
    r = submit(client, place.url, answers=dict(ANSWERS, website="http://spam.example"))
    assert r.status_code == 303 and r.headers["Location"].endswith("/thanks")
    assert responses(app) == []


def test_burst_from_one_device_is_flagged_not_dropped(app, client, place):
    for i in range(5):
        answers = dict(ANSWERS, overall=str(1 + i % 5), access=str(1 + (i + 2) % 5))
        assert submit(client, place.url, answers=answers).status_code == 303
    rows = responses(app)
    assert len(rows) == 5
    assert [r.flags for r in rows[:3]] == ["", "", ""]
    for r in rows[3:]:
        assert "burst" in r.flags.split(";")
        assert "burst" in r.flag_reason and "thiết bị" in r.flag_reason
        assert not r.excluded


def test_identical_answer_vectors_across_devices_are_flagged(app, place):
    for i in range(4):
        c = app.test_client()  # a new device each time; other comments, so not whole duplicates
        assert submit(c, place.url, dict(ANSWERS, comment=f"Lần {i}")).status_code == 303
    rows = responses(app)
    assert len(rows) == 4
    assert [r.flags for r in rows] == ["", "", "identical_answers", "identical_answers"]
    assert "giống hệt nhau" in rows[3].flag_reason
    assert len({r.device_hash for r in rows}) == 4


def test_kiosk_mode(app, client, place):
    r = client.get(place.kiosk_url)
    assert r.status_code == 200
    assert "no-store" in r.headers["Cache-Control"]
    html = r.get_data(as_text=True)
    assert 'autocomplete="off"' in html
    r = submit(client, place.kiosk_url, hidden=scrape(html))
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/k/{place.token}/thanks")
    thanks = client.get(r.headers["Location"])
    assert "no-store" in thanks.headers["Cache-Control"]
    page = thanks.get_data(as_text=True)
    assert "http-equiv" not in page  # no <meta refresh> (axe: critical); public.js counts down visibly
    assert re.search(rf'id="countdown" data-seconds="\d+" data-next="/k/{re.escape(place.token)}\?lang=vi"', page)
    assert 'id="more-time"' in page and "details" not in page
    fresh = client.get(place.kiosk_url).get_data(as_text=True)
    assert " checked" not in fresh and "Cán bộ nhiệt tình" not in fresh
    assert [r.channel for r in responses(app)] == ["kiosk"]


def test_database_failure_keeps_answers_and_says_so(app, client, place, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from survey_app.services import responses as response_writer

    def boom(**kw):
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    hidden = open_form(client, place.url)
    monkeypatch.setattr(response_writer, "create_response", boom)
    r = submit(client, place.url, hidden=hidden)
    assert r.status_code == 503
    html = r.get_data(as_text=True)
    assert "Hệ thống chưa lưu được phiếu" in html
    assert re.search(r'name="overall" value="5"[^>]*checked', html)
    monkeypatch.undo()
    assert submit(client, place.url, hidden=scrape(html)).status_code == 303
    assert len(responses(app)) == 1


def test_identical_long_questionnaires_are_flagged_through_the_answers(app, place):
    """Vectors with items beyond the six shared ones are compared on the answers table."""
    from survey_app.services import instruments, submissions
    from survey_app.services import responses as response_writer

    with app.app_context():
        inst = instruments.latest_instrument("sipas-services")
        outcomes = []
        for i in range(3):
            clean = submissions.Clean(answers={"access_c1": 1, "access": 4, "overall": 5}, comment=f"c{i}")
            outcomes.append(response_writer.create_response(
                unit_id=place.unit_id, counter_id=place.counter_id, instrument=inst, clean=clean,
                channel="online", idempotency_key=submissions.new_key(), dev_hash=f"dev{i}"))
        assert [o.flags for o in outcomes] == ["", "", "identical_answers"]
        other = response_writer.create_response(
            unit_id=place.unit_id, counter_id=place.counter_id, instrument=inst,
            clean=submissions.Clean(answers={"access_c1": 0, "access": 4, "overall": 5}), channel="online",
            idempotency_key=submissions.new_key(), dev_hash="dev9")
        assert other.flags == ""
