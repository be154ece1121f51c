"""Biểu 06 on the staff pages and the CLI: the report's download (CSV, XLSX;
scoped, audited), the import page taking the same table back (overlap
refused without the box, scope kept), `flask bieu06 export|import`."""
import csv
import io

from openpyxl import load_workbook
from sqlalchemy import delete, select

from survey_app.extensions import db
from survey_app.models import AuditLog, ImportBatch, Volume


def _post(client, data: bytes, name="bieu06.xlsx", **extra):
    return client.post("/staff/data/import", data=dict({"kind": "bieu06", "file": (io.BytesIO(data), name)}, **extra),
                       content_type="multipart/form-data")


def _volumes(app):
    from survey_app.models import Unit

    with app.app_context():
        q = select(Unit.code, Volume.period_start, Volume.period_end, Volume.stratum, Volume.transactions).join(
            Unit, Unit.id == Volume.unit_id)
        return sorted(tuple(r) for r in db.session.execute(q))


def test_report_downloads_bieu06_scoped_and_audited(sapp, world, as_role):
    c = as_role("analyst")  # province P: P-A, P-B; Q-Y is outside
    y = world["year"]
    page = c.get(f"/staff/report/{y}").get_data(as_text=True)
    assert f"/staff/report/{y}/bieu06.xlsx" in page and "theo lĩnh vực và đơn vị" in page
    r = c.get(f"/staff/report/{y}/bieu06.csv")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert {x["Mã đơn vị"] for x in rows} == {"P-A", "P-B"}
    a = next(x for x in rows if x["Mã đơn vị"] == "P-A")
    assert a["Số hồ sơ đã giải quyết: Tổng số"] == "1000" and a["Số phiếu khảo sát (n)"] == "130"
    assert 50 < float(a["Chỉ số hài lòng (%)"]) < 100
    x = c.get(f"/staff/report/{y}/bieu06.xlsx")
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.data)).active
    assert ws["A1"].value == "Biểu 06/VPCP/KSTT" and ws["A4"].value == "Mã đơn vị"
    assert c.get(f"/staff/report/{y}/bieu06.pdf").status_code == 404
    assert c.get(f"/staff/report/{y}/bieu06.csv?period=nonsense").status_code == 404
    assert c.get(f"/staff/report/{y}/bieu06.csv?period={y - 1}").status_code == 404
    assert c.get(f"/staff/report/{y}/bieu06.csv?period={y}-Q1").status_code == 200
    with sapp.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "export_bieu06")) is not None
    leader = as_role("unit_leader")  # P-A only
    rows = list(csv.DictReader(io.StringIO(leader.get(f"/staff/report/{y}/bieu06.csv").get_data(as_text=True)
                                           .lstrip("\ufeff"))))
    assert {x["Mã đơn vị"] for x in rows} == {"P-A"}


def test_import_page_takes_the_exported_table_back(sapp, world, as_role):
    c = as_role("analyst")
    y = world["year"]
    before = _volumes(sapp)
    xlsx = c.get(f"/staff/report/{y}/bieu06.xlsx").data
    r = _post(c, xlsx)
    assert r.status_code == 422 and "trùng thời gian" in r.get_data(as_text=True)  # the stored rows: refused
    r = _post(c, xlsx, replace="y")
    assert r.status_code == 200 and "Đã nhập 2 dòng" in r.get_data(as_text=True)
    assert _volumes(sapp) == before  # the same volumes again
    # the unit leader of P-A cannot import P-B's row
    leader = as_role("unit_leader")
    r = _post(leader, xlsx, replace="y")
    assert r.status_code in (403, 422)
    assert _volumes(sapp) == before


def test_cli_export_then_import_round_trip(sapp, world, tmp_path):
    runner = sapp.test_cli_runner()
    y = world["year"]
    out = tmp_path / "b06.xlsx"
    res = runner.invoke(args=["bieu06", "export", "--period", str(y), "--unit", "P", "--out", str(out)])
    assert res.exit_code == 0, res.output
    before = _volumes(sapp)
    with sapp.app_context():
        db.session.execute(delete(Volume))
        db.session.execute(delete(ImportBatch))
        db.session.commit()
    res = runner.invoke(args=["bieu06", "import", str(out)])
    assert res.exit_code == 0, res.output
    after = _volumes(sapp)
    assert after == [v for v in before if v[0] in ("P-A", "P-B") and str(v[1].year) in (str(y - 1), str(y))
                     and v in after] and len(after) == 2
    res = runner.invoke(args=["bieu06", "import", str(out)])
    assert res.exit_code != 0  # the same table twice
    csv_out = tmp_path / "b06.csv"
    res = runner.invoke(args=["bieu06", "export", "--period", str(y), "--out", str(csv_out)])
    assert res.exit_code == 0 and "Mã đơn vị" in csv_out.read_text(encoding="utf-8-sig")
