"""METHODOLOGY §4 "Working SE" on the database path (SQL aggregation in
services.stats → analysis): its sanity properties hold on data stored in the
database, on SQLite and on PostgreSQL (run with `--db sqlite` / `--db postgresql`),
and the database path equals the CSV path (analysis on the export) under the
capped default and for the drivers' design-based SEs.

The root and unchanged parents with and without `--map-successors` are checked
on both paths in tests/services/test_stats.py
(test_map_successors_keeps_the_design_on_the_database_path)."""
import datetime as dt
import io
import uuid

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis import IndexOptions, compute_index, read_responses, weighted_responses
from analysis.drivers import drivers
from analysis.ranking import rank_units
from analysis.schema import ALL_STRATUM, ELEMENTS, ITEM_KEYS, OVERALL
from analysis.shrinkage import shrink_index
from survey_app.extensions import db
from survey_app.services import csv_export, stats
from survey_app.services.instruments import latest
from survey_app.services.periods import resolve_period
from survey_app.services.responses import insert_responses
from tests.factories import make_unit, make_volume

UTC = dt.timezone.utc
Z95 = sps.norm.ppf(0.975)
SATISFIED = {k: 5 for k in ITEM_KEYS}
DISSATISFIED = {k: 2 for k in ITEM_KEYS}


def _add(unit, answers: list[dict], *, at=dt.datetime(2025, 6, 1, 3, tzinfo=UTC), stratum=ALL_STRATUM):
    """Bulk-insert one response per answers dict (the ORM would flush each one)."""
    inst_id = latest(db.session, "counter-quick").id
    rows, ans = [], []
    for a in answers:
        rid = uuid.uuid4()
        rows.append(dict(id=rid, unit_id=unit.id, counter_id=None, instrument_id=inst_id, channel="qr",
                         submitted_at=at, received_at=at, stratum=stratum, comment=None, flags="",
                         excluded=False))
        ans.extend({"response_id": rid, "item_key": k, "value": v} for k, v in a.items())
    insert_responses(rows, ans)


def _volume(unit, n, year="2025", stratum=ALL_STRATUM):
    p = resolve_period(year)
    make_volume(unit, n, start=p.first, end=p.last, stratum=stratum)


def _seed_units():
    """Province P with communes: five adequate ones (38 responses of N = 40,
    satisfied 21..33), ONE (a single response at 100%, N = 200), FULL (50 of 50
    satisfied, N = 400), CENSUS (20 responses = 20 transactions, 12 satisfied)
    and STRAT (two cells with very unequal weights, two failures in the
    low-weight cell: the n_eff cap binds)."""
    prov = make_unit("P", kind="province")
    for i, k in enumerate((21, 24, 27, 30, 33), start=1):
        u = make_unit(f"C{i}", parent=prov)
        _volume(u, 40)
        _add(u, [SATISFIED] * k + [DISSATISFIED] * (38 - k))
    one = make_unit("ONE", parent=prov)
    _volume(one, 200)
    _add(one, [SATISFIED])
    full = make_unit("FULL", parent=prov)
    _volume(full, 400)
    _add(full, [SATISFIED] * 50)
    census = make_unit("CENSUS", parent=prov)
    _volume(census, 20)
    _add(census, [SATISFIED] * 12 + [DISSATISFIED] * 8)
    strat = make_unit("STRAT", parent=prov)
    _volume(strat, 1000, stratum="ho_tich")
    _volume(strat, 50)
    _add(strat, [SATISFIED] * 30, stratum="ho_tich")
    _add(strat, [SATISFIED] * 28 + [DISSATISFIED] * 2)
    db.session.commit()


def _units(result) -> pd.DataFrame:
    t = result.table
    return t[t["level"] == "unit"].reset_index(drop=True)


def _row(table: pd.DataFrame, code: str) -> pd.Series:
    rows = table[table["unit_code"] == code]
    assert len(rows) == 1, code
    return rows.iloc[0]


def _csv_responses() -> pd.DataFrame:
    """The CSV path's input: what the app stores, exported and read as the analysis CLI reads it."""
    buf = io.StringIO()
    csv_export.write_csv(csv_export.iter_response_rows(db.session), buf)
    return read_responses(io.StringIO(buf.getvalue()))


# ------------------------------------------------------------------ ranking

def test_one_response_unit_is_not_ranked_and_its_rank_interval_is_wide(ctx):
    _seed_units()
    units = _units(stats.compute_index("2025"))
    one = _row(units, "ONE")
    assert one["index"] == 1.0 and one["index_se"] == 0.0 and one["adequacy"] != "adequate"

    ranked = rank_units(units, group="kind")  # the default: only adequate units get a rank
    r = _row(ranked, "ONE")
    assert r["rank_status"] == "sample_too_small"
    assert np.isnan(r["rank"]) and np.isnan(r["rank_low"]) and np.isnan(r["rank_high"])
    adequate = ranked[ranked["adequacy"] == "adequate"]
    assert set(adequate["unit_code"]) == {f"C{i}" for i in range(1, 6)}
    assert (adequate["rank_status"] == "ranked").all()
    assert sorted(adequate["rank"]) == [1, 2, 3, 4, 5]

    # Ranked among all, the one response at 100% has the best point rank but not
    # a rank interval of 1-1: its working SE comes from its (wide) interval.
    everyone = rank_units(units, group="kind", rank_among="all")
    r = _row(everyone, "ONE")
    k = int(r["n_ranked"])
    assert k == len(units)
    assert r["rank"] <= 1.5  # tied at 100% with FULL
    assert r["rank_high"] - r["rank_low"] + 1 >= 0.6 * k, (r["rank_low"], r["rank_high"], k)


# ------------------------------------------------------------------ trend

def _trend_unit(code, before: list[dict], after: list[dict]):
    u = make_unit(code)
    for year in ("2024", "2025"):
        _volume(u, 200, year)
    _add(u, before, at=dt.datetime(2024, 6, 1, 3, tzinfo=UTC))
    _add(u, after, at=dt.datetime(2025, 6, 1, 3, tzinfo=UTC))
    return u


def test_trend_uses_the_working_se_of_a_zero_se_period(ctx):
    _trend_unit("T", [SATISFIED] * 10, [SATISFIED] * 9 + [DISSATISFIED])        # 10/10 -> 9/10
    _trend_unit("D", [SATISFIED] * 30, [SATISFIED] * 3 + [DISSATISFIED] * 27)   # 30/30 -> 3/30
    db.session.commit()
    period = resolve_period("2025")
    res = stats.compute_index(period)
    before = stats.compute_index(resolve_period("2024"))
    assert (_row(_units(before), "T")["index_se"], _row(_units(before), "D")["index_se"]) == (0.0, 0.0)

    table = stats.with_trend(_units(res), period, None, stats.compute_index)
    t, d = _row(table, "T"), _row(table, "D")
    assert t["trend_change"] == pytest.approx(-0.1, abs=1e-12)
    assert t["trend_direction"] == ""  # 10/10 -> 9/10 is not a significant change
    # A collapse from a period whose SE is reported 0 is tested (with its working
    # SE), not left untested as if its uncertainty were unknown.
    assert d["trend_change"] == pytest.approx(-0.9, abs=1e-12)
    assert d["trend_direction"] == "down"


# ------------------------------------------------------------------ shrinkage

def test_shrinkage_keeps_full_units_inside_their_interval_and_leaves_a_census_alone(ctx):
    _seed_units()
    units = _units(stats.compute_index("2025"))
    full, census = _row(units, "FULL"), _row(units, "CENSUS")
    assert full["index"] == 1.0 and full["index_se"] == 0.0 and full["index_ci_low"] < 1.0
    assert census["index"] == pytest.approx(0.6) and census["index_ci_low"] == census["index_ci_high"]

    shrunk = shrink_index(units, group="kind")
    f = _row(shrunk, "FULL")
    assert f["index_shrunk"] < 1.0  # pooled towards the others ...
    assert f["index_shrunk"] >= full["index_ci_low"] - 1e-12  # ... never below its own lower bound
    c = _row(shrunk, "CENSUS")
    assert c["index_shrunk"] == census["index"] and c["shrink_gamma"] == 1.0


# ------------------------------------------------------------------ mean_of_units

def test_mean_of_units_adds_the_working_variance_of_a_zero_se_child(ctx):
    prov = make_unit("P", kind="province")
    exact = make_unit("Z1", parent=prov)
    mixed = make_unit("Z2", parent=prov)
    for u in (exact, mixed):
        _volume(u, 200)
    _add(exact, [SATISFIED] * 5)
    _add(mixed, [SATISFIED] * 14 + [DISSATISFIED] * 6)
    db.session.commit()
    t = stats.compute_index("2025", rollup="mean_of_units").table
    z1, z2 = _row(t[t["level"] == "unit"], "Z1"), _row(t[t["level"] == "unit"], "Z2")
    p = _row(t[t["level"] == "province"], "P")
    assert z1["index_se"] == 0.0 and z2["index_se"] > 0
    sw1 = (z1["index_ci_high"] - z1["index_ci_low"]) / (2 * Z95)  # the SE of a normal interval as wide
    assert p["index"] == pytest.approx((z1["index"] + z2["index"]) / 2, abs=1e-12)
    assert p["index_se"] ** 2 == pytest.approx((sw1 ** 2 + z2["index_se"] ** 2) / 4, rel=1e-9)
    assert p["index_se"] > z2["index_se"] / 2 * 1.5  # the SE-0 child is not treated as exact


# ------------------------------------------------------------------ database path = CSV path, capped default

@pytest.mark.parametrize("ci", ["wilson", "beta", "logit"])
def test_capped_default_equals_the_csv_path(ctx, ci):
    _seed_units()
    db_result = stats.compute_index("2025", ci=ci, target=0.9)
    options = IndexOptions(ci=ci, target=0.9)
    assert options.cap_n_eff  # the default is method version 2
    csv_result = compute_index(_csv_responses(), stats.volumes_frame(), stats.units_frame(), period="2025",
                               options=options)
    assert db_result.meta["method_version"] == csv_result.meta["method_version"]
    a = db_result.table.sort_values(["level", "unit_code"]).reset_index(drop=True)
    b = csv_result.table.sort_values(["level", "unit_code"]).reset_index(drop=True)
    assert list(a["unit_code"]) == list(b["unit_code"])
    for col in b.columns:
        if pd.api.types.is_numeric_dtype(b[col]):
            np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), rtol=0, atol=1e-12,
                                       err_msg=col)
        else:
            assert a[col].fillna("").astype(str).tolist() == b[col].fillna("").astype(str).tolist(), col
    if ci in ("wilson", "beta"):
        # The data exercise the cap: without it some interval differs.
        uncapped = stats.compute_index("2025", ci=ci, target=0.9, cap_n_eff=False).table
        u = uncapped.sort_values(["level", "unit_code"]).reset_index(drop=True)
        cols = [c for c in a.columns if c.endswith(("_ci_low", "_ci_high"))]
        diff = np.nanmax(np.abs(a[cols].to_numpy(float) - u[cols].to_numpy(float)))
        assert diff > 1e-6
        assert db_result.meta["method_version"] != stats.compute_index(
            "2025", ci=ci, target=0.9, cap_n_eff=False).meta["method_version"]


# ------------------------------------------------------------------ drivers

def _seed_drivers():
    """One commune, two cells with large sampling fractions (the FPC matters)
    and different satisfaction, 160 complete responses."""
    rng = np.random.default_rng(11)
    u = make_unit("DR")
    cells = (("ho_tich", 150, 90, 0.8), (ALL_STRATUM, 120, 70, 0.55))
    for stratum, N, n, p_el in cells:
        _volume(u, N, stratum=stratum)
        answers = []
        for _ in range(n):
            el = {e: int(rng.choice([4, 5]) if rng.random() < p_el else rng.choice([1, 2, 3])) for e in ELEMENTS}
            score = -1.5 + sum(1.0 * (el[e] >= 4) for e in ELEMENTS[:3]) + 0.4 * (el[ELEMENTS[3]] >= 4)
            sat = rng.random() < 1 / (1 + np.exp(-score))
            answers.append({OVERALL: int(rng.choice([4, 5]) if sat else rng.choice([1, 2, 3])), **el})
        _add(u, answers, stratum=stratum)
    db.session.commit()


def test_drivers_use_the_cells_and_fpc_of_the_design(ctx):
    _seed_drivers()
    res = stats.compute_index("2025")
    app = stats.drivers_table("DR", "2025", None, res)
    assert app is not None and (app["status"] == "ok").all()
    frame, _ = weighted_responses(_csv_responses(), stats.volumes_frame(), stats.units_frame(), period="2025")
    csv = drivers(frame, weight="weight", min_n=stats.DRIVERS_MIN_N, strata="cell", fpc="cell_N")
    assert list(app["element"]) == list(csv["element"])
    for col in ("coef", "se", "p_value", "importance", "performance", "n"):
        np.testing.assert_allclose(app[col].to_numpy(float), csv[col].to_numpy(float), rtol=0, atol=1e-9,
                                   err_msg=col)
    assert list(app["quadrant"]) == list(csv["quadrant"])
    # The design matters on these data: without cells and FPC the SEs differ.
    plain = drivers(frame, weight="weight", min_n=stats.DRIVERS_MIN_N)
    assert np.max(np.abs(plain["se"].to_numpy(float) - csv["se"].to_numpy(float))) > 1e-4
