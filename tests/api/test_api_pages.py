"""Dossier figures beside the index: the staff unit page (where N comes
from, offered, QĐ 766), the report CSV and `flask index compute`."""
from __future__ import annotations

import csv
import io

from tests.api.conftest import Api, seed_api_units
from tests.factories import dossier_event, make_user
from tests.helpers import login


def _setup(sapp):
    from survey_app.extensions import db

    keys = seed_api_units(sapp)
    with sapp.app_context():
        make_user("boss", role="admin")
        db.session.commit()
    api = Api(sapp.test_client(), keys["p"])
    events = []
    for i in range(4):
        events += [dossier_event(code=f"S-{i}", unit="P-A"),
                   dossier_event(code=f"S-{i}", unit="P-A", event="tra_ket_qua")]
    assert api.events(*events).json["accepted"] == 8
    api.get("/dossiers/S-0/link")
    return api


def test_unit_page_says_where_n_comes_from_and_shows_the_766_metric(sapp):
    _setup(sapp)
    staff = sapp.test_client()
    assert login(staff, "boss").status_code == 302
    page = staff.get("/staff/units/P-A?period=2025").get_data(as_text=True)
    assert "hồ sơ đã trả kết quả trong kỳ" in page  # N from events
    assert "Mức hài lòng theo QĐ 766" in page and "100%" in page and "gần 100%" in page
    assert "Đã nhận liên kết đánh giá: 1" in page
    other = staff.get("/staff/units/P-B?period=2025").get_data(as_text=True)
    assert "chưa biết N" in other and "không rõ" in other


def test_report_csv_and_index_compute_carry_offered_and_not_known(sapp, tmp_path):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import Unit
    from survey_app.services.reports import report_csv
    from tests.factories import make_response

    _setup(sapp)
    with sapp.app_context():
        make_response(db.session.scalar(select(Unit).where(Unit.code == "P-B")))  # a poster-only unit, 2025
        db.session.commit()
        from survey_app.services import stats

        res = stats.compute("2025")
        text = report_csv(res.table, res.meta, lang="vi")
    rows = {r["unit_code"]: r for r in csv.DictReader(io.StringIO(text))}
    a, b, p = rows["P-A"], rows["P-B"], rows["P"]
    assert (a["N"], a["offered"], a["link_responses"], a["link_response_rate"]) == ("4", "1", "0", "0")
    assert (a["m766_rate"], a["m766_points"]) == ("1", "6")
    assert (b["offered"], b["link_responses"], b["link_response_rate"]) == ("không rõ",) * 3
    assert b["m766_rate"] == ""
    assert (p["offered"], p["m766_rate"]) == ("1", "1")  # the province adds up its units
    with sapp.app_context():
        en = report_csv(res.table, res.meta, lang="en")
    assert "not known" in en
    out = tmp_path / "idx.csv"
    r = sapp.test_cli_runner().invoke(args=["index", "compute", "--period", "2025", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "QĐ 766" in r.output and "gần 100%" in r.output
    cli_rows = {x["unit_code"]: x for x in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig")))}
    assert cli_rows["P-B"]["offered"] == "không rõ" and cli_rows["P-A"]["offered"] == "1"


def test_admin_page_creates_shows_the_key_once_and_revokes(sapp):
    import re

    from survey_app.extensions import db
    from tests.factories import make_unit

    with sapp.app_context():
        make_unit("K")
        make_user("boss", role="admin")
        make_user("lead", role="unit_leader", unit=None)
        db.session.commit()
    staff = sapp.test_client()
    assert login(staff, "boss").status_code == 302
    r = staff.post("/staff/admin/api", data={"name": "vnpt-igate", "unit_code": "K", "right_events": "1",
                                             "right_links": "1"})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    key = re.search(r'<code id="api-key">([^<]+)</code>', r.get_data(as_text=True)).group(1)
    assert Api(sapp.test_client(), key).events(dossier_event(unit="K")).json["accepted"] == 1
    listing = staff.get("/staff/admin/api").get_data(as_text=True)
    assert "vnpt-igate" in listing and "events,links" in listing and key not in listing
    bad_unit = {"name": "x", "unit_code": "NOPE", "right_events": "1"}
    assert staff.post("/staff/admin/api", data=bad_unit).status_code == 400
    assert staff.post("/staff/admin/api", data={"name": "y", "unit_code": "K"}).status_code == 400
    assert staff.post("/staff/admin/api", data={"name": "vnpt-igate", "unit_code": "K",
                                                "right_events": "1"}).status_code == 400
    cid = re.search(r'/staff/admin/api/(\d+)/revoke', listing).group(1)
    assert staff.post(f"/staff/admin/api/{cid}/revoke").status_code == 302
    assert Api(sapp.test_client(), key).events(dossier_event(unit="K")).status_code == 401
    other = sapp.test_client()
    assert login(other, "lead").status_code == 302
    assert other.get("/staff/admin/api").status_code == 403
