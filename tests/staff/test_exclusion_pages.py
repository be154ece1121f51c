"""Four-eyes exclusions through the staff pages (issue 11 hole 7): the unit
page asks, the approval page decides, the unit page and the annual report
count exclusions (approved / waiting) and the typed share per unit."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

from openpyxl import load_workbook
from sqlalchemy import select

from tests.helpers import csrf_login, csrf_token_of


def _index_of(html: str) -> float:
    m = re.search(r'id="unit-index" data-index="([0-9.]+)"', html)
    assert m, "no index on the page"
    return float(m.group(1))


def _unflagged(app, code="P-A") -> str:
    from survey_app.extensions import db
    from survey_app.models import Response, Unit

    with app.app_context():
        unit = db.session.scalar(select(Unit).where(Unit.code == code))
        return str(db.session.scalars(select(Response.id).where(Response.unit_id == unit.id, Response.flags == "")
                                      .order_by(Response.submitted_at.desc())).first())


def _state(app, rid):
    """(excluded, [status of its requests])."""
    import uuid

    from survey_app.extensions import db
    from survey_app.models import ExclusionRequest, Response

    with app.app_context():
        resp = db.session.get(Response, uuid.UUID(rid))
        return resp.excluded, list(db.session.scalars(select(ExclusionRequest.status)
                                                      .where(ExclusionRequest.response_id == resp.id)))


def _pending_id(app, rid) -> int:
    import uuid

    from survey_app.extensions import db
    from survey_app.models import ExclusionRequest

    with app.app_context():
        return db.session.scalar(select(ExclusionRequest.id).where(
            ExclusionRequest.response_id == uuid.UUID(rid), ExclusionRequest.status == "pending"))


def test_a_crafted_post_by_the_unit_leader_for_an_unflagged_response_is_refused(make_app, world):
    """The attack of the probe: a signed-in leader posts, with a valid CSRF
    token, an exclusion of an ordinary (unflagged) response of their unit."""
    app = make_app(STAFF_LOGIN_RATE="1000 per minute")  # CSRF on
    c = app.test_client()
    assert csrf_login(c, world["users"]["unit_leader"]).status_code == 302
    page = c.get("/staff/units/P-A").get_data(as_text=True)
    before = _index_of(page)
    token = csrf_token_of(c, "/staff/units/P-A")
    victim = _unflagged(app)
    assert victim not in page  # the page offers no button for it: the post is crafted
    r = c.post(f"/staff/units/P-A/responses/{victim}/exclusion",
               data={"csrf_token": token, "reason": "phiếu không hợp lệ"})
    assert r.status_code == 403
    assert "chỉ được đề nghị loại (hoặc tính lại) phiếu đã bị hệ thống gắn cờ" in r.get_data(as_text=True)
    assert _state(app, victim) == (False, [])
    assert _index_of(c.get("/staff/units/P-A").get_data(as_text=True)) == before
    # without the token the post is refused before anything else
    assert c.post(f"/staff/units/P-A/responses/{world['flagged']}/exclusion",
                  data={"reason": "phiếu trùng lặp"}).status_code == 400
    # a flagged one with the token: recorded, pending, the figure does not move
    r = c.post(f"/staff/units/P-A/responses/{world['flagged']}/exclusion",
               data={"csrf_token": token, "reason": "phiếu trùng lặp"})
    assert r.status_code == 302
    assert _state(app, world["flagged"]) == (False, ["pending"])
    assert _index_of(c.get("/staff/units/P-A").get_data(as_text=True)) == before


def test_exclude_and_count_again_need_an_analyst_outside_the_unit(sapp, world, as_role):
    leader, analyst = as_role("unit_leader"), as_role("analyst")
    flagged = world["flagged"]
    before = _index_of(leader.get("/staff/units/P-A").get_data(as_text=True))
    # a reason is required
    r = leader.post(f"/staff/units/P-A/responses/{flagged}/exclusion", data={"reason": ""})
    assert r.status_code == 400 and "Nhập lý do" in r.get_data(as_text=True)
    r = leader.post(f"/staff/units/P-A/responses/{flagged}/exclusion", data={"reason": "phiếu trùng lặp"})
    assert r.status_code == 302
    page = leader.get("/staff/units/P-A").get_data(as_text=True)
    assert _index_of(page) == before  # pending does not count
    assert f'data-response="{flagged}" data-pending="exclude"' in page and "chờ duyệt: loại" in page
    assert 'data-excluded="0" data-pending="1"' in page
    # the leader has no approval page, the analyst (scoped to the province) does, with a count
    assert leader.get("/staff/exclusions").status_code == 403
    assert 'id="menu-exclusions"' not in page
    menu = analyst.get("/staff/").get_data(as_text=True)
    assert re.search(r'id="menu-exclusions"[^>]*>Duyệt loại phiếu <span class="badge warn">1</span>', menu)
    listing = analyst.get("/staff/exclusions").get_data(as_text=True)
    assert "phiếu trùng lặp" in listing and "duplicate" in listing and "P-A-Q" in listing
    assert "Hài lòng chung" in listing or "overall" in listing  # the answers are shown
    req = _pending_id(sapp, flagged)
    assert analyst.post(f"/staff/exclusions/{req}/decision", data={"decision": "maybe"}).status_code == 400
    r = analyst.post(f"/staff/exclusions/{req}/decision", data={"decision": "approve", "note": "đã kiểm tra"})
    assert r.status_code == 302
    page = leader.get("/staff/units/P-A").get_data(as_text=True)
    excluded = _index_of(page)
    assert excluded != before and 'data-excluded="1" data-pending="0"' in page
    assert analyst.post(f"/staff/exclusions/{req}/decision", data={"decision": "approve"}).status_code == 409
    # counting it again: asked by the leader, pending, then approved
    r = leader.post(f"/staff/units/P-A/responses/{flagged}/inclusion", data={"reason": "kiểm tra lại: hợp lệ"})
    assert r.status_code == 302
    assert _index_of(leader.get("/staff/units/P-A").get_data(as_text=True)) == excluded
    req = _pending_id(sapp, flagged)
    assert analyst.post(f"/staff/exclusions/{req}/decision", data={"decision": "approve"}).status_code == 302
    assert _index_of(leader.get("/staff/units/P-A").get_data(as_text=True)) == before

    from survey_app.extensions import db
    from survey_app.models import AuditLog

    with sapp.app_context():
        acts = [(a.actor, a.action) for a in db.session.scalars(select(AuditLog).where(
            AuditLog.target_type == "response").order_by(AuditLog.id))]
    assert acts == [("unit_leader", "exclusion_request"), ("analyst", "response_exclude"),
                    ("unit_leader", "exclusion_request"), ("analyst", "response_include")]
    # counter staff may not ask at all
    assert as_role("counter_staff").post(f"/staff/units/P-A/responses/{flagged}/exclusion",
                                         data={"reason": "phiếu trùng lặp"}).status_code == 403


def test_the_requester_cannot_approve_their_own_request(sapp, world, as_role):
    analyst, admin = as_role("analyst"), as_role("admin")
    plain = _unflagged(sapp)
    r = analyst.post(f"/staff/units/P-A/responses/{plain}/exclusion", data={"reason": "phiếu nhập thử"})
    assert r.status_code == 302
    req = _pending_id(sapp, plain)
    listing = analyst.get("/staff/exclusions").get_data(as_text=True)
    assert "Ông/Bà là người đề nghị" in listing and f"/staff/exclusions/{req}/decision" not in listing
    r = analyst.post(f"/staff/exclusions/{req}/decision", data={"decision": "approve"})
    assert r.status_code == 403 and "một chuyên viên khác phải quyết định" in r.get_data(as_text=True)
    assert _state(sapp, plain) == (False, ["pending"])
    assert admin.post(f"/staff/exclusions/{req}/decision", data={"decision": "reject", "note": "không đủ căn cứ"}
                      ).status_code == 302
    assert _state(sapp, plain) == (False, ["rejected"])
    assert admin.post("/staff/exclusions/99999/decision", data={"decision": "approve"}).status_code == 404
    assert admin.post(f"/staff/exclusions/{10**30}/decision", data={"decision": "approve"}).status_code == 404


def test_the_requester_withdraws_from_the_unit_page(sapp, world, as_role):
    leader, analyst = as_role("unit_leader"), as_role("analyst")
    leader.post(f"/staff/units/P-A/responses/{world['flagged']}/exclusion", data={"reason": "phiếu trùng lặp"})
    req = _pending_id(sapp, world["flagged"])
    page = leader.get("/staff/units/P-A").get_data(as_text=True)
    assert f"/staff/exclusions/{req}/withdrawal" in page
    assert analyst.post(f"/staff/exclusions/{req}/withdrawal").status_code == 403
    assert leader.post(f"/staff/exclusions/{req}/withdrawal").status_code == 302
    assert _state(sapp, world["flagged"]) == (False, ["withdrawn"])
    assert "Không có đề nghị nào đang chờ" in analyst.get("/staff/exclusions").get_data(as_text=True)


def test_the_annual_report_counts_exclusions_and_the_typed_share_per_unit(sapp, world, as_role):
    from survey_app.extensions import db
    from survey_app.models import Unit
    from tests.factories import make_response

    with sapp.app_context():
        b = db.session.scalar(select(Unit).where(Unit.code == "P-B"))
        for _ in range(10):  # P-B: 40 QR responses + 10 typed
            make_response(b, {"overall": 5, "staff": 4}, channel="paper",
                          submitted_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
        db.session.commit()
    leader, analyst = as_role("unit_leader"), as_role("analyst")
    leader.post(f"/staff/units/P-A/responses/{world['flagged']}/exclusion", data={"reason": "phiếu trùng lặp"})
    y = world["year"]
    html = analyst.get(f"/staff/report/{y}").get_data(as_text=True)
    assert "Loại phiếu: đã duyệt / chờ duyệt" in html and "Nhập tay (giấy, điện thoại)" in html
    assert re.search(r'<tr data-unit="P-A".*?data-approved="0" data-pending="1"', html, re.S)
    assert re.search(r'<tr data-unit="P-B".*?data-approved="0" data-pending="0".*?data-share="0\.2"', html, re.S)
    admin = as_role("admin")
    admin.post(f"/staff/exclusions/{_pending_id(sapp, world['flagged'])}/decision", data={"decision": "approve"})
    rows = {r["unit_code"]: r for r in csv.DictReader(io.StringIO(
        analyst.get(f"/staff/report/{y}.csv").get_data(as_text=True).lstrip("\ufeff")))}
    assert (rows["P-A"]["exclusions_approved"], rows["P-A"]["exclusions_pending"]) == ("1", "0")
    assert rows["P-B"]["typed_share"] == "0.2" and rows["P-A"]["typed_share"] == "0"
    assert rows["P"]["exclusions_approved"] == "1"  # the province roll-up sums its units
    wb = load_workbook(io.BytesIO(analyst.get(f"/staff/report/{y}.xlsx").data))
    ws = wb.worksheets[0]
    hr = next(r for r in range(1, 12) if "Mã đơn vị" in [c.value for c in ws[r]])  # below the official header
    header = [c.value for c in ws[hr]]
    assert {"Phiếu loại đã duyệt", "Đề nghị loại chờ duyệt", "Tỷ lệ phiếu nhập từ giấy hoặc điện thoại"} <= set(header)
    by_code = {ws.cell(row=r, column=header.index("Mã đơn vị") + 1).value: r for r in range(hr + 1, ws.max_row + 1)}
    share = ws.cell(row=by_code["P-B"], column=header.index("Tỷ lệ phiếu nhập từ giấy hoặc điện thoại") + 1)
    assert share.value == 0.2 and share.number_format == "0.0%"
    # the unit page says it too
    page = analyst.get("/staff/units/P-B").get_data(as_text=True)
    assert 'data-typed="10" data-total="50"' in page and "Nhập từ phiếu giấy hoặc điện thoại: 20" in page
