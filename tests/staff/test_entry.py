"""Staff paper / phone entry (scoped to the user's units)."""
from __future__ import annotations

import datetime as dt
import html as html_lib
import re

from tests.factories import make_place
from tests.helpers import responses, scrape


def _login(app, client, role="counter_staff", unit_code="XA-TP"):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import Unit
    from tests.factories import make_user

    with app.app_context():
        unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
        user = make_user(role=role, unit=unit)
        db.session.commit()
        token = f"{user.id}:{user.session_version}"
    import time

    with client.session_transaction() as s:
        s["_user_id"] = token
        s["_fresh"] = True
        s["login_at"] = s["seen_at"] = int(time.time())  # a session as the login page starts it


def _sheet(client, counter_code, instrument="counter-quick", channel="paper", date=None, batch="Lô 01/2025"):
    args = {"counter": counter_code, "instrument": instrument, "channel": channel, "batch": batch}
    if date:
        args["date"] = date
    r = client.get("/staff/entry/form", query_string=args)
    assert r.status_code == 200, r.status_code
    html = r.get_data(as_text=True)
    hidden = scrape(html)
    hidden.update(counter=counter_code, instrument=instrument, channel=channel,
                  date=re.search(r'name="date" value="([^"]*)"', html).group(1),
                  batch=html_lib.unescape(re.search(r'name="batch" value="([^"]*)"', html).group(1)))
    return hidden


def test_entry_needs_login(client, place):
    r = client.get("/staff/entry/")
    assert r.status_code in (302, 401)
    r = client.post("/staff/entry/form", data={"counter": place.counter_code})
    assert r.status_code in (302, 401)
    assert responses(client.application) == []


def test_paper_entry_is_scoped_and_stored(app, client, place):
    with app.app_context():
        other = make_place(code="XA-KHAC", name_vi="UBND xã Khác")
    _login(app, client)
    start = client.get("/staff/entry/").get_data(as_text=True)
    assert place.counter_code in start and other.counter_code not in start
    day = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    hidden = _sheet(client, place.counter_code, date=day)
    data = dict(hidden, overall="4", access="5", procedure="", staff="3", result="na", feedback="1",
                stratum="dat_dai", gender="male", comment="Ghi trên phiếu: liên hệ 0912345678")
    r = client.post("/staff/entry/form", data=data)
    assert r.status_code == 303 and "saved=1" in r.headers["Location"]
    assert client.post("/staff/entry/form", data=data).status_code == 303  # double Enter
    rows = responses(app)
    assert len(rows) == 1
    row = rows[0]
    assert row.channel == "paper" and row.counter_id == place.counter_id and row.unit_id == place.unit_id
    assert row.answer_map == {"overall": 4, "access": 5, "staff": 3, "feedback": 1}
    assert (row.stratum, row.gender) == ("dat_dai", "male")
    assert "0912345678" not in row.comment
    local = row.submitted_at.astimezone(dt.timezone(dt.timedelta(hours=7)))
    assert local.date().isoformat() == day and local.hour == 12
    assert row.flags == ""
    # the next sheet says it was saved and is empty again
    nxt = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Đã lưu" in nxt and 'value="4"' not in nxt
    # another unit's counter is refused
    r = client.get(f"/staff/entry/form?counter={other.counter_code}&instrument=counter-quick&channel=paper")
    assert r.status_code == 403
    bad = dict(_sheet(client, place.counter_code), counter=other.counter_code, overall="5")
    assert client.post("/staff/entry/form", data=bad).status_code == 403
    assert len(responses(app)) == 1


def test_phone_entry_of_the_long_questionnaire(app, client, place):
    _login(app, client, role="unit_leader")
    hidden = _sheet(client, place.counter_code, instrument="sipas-services", channel="phone")
    data = dict(hidden, access_c1="1", access_c2="0", access="4", staff_c1="1", staff="5", overall="4",
                priority=["time", "fees"], occupation="farmer", age_group="60_plus")
    r = client.post("/staff/entry/form", data=data)
    assert r.status_code == 303
    row = responses(app)[0]
    assert row.channel == "phone"
    assert row.answer_map["access_c1"] == 1 and row.answer_map["access_c2"] == 0
    assert row.answer_map["priority_time"] == 1 and row.answer_map["priority_fees"] == 1
    assert row.answer_map["priority_online"] == 0
    assert row.respondent == {"occupation": "farmer"} and row.age_group == "60_plus"


def test_entry_errors_keep_what_was_typed(app, client, place):
    _login(app, client)
    hidden = _sheet(client, place.counter_code)
    r = client.post("/staff/entry/form", data=dict(hidden, overall="7", staff="5"))
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert 'href="#f-overall"' in html and 'name="staff" value="5"' in html
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    r = client.post("/staff/entry/form", data=dict(hidden, date=tomorrow, staff="5"))
    assert r.status_code == 400 and 'href="#f-date"' in r.get_data(as_text=True)
    r = client.post("/staff/entry/form", data=dict(hidden, csrf_token="old", staff="5"))
    assert r.status_code == 400 and 'name="staff" value="5"' in r.get_data(as_text=True)
    assert responses(app) == []


def _typist(app, username_part="clerk"):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import User

    with app.app_context():
        return db.session.scalars(select(User).order_by(User.id)).all()[-1].username


def test_typed_entry_records_who_typed_it_and_the_batch_and_is_audited(app, client, place):
    _login(app, client)
    clerk = _typist(app)
    for overall in ("4", "3"):
        r = client.post("/staff/entry/form", data=dict(_sheet(client, place.counter_code, batch="Lô 7"),
                                                       overall=overall, staff="5"))
        assert r.status_code == 303 and "batch=" in r.headers["Location"]
    # the next sheet keeps the batch label
    assert 'name="batch" value="Lô 7"' in client.get(r.headers["Location"]).get_data(as_text=True)
    rows = responses(app)
    assert [row.paper_batch for row in rows] == ["Lô 7", "Lô 7"]
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import AuditLog, User

    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.username == clerk))
        assert {row.entered_by_user_id for row in rows} == {uid}
        audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "paper_entry")
                                   .order_by(AuditLog.id)).all()
        assert [(a.actor, a.user_id, a.target_id) for a in audit] == [(clerk, uid, "Lô 7")] * 2
        assert [a.details["in_batch"] for a in audit] == [1, 2]
        assert {a.details["response"] for a in audit} == {str(row.id) for row in rows}
        assert audit[0].details["counter"] == place.counter_code and audit[0].details["channel"] == "paper"


def test_typed_entry_needs_a_batch_label(app, client, place):
    _login(app, client)
    hidden = _sheet(client, place.counter_code)
    for bad in ("", "   ", "x" * 81):
        r = client.post("/staff/entry/form", data=dict(hidden, batch=bad, overall="5"))
        assert r.status_code == 400, bad
        html = r.get_data(as_text=True)
        assert 'href="#f-batch"' in html and 'name="overall" value="5"' in html
    for bad in ("Lô\x001", "Lô\x071"):  # control characters: refused by the staff input-cleaning layer
        assert client.post("/staff/entry/form", data=dict(hidden, batch=bad, overall="5")).status_code == 400
    assert "nhãn của lô phiếu" in client.post("/staff/entry/form", data=dict(hidden, batch="")).get_data(as_text=True)
    assert responses(app) == []


def test_eight_identical_all_five_typed_questionnaires_are_flagged_and_audited(app, client, place):
    """Issue 11 hole 7: a clerk typed 8 identical all-5 "paper" questionnaires;
    none was flagged, none audited, nothing recorded who typed them."""
    _login(app, client)
    clerk = _typist(app)
    all_five = {k: "5" for k in ("overall", "access", "procedure", "staff", "result", "feedback")}
    for _ in range(8):
        r = client.post("/staff/entry/form", data=dict(_sheet(client, place.counter_code, batch="B-08"), **all_five))
        assert r.status_code == 303
    rows = responses(app)
    assert len(rows) == 8
    allowed = app.config["COLLECT_IDENTICAL_COUNT"]
    flagged = [row for row in rows if "identical_answers" in row.flags]
    assert len(flagged) == 8 - allowed and all(row.flag_reason for row in flagged)
    assert all(row.paper_batch == "B-08" and row.entered_by_user_id for row in rows)
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import AuditLog

    with app.app_context():
        audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "paper_entry")).all()
        assert len(audit) == 8 and {a.actor for a in audit} == {clerk}
        assert sum("identical_answers" in a.details["flags"] for a in audit) == 8 - allowed
    # the unit page says who typed the batch, how many and how many were flagged
    page = client.get("/staff/units/XA-TP").get_data(as_text=True)
    assert (f'data-batch="B-08" data-typist="{clerk}" data-typed="8" data-flagged="{8 - allowed}"' in page
            and "Lô phiếu nhập tay" in page)
    # varied answers at the same counter are not flagged
    r = client.post("/staff/entry/form", data=dict(_sheet(client, place.counter_code, batch="B-08"),
                                                   **dict(all_five, staff="3")))
    assert responses(app)[-1].flags == ""
