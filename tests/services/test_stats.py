"""The database path (SQL aggregation → analysis) equals the CSV path
(export → python -m analysis) on the same data."""
import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from analysis import IndexOptions, compute_index, read_responses
from analysis.schema import ITEM_KEYS
from survey_app.extensions import db
from survey_app.models import Response
from survey_app.services import csv_export, stats
from tests.factories import make_counter, make_response, make_unit, make_volume

UTC = dt.timezone.utc


def _seed_small(rng):
    prov = make_unit("P", kind="province")
    dist = make_unit("H", kind="district", parent=prov, valid_to=dt.date(2025, 7, 1))
    old = make_unit("H-X1", kind="commune", parent=dist, valid_to=dt.date(2025, 7, 1))
    new = make_unit("X1", kind="commune", parent=prov, valid_from=dt.date(2025, 7, 1))
    other = make_unit("X2", kind="commune", parent=prov)
    quiet = make_unit("X3", kind="commune", parent=prov)
    old.successor = new
    for u in (old, new, other):
        c = make_counter(u)
        for i in range(int(rng.integers(20, 60))):
            day = dt.datetime(2025, 1, 5, 2, tzinfo=UTC) + dt.timedelta(days=int(rng.integers(0, 330)))
            if u is old:
                day = min(day, dt.datetime(2025, 6, 29, tzinfo=UTC))
            if u is new:
                day = max(day, dt.datetime(2025, 7, 2, tzinfo=UTC))
            answers = {k: int(v) for k, v in zip(ITEM_KEYS,
                                                 rng.integers(1, 6, 6)) if rng.random() > 0.15}
            make_response(u, answers, counter=c, submitted_at=day, stratum=str(rng.choice(["ho_tich", "_all"])),
                          excluded=bool(rng.random() < 0.05), age_group="under_18" if rng.random() < 0.03 else None)
    # outside the report year 2025
    make_response(other, {"overall": 1}, submitted_at=dt.datetime(2025, 12, 20, tzinfo=UTC))
    for u, n in ((old, 400), (new, 500), (other, 900), (quiet, 300)):
        make_volume(u, n, stratum="_all")
        make_volume(u, n // 2, stratum="ho_tich")
    db.session.commit()


@pytest.mark.parametrize("ci", ["wilson", "beta", "logit"])
def test_database_path_equals_csv_path(ctx, ci):
    _seed_small(np.random.default_rng(3))
    db_result = stats.compute_index("2025", ci=ci, target=0.9)
    # The CSV path: export what the app stores, read it as the analysis CLI does.
    buf = io.StringIO()
    csv_export.write_csv(csv_export.iter_response_rows(db.session), buf)
    responses = read_responses(io.StringIO(buf.getvalue()))
    volumes = stats.volumes_frame()
    units = stats.units_frame()
    csv_result = compute_index(responses, volumes, units, period="2025", options=IndexOptions(ci=ci, target=0.9))
    a = db_result.table.sort_values(["level", "unit_code"]).reset_index(drop=True)
    b = csv_result.table.sort_values(["level", "unit_code"]).reset_index(drop=True)
    assert list(a["unit_code"]) == list(b["unit_code"])
    assert "X3" in set(a["unit_code"])  # a unit with volume but no responses still has a row
    for col in b.columns:
        if col in ("method",):
            continue
        if pd.api.types.is_numeric_dtype(b[col]):
            np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=0, atol=1e-12,
                                       err_msg=col)
        else:
            assert a[col].fillna("").astype(str).tolist() == b[col].fillna("").astype(str).tolist(), col
    assert db_result.meta["n_used"] == csv_result.meta["n_used"]
    assert db_result.meta["n_left_out"]["outside_period"] == 1
    assert db_result.meta["n_left_out"]["excluded"] == csv_result.meta["n_left_out"]["excluded"]


def test_compressed_frame_is_smaller_than_responses(ctx):
    _seed_small(np.random.default_rng(4))
    frame = stats.response_frame("2025")
    n = db.session.query(Response).count()
    assert frame["count"].sum() == n - 1  # one response lies outside 2025
    assert len(frame) <= n


def test_scope_limits_rows(ctx):
    _seed_small(np.random.default_rng(5))
    from survey_app.models import Unit
    from survey_app.services.units import subtree_ids

    x2 = db.session.scalar(select(Unit).where(Unit.code == "X2"))
    res = stats.compute_index("2025", unit_ids=subtree_ids(x2.id))
    assert set(res.table["unit_code"]) == {"X2"}


def test_index_compute_command(runner, ctx, tmp_path):
    _seed_small(np.random.default_rng(6))
    out = tmp_path / "idx.csv"
    res = runner.invoke(args=["index", "compute", "--period", "2025", "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert {"unit_code", "level", "index", "index_ci_low", "index_ci_high", "adequacy", "target_status"} <= set(
        table.columns)
    assert set(table["level"]) >= {"unit", "root"}
    res = runner.invoke(args=["index", "compute", "--period", "2025-Q9", "--out", str(out)])
    assert res.exit_code == 2 and "Kỳ không hợp lệ" in res.output


def test_pattern_column_matches_answers(ctx):
    from survey_app.models import Answer, answer_pattern

    _seed_small(np.random.default_rng(7))
    answers: dict = {}
    for rid, key, value in db.session.execute(select(Answer.response_id, Answer.item_key, Answer.value)):
        answers.setdefault(rid, {})[key] = value
    rows = db.session.execute(select(Response.id, Response.pattern)).all()
    assert rows and all(p == answer_pattern(answers.get(rid, {})) for rid, p in rows)
    assert any(p > 0 for _, p in rows)


def test_reporting_calendar_row_sets_the_cut_off(ctx):
    from survey_app.models import ReportingCalendar
    from survey_app.services.periods import current_report_year, resolve_period

    assert resolve_period("2025").first.isoformat() == "2024-12-15"  # configuration default
    db.session.add(ReportingCalendar(key="default", cutoff_month=12, cutoff_day=1))
    db.session.commit()
    p = resolve_period("2025")
    assert (p.first.isoformat(), p.last.isoformat()) == ("2024-12-01", "2025-11-30")
    assert current_report_year(dt.datetime(2025, 12, 5, tzinfo=UTC)) == 2026


@pytest.mark.parametrize("ci", ["wilson", "beta"])
def test_map_successors_keeps_the_design_on_the_database_path(ctx, ci):
    """METHODOLOGY §6: mapping changes the domains only; root and unchanged parents are identical."""
    _seed_small(np.random.default_rng(5))
    plain = stats.compute_index("2025", ci=ci, target=0.9).table.set_index(["level", "unit_code"])
    mapped_result = stats.compute_index("2025", ci=ci, target=0.9, map_successors=True)
    mapped = mapped_result.table.set_index(["level", "unit_code"])
    numeric = [c for c in plain.columns if pd.api.types.is_numeric_dtype(plain[c])]
    for key in [("root", "_root"), ("province", "P"), ("unit", "X2"), ("unit", "X3")]:
        np.testing.assert_array_equal(plain.loc[key, numeric].to_numpy(float), mapped.loc[key, numeric].to_numpy(float),
                                      err_msg=str(key))
        assert plain.loc[key, "flags"] == mapped.loc[key, "flags"]
    # the successor's N is the sum over the units mapped into it; the retired commune has no row
    assert mapped.loc[("unit", "X1"), "N"] == plain.loc[("unit", "X1"), "N"] + plain.loc[("unit", "H-X1"), "N"]
    assert mapped.loc[("unit", "X1"), "n"] == plain.loc[("unit", "X1"), "n"] + plain.loc[("unit", "H-X1"), "n"]
    assert ("unit", "H-X1") not in mapped.index
    # the CSV path gives the same mapped figures
    buf = io.StringIO()
    csv_export.write_csv(csv_export.iter_response_rows(db.session), buf)
    csv = compute_index(read_responses(io.StringIO(buf.getvalue())), stats.volumes_frame(), stats.units_frame(),
                        period="2025", options=IndexOptions(ci=ci, target=0.9, map_successors=True)).table
    csv = csv.set_index(["level", "unit_code"]).loc[mapped.index]
    np.testing.assert_allclose(mapped[numeric].to_numpy(float), csv[numeric].to_numpy(float), rtol=0, atol=1e-12)
