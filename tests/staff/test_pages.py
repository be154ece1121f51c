"""Overview, unit page, exports, the annual report, imports and
administration, through the test client."""
import csv
import io
import re

from openpyxl import load_workbook


def _index_of(html: str) -> float:
    m = re.search(r'id="unit-index" data-index="([0-9.]+)"', html)
    assert m, "no index on the page"
    return float(m.group(1))


def test_overview_sort_filter_page_and_trend(sapp, world, as_role):
    c = as_role("analyst")
    html = c.get("/staff/").get_data(as_text=True)
    assert "Xã An Phú" in html and "Xã Bình Minh" in html
    assert "Năm báo cáo" in html and "Chỉ số hài lòng (bình quân 5 yếu tố) từ " in html
    assert "người dân hài lòng" not in html
    assert "▲" in html  # A rose significantly from last year
    asc = c.get("/staff/?sort=name&dir=asc").get_data(as_text=True)
    desc = c.get("/staff/?sort=name&dir=desc").get_data(as_text=True)
    assert asc.index("Xã An Phú") < asc.index("Xã Bình Minh")
    assert desc.index("Xã An Phú") > desc.index("Xã Bình Minh")
    assert 'aria-sort="descending"' in desc
    none = c.get("/staff/?kind=province").get_data(as_text=True)  # filter keeps only that kind
    assert "Xã An Phú" in none  # unknown kind in this view is ignored, not an error
    roll = c.get("/staff/?view=rollup").get_data(as_text=True)
    assert "Tỉnh Phú Thịnh" in roll
    sapp.config["STAFF_PAGE_SIZE"] = 1
    p1 = c.get("/staff/?sort=name&dir=asc").get_data(as_text=True)
    p2 = c.get("/staff/?sort=name&dir=asc&page=2").get_data(as_text=True)
    assert "Xã An Phú" in p1 and "Xã Bình Minh" not in p1
    assert "Xã Bình Minh" in p2 and "Trang 2/2" in p2
    en = c.get("/staff/?lang=en").get_data(as_text=True)
    assert "Overview" in en and "Satisfaction index (average of the 5 elements) from " in en


def test_unit_page_explains_and_shows_everything(sapp, world, as_role):
    c = as_role("unit_leader")
    html = c.get("/staff/units/P-A").get_data(as_text=True)
    assert "Chỉ số hài lòng" in html
    assert re.search(r"Chỉ số hài lòng \(bình quân 5 yếu tố\) từ \d\d/\d\d/\d{4} đến \d\d/\d\d/\d{4}: "
                     r"\d+,\d% \(khoảng tin cậy 95%: từ \d+,\d% đến \d+,\d%\)\.", html)
    assert not re.search(r"ít nhất \d+%", html) and "người dân hài lòng" not in html
    for part in ("Tiếp cận dịch vụ", "Xu hướng", "Người dân đã trả lời thế nào", "So sánh các quầy", "Góp ý",
                 "Phiếu bị gắn cờ", "duplicate", "Cán bộ nhiệt tình"):
        assert part in html, part
    assert "Cần cải thiện điều gì trước" in html and 'name=drivers' not in html
    for name in ("elements", "trend", "distribution", "drivers", "counters"):
        r = c.get(f"/staff/units/P-A/charts/{name}.svg")
        assert r.status_code == 200 and r.mimetype == "image/svg+xml" and b"<svg" in r.data, name
    # comment filter by rating
    sat = c.get("/staff/units/P-A?element=overall&rating=unsatisfied").get_data(as_text=True)
    assert "Góp ý" in sat


def test_responses_csv_is_streamed_escaped_and_scoped(sapp, world, as_role):
    c = as_role("analyst")
    r = c.get("/staff/units/P-A/responses.csv")
    assert r.status_code == 200 and r.is_streamed
    assert "attachment" in r.headers["Content-Disposition"]
    text = r.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 130
    assert list(rows[0])[:7] == ["response_id", "unit_code", "submitted_at", "channel", "instrument", "stratum",
                                 "excluded"]
    assert {r["unit_code"] for r in rows} == {"P-A"}
    comments = [r["comment"] for r in rows if r["comment"].lstrip("'").startswith("=")]
    assert comments and all(cm.startswith("'=") for cm in comments)
    prov = c.get("/staff/units/P/responses.csv").get_data(as_text=True)
    assert "Q-Y" not in prov and len(prov.strip().splitlines()) == 1 + 170


def test_report_page_xlsx_and_csv(sapp, world, as_role):
    c = as_role("analyst")
    y = world["year"]
    html = c.get(f"/staff/report/{y}").get_data(as_text=True)
    assert "Xếp hạng đơn vị" in html and "Khoảng thứ hạng" in html and "Tỉnh Phú Thịnh" in html
    r = c.get(f"/staff/report/{y}.xlsx")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames[:3] == ["Đơn vị", "Tổng hợp", "Phương pháp"]  # then "Theo lĩnh vực" (Biểu 06 per field)
    units = wb.worksheets[0]
    values = [[cell.value for cell in row] for row in units.iter_rows()]
    hr = next(i for i, row in enumerate(values) if "Mã đơn vị" in row)  # below the official header
    header = values[hr]
    assert "Hạng" in header and "Chỉ số hài lòng" in header
    codes = [row[header.index("Mã đơn vị")] for row in values[hr + 1:]]
    assert set(codes) == {"P-A", "P-B"}
    idx = [row[header.index("Chỉ số hài lòng")] for row in values[hr + 1:]]
    assert all(0 < v < 1 for v in idx)
    method = {row[0].value: row[1].value for row in wb.worksheets[2].iter_rows() if row[0].value}
    assert str(method["Phương pháp"]).startswith("sipas-index")
    assert "Thời điểm chốt số liệu (phiếu cuối cùng)" in method
    r = c.get(f"/staff/report/{y}.csv")
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert {"rank", "rank_low", "rank_high", "index_ci_low", "method"} <= set(rows[0])
    assert {r["unit_code"] for r in rows} == {"P-A", "P-B", "P"}


def test_import_reports_row_errors_and_scope(sapp, world, as_role):
    c = as_role("analyst")
    bad = (b"unit_code,period_start,period_end,stratum,transactions\n"
           b"P-A,2026-01-01,2026-01-31,_all,10\n"
           b"P-A,2026-02-31,2026-02-28,_all,ten\n"
           b"Q-Y,2026-01-01,2026-01-31,_all,5\n")
    r = c.post("/staff/data/import", data={"kind": "volumes", "file": (io.BytesIO(bad), "v.csv")},
               content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert "Tệp chưa được nhập" in html and "ngoài phạm vi" in html
    good = b"unit_code,period_start,period_end,stratum,transactions\nP-B,2030-01-01,2030-01-31,_all,10\n"
    r = c.post("/staff/data/import", data={"kind": "volumes", "file": (io.BytesIO(good), "v.csv")},
               content_type="multipart/form-data")
    assert "Đã nhập 1 dòng" in r.get_data(as_text=True)
    r = c.post("/staff/data/import", data={"kind": "volumes", "file": (io.BytesIO(bad.replace(b"Q-Y", b"P-B")),
                                                                          "v2.csv")},
               content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert 'id="import-errors"' in html and "<td class=\"num\">3</td>" in html
    r = c.post("/staff/data/import", data={"kind": "units"})  # not offered to an analyst, and no file
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "Chọn loại dữ liệu trong tệp." in html and "Chọn tệp CSV để nhập." in html


def test_admin_changes_are_audited(sapp, world, as_role):
    c = as_role("admin")
    r = c.post("/staff/admin/users", data={"username": "moi", "role": "unit_leader", "unit_code": "P-B",
                                           "password": "mot mat khau dai"})
    assert r.status_code == 302
    r = c.post("/staff/admin/units/new", data={"code": "P-C", "name_vi": "Xã Mới", "kind": "commune",
                                               "parent_code": "P", "valid_from": "2025-07-01"})
    assert r.status_code == 302
    r = c.post("/staff/admin/units/P-B", data={"name_vi": "Xã Bình Minh", "kind": "commune", "parent_code": "P",
                                               "valid_to": "2026-12-31", "successor_code": "P-C"})
    assert r.status_code == 302
    r = c.post("/staff/admin/units/P-B", data={"name_vi": "Xã Bình Minh", "kind": "commune", "parent_code": "P-B"})
    assert r.status_code == 400 and "dưới chính nó" in r.get_data(as_text=True)
    assert c.post("/staff/admin/targets", data={"year": "2026", "unit_kind": "province",
                                                "target": "92,5"}).status_code == 302
    r = c.post("/staff/admin/calendar", data={"cutoff_day": "31", "cutoff_month": "2"})
    assert r.status_code == 400 and "Nhập ngày và tháng chốt số liệu hợp lệ." in r.get_data(as_text=True)
    c.post("/staff/units/P-A/counters/P-A-Q1/rotate")
    html = c.get("/staff/admin/audit").get_data(as_text=True)
    for action in ("user_create", "unit_create", "unit_update", "target_set", "token_rotate"):
        assert action in html, action
    assert "calendar_update" not in html  # 31/02 refused
    from survey_app.extensions import db
    from survey_app.models import Counter, Target, Unit

    with sapp.app_context():
        b = db.session.query(Unit).filter_by(code="P-B").one()
        assert b.successor.code == "P-C" and str(b.valid_to) == "2026-12-31"
        assert db.session.query(Counter).filter_by(code="P-A-Q1").one().token_version == 2
        assert any(abs(t.target - 0.925) < 1e-9 for t in db.session.query(Target))
    r = c.get("/staff/units/P-A/counters/P-A-Q1/poster.png")
    assert r.status_code == 200 and r.data[:4] == b"\x89PNG"
    r = c.get("/staff/units/P-A/counters/P-A-Q1/poster.pdf")
    assert r.status_code == 200 and r.data[:4] == b"%PDF"
