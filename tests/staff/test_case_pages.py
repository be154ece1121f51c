"""The cases pages (issue 14 item 6): the leader's list and case page (take,
record the reply, close: POST with CSRF), scope (404 outside), the analyst's
overdue counts per unit, the unit page's open cases, Vietnamese first; and the
citizen's "Tôi muốn được phản hồi" on the details step."""
from __future__ import annotations

import datetime as dt
import re

import time_machine
from sqlalchemy import select

from survey_app.extensions import db
from survey_app.models import AuditLog, Case, Response, Unit, User
from survey_app.services import cases, jobs, submissions
from tests.helpers import csrf_login, open_form, scrape, submit

UTC = dt.timezone.utc


def _rate(sapp, code, overall, comment=None):
    from survey_app.services import responses
    from survey_app.services.instruments import latest_instrument

    with sapp.app_context():
        unit = db.session.scalar(select(Unit).where(Unit.code == code))
        out = responses.create_response(
            unit_id=unit.id, counter_id=None, instrument=latest_instrument("counter-quick"),
            clean=submissions.Clean(answers={"overall": overall, "staff": 3}, comment=comment),
            channel="qr", idempotency_key=submissions.new_key(), check_flags=False)
        jobs.run_due(kinds=[cases.OPEN_JOB])
        return db.session.scalar(select(Case.id).where(Case.response_id == out.response_id))


def test_the_leader_takes_answers_and_closes_a_case(sapp, world, as_role):
    inside = _rate(sapp, world["inside"], 1, comment="Chờ quá lâu")
    leader = as_role("unit_leader")
    page = leader.get("/staff/cases").get_data(as_text=True)
    assert f'data-case="{inside}"' in page and "Đánh giá không hài lòng" in page and "Mới" in page
    assert re.search(r'id="menu-cases"[^>]*>Vụ việc <span class="badge warn">1</span>', page)
    case_page = leader.get(f"/staff/cases/{inside}").get_data(as_text=True)
    assert "Chờ quá lâu" in case_page and "Nhận xử lý" in case_page and "còn 5 ngày làm việc" in case_page
    assert leader.post(f"/staff/cases/{inside}/take").status_code == 303
    r = leader.post(f"/staff/cases/{inside}/reply", data={"reply": ""})
    assert r.status_code == 400 and "Xin ghi nội dung đã trả lời." in r.get_data(as_text=True)
    r = leader.post(f"/staff/cases/{inside}/reply", data={"reply": "Đã xin lỗi người dân tại quầy."})
    assert r.status_code == 303
    page = leader.get(f"/staff/cases/{inside}").get_data(as_text=True)
    assert 'data-status="answered"' in page and "Đã xin lỗi người dân tại quầy." in page
    assert "Đã trả lời" in page and "Nhận xử lý" in page  # the history names each step
    assert leader.post(f"/staff/cases/{inside}/close").status_code == 303
    assert leader.post(f"/staff/cases/{inside}/close").status_code == 409  # already closed: said plainly
    with sapp.app_context():
        case = db.session.get(Case, inside)
        assert case.status == "closed" and case.reply_text.startswith("Đã xin lỗi")
        assert [a.action for a in db.session.scalars(select(AuditLog).where(AuditLog.target_type == "case")
                                                     .order_by(AuditLog.id))] == [
            "case_opened", "case_taken", "case_answered", "case_closed"]
    assert f'data-case="{inside}"' not in leader.get("/staff/cases").get_data(as_text=True)  # open only
    assert f'data-case="{inside}"' in leader.get("/staff/cases?status=closed").get_data(as_text=True)


def test_scope_a_case_outside_is_not_found(sapp, world, as_role):
    outside = _rate(sapp, world["outside"], 2)
    inside = _rate(sapp, world["inside"], 2)
    leader = as_role("unit_leader")
    assert f'data-case="{outside}"' not in leader.get("/staff/cases?status=all").get_data(as_text=True)
    for url in (f"/staff/cases/{outside}", f"/staff/cases?unit={world['outside']}", "/staff/cases/999999"):
        assert leader.get(url).status_code == 404
    for action in ("take", "close"):
        assert leader.post(f"/staff/cases/{outside}/{action}").status_code == 404
    assert leader.post(f"/staff/cases/{outside}/reply", data={"reply": "x"}).status_code == 404
    with sapp.app_context():
        assert db.session.get(Case, outside).status == "new"
    # the analyst reads but does not handle; counter staff do not see cases
    analyst = as_role("analyst")
    assert analyst.get(f"/staff/cases/{inside}").status_code == 200
    assert analyst.post(f"/staff/cases/{inside}/take").status_code == 403
    assert analyst.get(f"/staff/cases/{outside}").status_code == 404
    assert as_role("counter_staff").get("/staff/cases").status_code == 403
    admin = as_role("admin")
    assert f'data-case="{outside}"' in admin.get("/staff/cases").get_data(as_text=True)


def test_the_analyst_sees_overdue_cases_per_unit(sapp, world, as_role):
    first = _rate(sapp, world["inside"], 1)
    _rate(sapp, world["inside"], 2)
    with sapp.app_context():
        db.session.get(Case, first).due_on = dt.date(2026, 6, 1)
        db.session.commit()
    analyst = as_role("analyst")
    page = analyst.get("/staff/cases").get_data(as_text=True)
    row = re.search(r'<tr data-unit="P-A">.*?</tr>', page, re.S).group(0)
    assert re.findall(r'<td class="num">(?:<a [^>]*>)?(\d+)', row) == ["2", "1"]
    overdue = analyst.get("/staff/cases?overdue=1").get_data(as_text=True)
    assert f'data-case="{first}"' in overdue and overdue.count("data-case=") == 1
    assert "quá hạn" in overdue


def test_the_unit_page_lists_its_open_cases(sapp, world, as_role):
    case_id = _rate(sapp, world["inside"], 1)
    page = as_role("unit_leader").get(f"/staff/units/{world['inside']}").get_data(as_text=True)
    block = re.search(r'<section id="open-cases".*?</section>', page, re.S).group(0)
    assert "Vụ việc đang mở" in block and f'href="/staff/cases/{case_id}"' in block
    assert 'id="open-cases"' not in as_role("counter_staff").get(f"/staff/units/{world['inside']}").get_data(
        as_text=True)


def test_case_forms_need_csrf(make_loaded_app, frozen_clock):
    from tests.factories import seed_world

    app = make_loaded_app(STAFF_LOGIN_RATE="1000 per minute")
    world = seed_world(app)
    case_id = _rate(app, world["inside"], 1)
    client = app.test_client()
    assert csrf_login(client, world["users"]["unit_leader"]).status_code == 302
    assert client.post(f"/staff/cases/{case_id}/take").status_code == 400
    assert client.post(f"/staff/cases/{case_id}/reply", data={"reply": "x"}).status_code == 400
    page = client.get(f"/staff/cases/{case_id}").get_data(as_text=True)
    token = re.search(r'id="take-form".*?name="csrf_token"[^>]*value="([^"]+)"', page, re.S).group(1)
    assert client.post(f"/staff/cases/{case_id}/take", data={"csrf_token": token}).status_code == 303
    with app.app_context():
        assert db.session.get(Case, case_id).status == "in_progress"


def test_english_labels(sapp, world, as_role):
    case_id = _rate(sapp, world["inside"], 1)
    page = as_role("unit_leader").get(f"/staff/cases/{case_id}?lang=en").get_data(as_text=True)
    assert "Dissatisfied rating" in page and "Take this case" in page and ">New<" in page


# ------------------------------------------------------------------ the citizen's side


def test_the_citizen_asks_for_a_reply_on_the_details_step(app, client, place):
    with app.app_context():
        leader = User(username="lead", password_hash="x", role="unit_leader", unit_id=place.unit_id)
        db.session.add(leader)
        db.session.commit()
    hidden = open_form(client, place.url)
    assert submit(client, place.url, answers={"overall": "4", "staff": "5"}, hidden=hidden).status_code == 303
    key = hidden["k"]
    details = client.get(f"{place.url}/details?k={key}").get_data(as_text=True)
    assert 'name="reply"' in details and "Tôi muốn được phản hồi" in details
    assert "không thể liên hệ riêng với bạn" in details  # said plainly: no contact can be kept
    r = client.post(f"{place.url}/details", data=dict(scrape(details), attach="1", reply="1",
                                                      comment="Xin trả lời giúp, email tôi: an@example.com"))
    assert r.status_code == 303
    with app.app_context():
        jobs.run_due(kinds=[cases.OPEN_JOB])
        [case] = db.session.scalars(select(Case)).all()
        assert (case.kind, case.reply_requested, case.status) == ("reply_requested", True, "new")
        stored = db.session.get(Response, case.response_id)
        assert "an@example.com" not in stored.comment and "[email]" in stored.comment
    # a comment without a reply request opens nothing
    hidden = open_form(client, place.url)
    submit(client, place.url, answers={"overall": "5", "staff": "5"}, hidden=hidden)
    details = client.get(f"{place.url}/details?k={hidden['k']}").get_data(as_text=True)
    client.post(f"{place.url}/details", data=dict(scrape(details), attach="1", comment="Cảm ơn"))
    with app.app_context():
        assert len(db.session.scalars(select(Case)).all()) == 1


def test_the_window_fires_through_the_citizen_form(make_loaded_app):
    """The threshold through real POSTs: 4 ratings with 2 dissatisfied within the window."""
    from tests.factories import make_place

    app = make_loaded_app(RATELIMIT_ENABLED=False, COLLECT_BURST_COUNT=100, COLLECT_IDENTICAL_COUNT=100)
    with app.app_context():
        place = make_place()
    with time_machine.travel(dt.datetime(2026, 6, 17, 3, 0, tzinfo=UTC), tick=True):
        for overall in ("5", "4", "2", "1"):
            client = app.test_client()  # one phone each
            hidden = open_form(client, place.url)
            assert submit(client, place.url, answers={"overall": overall, "staff": "4"},
                          hidden=hidden).status_code == 303
    with app.app_context(), time_machine.travel(dt.datetime(2026, 6, 17, 3, 5, tzinfo=UTC), tick=True):
        jobs.run_due(kinds=[cases.OPEN_JOB])
        kinds = sorted(c.kind for c in db.session.scalars(select(Case)))
        assert kinds == ["dissatisfied", "dissatisfied", "threshold"]
