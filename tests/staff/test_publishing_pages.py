"""The staff pages of closing and approval: permissions enforced on the server
(a unit leader cannot publish, an analyst outside the scope cannot accept),
the diff page and CSV, the annual report's status column, the results poster."""
from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa

from tests.factories import seed_publishing
from tests.helpers import login


@pytest.fixture
def site(sapp):
    data = seed_publishing(sapp)

    def client(name):
        c = sapp.test_client()
        assert login(c, name).status_code == 302
        return c

    return sapp, data, client


def _status(app, code, version=None):
    with app.app_context():
        from survey_app.services import publishing

        return publishing.approval_for(publishing.get_version("2025", "P", version), code).status


def test_close_submit_review_publish_through_the_pages(site, backend):
    app, data, client = site
    analyst, leader, outsider = client("analyst_p"), client("leader_a"), client("analyst_q")
    r = leader.post("/staff/periods/close", data={"period": "2025", "unit": "P"})
    assert r.status_code == 403  # a unit leader does not close periods
    r = outsider.post("/staff/periods/close", data={"period": "2025", "unit": "P"})
    assert r.status_code == 403
    r = analyst.post("/staff/periods/close", data={"period": "2025", "unit": "P"})
    assert r.status_code == 303
    sid = int(re.search(r"/staff/periods/(\d+)", r.headers["Location"]).group(1))
    page = analyst.get(f"/staff/periods/{sid}").get_data(as_text=True)
    assert "Phiên bản 1" in page or "phiên bản 1" in page
    assert 'data-unit="P-A" data-status="draft"' in page

    base = f"/staff/periods/{sid}/units/P-A"
    assert analyst.post(f"{base}/submit", data={"reflection": "Nhận xét đủ dài của cán bộ."}).status_code == 403
    r = leader.post(f"{base}/submit", data={"reflection": "ngắn"})
    assert r.status_code == 400
    r = leader.post(f"{base}/submit", data={"reflection": "Thời gian chờ đã giảm rõ rệt."})
    assert r.status_code == 303 and _status(app, "P-A") == "submitted"
    assert outsider.post(f"{base}/review", data={"decision": "accept"}).status_code == 404  # not even visible
    assert leader.post(f"{base}/review", data={"decision": "accept"}).status_code == 403
    assert leader.post(f"{base}/publish").status_code == 403  # a unit leader cannot publish
    assert _status(app, "P-A") == "submitted"
    assert analyst.post(f"{base}/review", data={"decision": "bogus"}).status_code == 400
    r = analyst.post(f"{base}/review", data={"decision": "accept", "note": "Hợp lệ"})
    assert r.status_code == 303 and _status(app, "P-A") == "accepted"
    assert leader.post(f"{base}/publish").status_code == 403
    r = analyst.post(f"{base}/publish")
    assert r.status_code == 303 and _status(app, "P-A") == "published"
    assert app.test_client().get("/public/P/2025").status_code == 200

    # The annual report shows each unit's status.
    report = analyst.get("/staff/report/2025").get_data(as_text=True)
    row = report.split('data-unit="P-A"', 1)[1].split("</tr>", 1)[0]
    assert "đã công bố (v1)" in row
    row_b = report.split('data-unit="P-B"', 1)[1].split("</tr>", 1)[0]
    assert "nháp (v1)" in row_b

    # Verify from the page; the poster of the public page.
    r = analyst.post(f"/staff/periods/{sid}/verify")
    assert r.status_code == 303
    assert "đúng hoàn toàn" in analyst.get(f"/staff/periods/{sid}").get_data(as_text=True)
    poster = analyst.get("/staff/periods/poster/P/2025.svg")
    assert poster.status_code == 200 and "KẾT QUẢ CÔNG KHAI" in poster.get_data(as_text=True)


def test_reopen_makes_version_2_and_the_diff_page_and_csv(site):
    app, data, client = site
    analyst, leader = client("analyst_p"), client("leader_a")
    r = analyst.post("/staff/periods/close", data={"period": "2025", "unit": "P"})
    sid = int(re.search(r"/staff/periods/(\d+)", r.headers["Location"]).group(1))
    assert leader.post(f"/staff/periods/{sid}/reopen", data={"reason": "Phiếu trùng"}).status_code == 403
    assert analyst.post(f"/staff/periods/{sid}/reopen", data={"reason": ""}).status_code == 400
    r = analyst.post(f"/staff/periods/{sid}/reopen", data={"reason": "Phiếu trùng lặp ở xã A"})
    assert r.status_code == 303
    listing = analyst.get("/staff/periods").get_data(as_text=True)
    assert "đang mở để đính chính" in listing and "Phiếu trùng lặp ở xã A" in listing
    with app.app_context():
        from survey_app.extensions import db
        from survey_app.models import Response

        db.session.execute(sa.update(Response).where(Response.id == uuid.UUID(data["response"]))
                           .values(excluded=True))
        db.session.commit()
    r = analyst.post("/staff/periods/close", data={"period": "2025", "unit": "P"})
    sid2 = int(re.search(r"/staff/periods/(\d+)", r.headers["Location"]).group(1))
    assert sid2 != sid
    page = analyst.get(f"/staff/periods/{sid2}/diff/{sid}").get_data(as_text=True)
    assert 'data-unit="P-A"' in page and 'data-unit="P-B"' not in page  # only what moved
    assert "Phiếu trùng lặp ở xã A" in page and "120 → 119" in page
    assert 'data-unit="P-B"' in analyst.get(f"/staff/periods/{sid2}/diff/{sid}?all=1").get_data(as_text=True)
    csv_text = analyst.get(f"/staff/periods/{sid2}/diff/{sid}.csv").get_data(as_text=True)
    assert csv_text.lstrip("\ufeff").startswith("unit_code,level,name_vi,change")
    assert re.search(r"^P-A,unit,.*,changed,", csv_text, re.M)
    # version 1 stays readable
    assert analyst.get(f"/staff/periods/{sid}").status_code == 200
    # another province's analyst sees neither
    outsider = client("analyst_q")
    assert outsider.get(f"/staff/periods/{sid}").status_code == 404
    assert outsider.get(f"/staff/periods/{sid2}/diff/{sid}.csv").status_code == 404


def test_target_change_for_a_closed_year_is_refused(site):
    app, data, client = site
    admin = client("admin")
    with app.app_context():
        from survey_app.services import publishing

        publishing.close_period("2025", "P")
    r = admin.post("/staff/admin/targets", data={"year": "2025", "unit_kind": "commune", "target": "95"})
    assert r.status_code == 409 and "2025" in r.get_data(as_text=True)
    r = admin.post("/staff/admin/targets", data={"year": "2026", "unit_kind": "commune", "target": "95"})
    assert r.status_code == 302
    with app.app_context():
        from survey_app.extensions import db
        from survey_app.models import Target

        targets = {(t.year, t.unit_kind): t.target for t in db.session.scalars(sa.select(Target))}
        tid = db.session.scalar(sa.select(Target.id).where(Target.year == 2025))
    assert targets == {(2025, "commune"): 0.8, (2026, "commune"): 0.95}
    assert admin.post(f"/staff/admin/targets/{tid}/delete").status_code == 409


def test_report_and_its_exports_name_the_closed_version(site):
    app, data, client = site
    analyst = client("analyst_p")
    page = analyst.get("/staff/report/2025").get_data(as_text=True)
    assert 'id="version-note"' not in page
    with app.app_context():
        from survey_app.services import publishing

        publishing.close_period("2025", "P")
    page = analyst.get("/staff/report/2025").get_data(as_text=True)
    note = page.split('id="version-note">', 1)[1].split("</p>", 1)[0]
    assert "phiên bản 1" in note and "P" in note
    csv_text = analyst.get("/staff/report/2025.csv").get_data(as_text=True)
    header, first = csv_text.lstrip("\ufeff").splitlines()[:2]
    assert header.endswith(",closed_version") and first.endswith(",P:v1 closed")
    with app.app_context():
        publishing.reopen_period("2025", "P", reason="Sửa số giao dịch của xã B")
    page = analyst.get("/staff/report/2025").get_data(as_text=True)
    assert "phiên bản 2" in page.split('id="version-note">', 1)[1].split("</p>", 1)[0]
    assert analyst.get("/staff/report/2025.csv").get_data(as_text=True).splitlines()[1].endswith(",P:v2 open")


def test_paper_entry_into_a_closed_period_is_refused(app, client, place):
    import datetime as dt

    from tests.staff.test_entry import _login, _sheet

    with app.app_context():
        from survey_app.extensions import db
        from survey_app.models import Unit
        from survey_app.services import publishing
        from tests.factories import make_response

        make_response(db.session.get(Unit, place.unit_id))
        db.session.commit()
        publishing.close_period("2025", "XA-TP")
    _login(app, client)
    for day, status in (("2025-12-10", 400), (dt.date.today().isoformat(), 303)):
        data = dict(_sheet(client, place.counter_code, date=day), overall="4", staff="5")
        r = client.post("/staff/entry/form", data=data)
        assert r.status_code == status, (day, r.status_code)
        if status == 400:
            assert "2025" in r.get_data(as_text=True) and "XA-TP" in r.get_data(as_text=True)


def test_unit_page_and_api_results_name_the_closed_version(site):
    """Every page and API answer for a closed period says which version it shows."""
    app, data, client = site
    analyst = client("analyst_p")
    with app.app_context():
        from survey_app.extensions import db
        from survey_app.models import Unit
        from survey_app.services import publishing
        from tests.factories import make_api_client

        _, key = make_api_client(db.session.scalar(sa.select(Unit).where(Unit.code == "P")))
    api = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    from tests.factories import PUBLISHING_UNITS

    unit_code = next(c for c, spec in PUBLISHING_UNITS.items() if spec[0] == "P")  # a commune of P
    before = api.get("/api/v1/results?period=2025&unit=P", headers=auth).get_json()
    assert before["closed_version"] is None and before["version_note"] is None
    assert 'id="version-note"' not in analyst.get(f"/staff/units/{unit_code}?period=2025").get_data(as_text=True)
    with app.app_context():
        publishing.close_period("2025", "P")
    page = analyst.get(f"/staff/units/{unit_code}?period=2025").get_data(as_text=True)
    assert "phiên bản 1" in page.split('id="version-note">', 1)[1].split("</p>", 1)[0]
    after = api.get("/api/v1/results?period=2025&unit=P", headers=auth).get_json()
    assert after["closed_version"] == "P:v1 closed" and "1" in after["version_note"]
