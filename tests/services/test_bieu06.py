"""Biểu 06/VPCP/KSTT in and out: the table exported for a period and imported
again gives the same volumes (CSV and XLSX); the survey columns are the
field's own figures; imports keep the volume import's checks (scope, overlap,
replace, audit) and name the table's rows and headers."""
import csv
import datetime as dt
import io

import pytest
from sqlalchemy import delete, select

from analysis.schema import ALL_STRATUM
from survey_app.extensions import db
from survey_app.models import AuditLog, Dossier, ImportBatch, Volume
from survey_app.services import bieu06
from survey_app.services.csv_import import ImportRejected
from survey_app.services.periods import resolve_period
from tests.factories import make_response, make_unit, make_volume

UTC = dt.timezone.utc


def _seed():
    per = resolve_period("2025")
    prov = make_unit("P", kind="province")
    a = make_unit("P-A", parent=prov, name_vi="Xã An Phú")
    b = make_unit("P-B", parent=prov, name_vi="Xã Bình Minh")
    q = make_unit("Q", kind="province")
    make_volume(a, 400, start=per.first, end=per.last, stratum="ho_tich")
    make_volume(a, 200, start=per.first, end=per.last, stratum="dat_dai")
    make_volume(b, 300, start=per.first, end=per.last, stratum=ALL_STRATUM)
    make_volume(q, 90, start=per.first, end=per.last, stratum="ho_tich")
    t = dt.datetime(2025, 3, 1, 3, tzinfo=UTC)
    for i in range(40):
        make_response(a, {k: (5 if i % 4 else 2) for k in ("overall", "access", "procedure", "staff", "result",
                                                           "feedback")},
                      submitted_at=t + dt.timedelta(hours=i), stratum="ho_tich")
    for i in range(10):
        make_response(a, {k: 4 for k in ("overall", "access", "procedure", "staff", "result", "feedback")},
                      submitted_at=t + dt.timedelta(hours=i), stratum="dat_dai")
    for i in range(12):
        make_response(b, {k: 3 + i % 3 for k in ("overall", "access", "procedure", "staff", "result",
                                                 "feedback")}, submitted_at=t + dt.timedelta(hours=i))
    db.session.commit()
    return per, prov, a, b, q


def _volumes():
    from survey_app.models import Unit

    q = select(Unit.code, Volume.period_start, Volume.period_end, Volume.stratum, Volume.transactions).join(
        Unit, Unit.id == Volume.unit_id)
    return sorted(tuple(r) for r in db.session.execute(q))


def _forget_volumes():
    db.session.execute(delete(Volume))
    db.session.execute(delete(ImportBatch))
    db.session.commit()


def test_round_trip_csv_and_xlsx_give_the_same_volumes(ctx):
    per, prov, a, b, q = _seed()
    before = _volumes()
    rows = bieu06.table(per, [prov.id, a.id, b.id])
    assert {(r["unit_code"], r["stratum"]) for r in rows} == {("P-A", "ho_tich"), ("P-A", "dat_dai"),
                                                              ("P-B", ALL_STRATUM)}
    text = bieu06.to_csv(rows)
    header = next(csv.reader(io.StringIO(text)))
    assert header[:7] == ["Mã đơn vị", "Tên đơn vị", "Từ ngày", "Đến ngày", "STT", "Mã lĩnh vực", "Lĩnh vực"]
    assert "Số hồ sơ đã giải quyết: Tổng số" in header and "Chỉ số hài lòng (%)" in header
    xlsx = bieu06.to_xlsx(rows, period_label=per.label)
    _forget_volumes()
    res = bieu06.import_table(("\ufeff" + text).encode(), "bieu06.csv", actor="t")
    assert res.rows == 3
    expected = [v for v in before if v[0] != "Q"]
    assert _volumes() == expected
    _forget_volumes()
    assert bieu06.import_table(xlsx, "bieu06.xlsx", actor="t").rows == 3
    assert _volumes() == expected


def test_survey_columns_are_the_fields_own_figures(ctx):
    per, prov, a, b, q = _seed()
    rows = {(r["unit_code"], r["stratum"]): r for r in bieu06.table(per)}
    ht = rows[("P-A", "ho_tich")]
    assert ht["n"] == 40 and ht["N"] == 400 and ht["processed_total"] == 400
    assert ht["response_rate"] == pytest.approx(40 / 400)
    assert ht["index_ci_low"] < ht["index"] < ht["index_ci_high"]
    assert ht["index"] == pytest.approx(0.75, abs=0.01)  # 3 of 4 answered 5 on every item
    dd = rows[("P-A", "dat_dai")]
    assert dd["n"] == 10 and dd["index"] == pytest.approx(1.0)
    assert ht["field_name"].startswith("Tư pháp") and ht["stt"] == 1 and dd["stt"] == 2
    assert ht["received_total"] is None  # no dossier events: the dossier columns stay empty
    assert ("Q", "ho_tich") in rows  # unscoped: every unit
    scoped = bieu06.table(per, [a.id])
    assert {r["unit_code"] for r in scoped} == {"P-A"}


def test_dossier_columns_from_events(ctx):
    per, prov, a, b, q = _seed()
    _forget_volumes()  # a unit's volumes come from its events
    t0 = dt.datetime(2025, 2, 1, 2, tzinfo=UTC)
    day = dt.timedelta(days=1)
    spec = [  # (received, due, returned)
        (t0, t0 + 5 * day, t0 + 1 * day),            # early
        (t0, t0 + 5 * day, t0 + 5 * day - dt.timedelta(hours=2)),  # on time (the due day)
        (t0, t0 + 5 * day, t0 + 6 * day),            # late
        (t0, per.end + 5 * day, None),               # pending, in time
        (t0, t0 + 5 * day, None),                    # pending, overdue
        (per.start - 10 * day, per.start - 5 * day, t0),  # carried over, late
    ]
    from survey_app.services.integration import local_day

    for i, (rec, due, ret) in enumerate(spec):
        db.session.add(Dossier(code=f"HS-{i}", unit_id=b.id, stratum="ho_tich", received_at=rec, due_at=due,
                               returned_at=ret, returned_on=local_day(ret) if ret else None))
    db.session.commit()
    r = next(r for r in bieu06.table(per, [b.id]) if r["stratum"] == "ho_tich")
    assert (r["received_total"], r["carried_over"], r["received_new"]) == (6, 1, 5)
    assert (r["processed_total"], r["processed_early"], r["processed_on_time"], r["processed_late"]) == (4, 1, 1, 2)
    assert (r["pending_total"], r["pending_in_time"], r["pending_overdue"]) == (2, 1, 1)
    assert r["N"] == 4  # the volumes from events are the dossiers returned


def _table_csv(rows, title=True, sep=","):
    head = ["Mã đơn vị", "Từ ngày", "Đến ngày", "Mã lĩnh vực", "Lĩnh vực", "Số hồ sơ đã giải quyết: Tổng số"]
    lines = ([["Biểu 06/VPCP/KSTT"], ["Kỳ báo cáo: 2025"]] if title else []) + [head] + rows
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\n").writerows(lines)
    return buf.getvalue().encode()


def test_import_checks_scope_overlap_replace_and_names_the_tables_rows(ctx):
    per, prov, a, b, q = _seed()
    new = _table_csv([["P-A", "01/01/2026", "31/03/2026", "ho_tich", "Tư pháp", "1.234"],
                      ["", "", "", "", "Tổng cộng", "1.234"]], sep=";")
    assert bieu06.import_table(new, "q1.csv", actor="t", scope={prov.id, a.id, b.id}).rows == 1
    assert ("P-A", dt.date(2026, 1, 1), dt.date(2026, 3, 31), "ho_tich", 1234) in _volumes()
    # outside the importer's scope: the table's row 4 (two title rows, the header) and its header
    with pytest.raises(ImportRejected) as exc:
        bieu06.import_table(_table_csv([["Q", "2026-01-01", "2026-03-31", "ho_tich", "", "5"]]), "q.csv",
                            actor="t", scope={prov.id, a.id, b.id})
    assert [(e.line, e.column) for e in exc.value.errors] == [(4, "Mã đơn vị")]
    # overlapping a stored row: refused, unless replace (audited)
    over = _table_csv([["P-A", "2025-06-01", "2025-06-30", "ho_tich", "", "50"]])
    with pytest.raises(ImportRejected) as exc:
        bieu06.import_table(over, "over.csv", actor="t")
    assert exc.value.errors[0].line == 4 and exc.value.errors[0].column == "Từ ngày"
    db.session.rollback()
    assert bieu06.import_table(over, "over.csv", actor="t", replace=True).updated == 1
    actions = set(db.session.scalars(select(AuditLog.action)))
    assert {"import_volumes", "replace_volumes"} <= actions
    # a bad count names its cell
    with pytest.raises(ImportRejected) as exc:
        bieu06.import_table(_table_csv([["P-B", "2026-01-01", "2026-03-31", "", "", "nhiều"]]), "bad.csv",
                            actor="t")
    assert exc.value.errors[0].column == "Số hồ sơ đã giải quyết: Tổng số"
    db.session.rollback()
    # not a Biểu 06 table at all
    with pytest.raises(ImportRejected) as exc:
        bieu06.import_table(b"ten,so\nP-A,1\n", "x.csv", actor="t")
    assert "Mã đơn vị" in str(exc.value)
    with pytest.raises(ImportRejected) as exc:  # the header, without the period columns
        bieu06.import_table("Mã đơn vị,Số hồ sơ đã giải quyết: Tổng số\nP-A,1\n".encode(), "x.csv", actor="t")
    assert "“Từ ngày”, “Đến ngày”" in str(exc.value)
    with pytest.raises(ImportRejected):
        bieu06.import_table(b"PK\x03\x04garbage", "x.xlsx", actor="t")


def test_api_volumes_take_the_tables_headers(ctx):
    from survey_app.services.integration import _volume_row

    per, prov, a, b, q = _seed()
    row = _volume_row({"Mã đơn vị": "P-A", "Từ ngày": "2026-01-01", "Đến ngày": "2026-01-31",
                       "Mã lĩnh vực": "ho_tich", "Số hồ sơ đã giải quyết: Tổng số": 7}, {"P-A": a.id})
    assert row == {"unit_id": a.id, "period_start": dt.date(2026, 1, 1), "period_end": dt.date(2026, 1, 31),
                   "stratum": "ho_tich", "transactions": 7}
