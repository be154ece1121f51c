"""compute_index behaviour: worked examples, flags, roll-up, successors, meta."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import analysis.estimation as index_module  # GRAM_MAX_RATIOS lives in analysis.estimation
from analysis import INDEX_COLUMNS, METHOD_VERSION, IndexOptions, compute_index
from analysis.schema import ELEMENTS, ITEM_KEYS
from tests.factories import make_responses, make_units, make_volumes, uniform_rows

ROOT = Path(__file__).resolve().parents[2]


def _unit(res, code):
    t = res.table
    return t[(t.level == "unit") & (t.unit_code == code)].iloc[0]


def test_worked_example_rate_080():
    # 3 satisfied (4) + 1 very satisfied (5) + 1 dissatisfied (2) + 1 blank -> 4/5
    rows = [dict(unit_code="U", overall=v) for v in (4, 4, 4, 5, 2, "")]
    row = _unit(compute_index(make_responses(rows)), "U")
    assert row["overall_rate"] == pytest.approx(0.80, abs=1e-15)
    assert row["overall_n"] == 5 and row["n"] == 6


def test_required_output_columns_and_method():
    res = compute_index(make_responses(uniform_rows("U", 3)))
    cols = set(res.table.columns)
    assert set(INDEX_COLUMNS) <= cols
    for e in ELEMENTS:
        assert {f"{e}_rate", f"{e}_ci_low", f"{e}_ci_high", f"{e}_n"} <= cols
    assert {"mean_score", "score_100", "method"} <= cols
    assert (res.table["method"] == METHOD_VERSION).all()
    assert res.meta["method_version"] == METHOD_VERSION


def test_index_is_weighted_mean_of_element_rates_with_renormalisation():
    rows = []
    for acc, proc, staff, res_ in [(5, 4, 2, 5), (1, 5, 5, 5), (4, 2, 4, 1), (5, 5, 5, 5)]:
        rows.append(dict(unit_code="U", access=acc, procedure=proc, staff=staff, result=res_, feedback=""))
    res = compute_index(make_responses(rows), options=IndexOptions(element_weights={"access": 2, "procedure": 1,
                                                                                     "staff": 1, "result": 1,
                                                                                     "feedback": 1}))
    row = _unit(res, "U")
    rates = {"access": 3 / 4, "procedure": 3 / 4, "staff": 3 / 4, "result": 3 / 4}
    assert row["index"] == pytest.approx((2 * 0.75 + 0.75 * 3) / 5)
    assert np.isnan(row["feedback_rate"]) and row["missing_elements"] == "feedback"
    assert "missing:feedback" in row["flags"].split(";")
    # unequal rates: access 2/4 satisfied
    rows[0]["access"] = 2
    row = _unit(compute_index(make_responses(rows), options=IndexOptions(
        element_weights={"access": 2, "procedure": 1, "staff": 1, "result": 1})), "U")
    assert row["index"] == pytest.approx((2 * 0.5 + 3 * 0.75) / 5)
    del rates


def test_overall_item_is_not_mixed_into_index():
    rows = [dict(unit_code="U", overall=1, **{e: 5 for e in ELEMENTS}) for _ in range(3)]
    row = _unit(compute_index(make_responses(rows)), "U")
    assert row["index"] == 1.0 and row["overall_rate"] == 0.0


def test_mean_score_and_score_100():
    rows = [dict(unit_code="U", **{e: v for e in ELEMENTS}) for v in (5, 4, 3, 2)]
    row = _unit(compute_index(make_responses(rows)), "U")
    assert row["mean_score"] == pytest.approx(3.5)
    assert row["score_100"] == pytest.approx(62.5)


def test_units_with_volume_but_no_responses_get_a_row():
    r = make_responses(uniform_rows("A", 40))
    v = make_volumes([("A", "_all", 1000), ("B", "land", 400), ("B", "_all", 100)])
    res = compute_index(r, v, period="2025")
    b = _unit(res, "B")
    assert b["n"] == 0 and np.isnan(b["index"]) and b["N"] == 500
    assert b["required_n"] == 223 and b["adequacy"] == "inadequate"
    expected = ["low_n"] + [f"missing:{e}" for e in sorted(ELEMENTS)] + ["strata_without_responses"]
    assert b["flags"] == ";".join(sorted(expected))
    a = _unit(res, "A")
    assert a["flags"] == "" and a["required_n"] == 286 and a["adequacy"] == "inadequate"


def test_flags_low_n_wide_ci_prorated():
    rows = uniform_rows("A", 5, value=5) + uniform_rows("A", 5, value=1)
    v = make_volumes([("A", "_all", 365, "2025-06-15", "2026-06-14")])
    row = _unit(compute_index(make_responses(rows), v, period="2025"), "A")
    assert row["flags"] == "low_n;prorated_volume;wide_ci"
    assert row["N"] == pytest.approx(365 * 183 / 365)


def test_left_out_counts_in_meta():
    rows = uniform_rows("U", 5)
    rows += uniform_rows("U", 2, excluded="1")
    rows += uniform_rows("U", 3, age_group="under_18")
    rows += uniform_rows("U", 1, excluded="1", age_group="under_18")
    rows += uniform_rows("U", 4, submitted_at="2025-12-15T00:10:00+07:00")  # year 2026
    rows += uniform_rows("U", 1, submitted_at="2025-12-14T23:30:00+07:00")  # year 2025
    res = compute_index(make_responses(rows), period="2025")
    assert res.meta["n_read"] == 16 and res.meta["n_used"] == 6
    assert res.meta["n_left_out"] == {"outside_period": 4, "excluded": 3, "under_18": 3}
    assert res.meta["data_cutoff"] == "2025-12-14T16:30:00+00:00"
    inc = compute_index(make_responses(rows), period="2025", options=IndexOptions(include_under_18=True))
    assert inc.meta["n_used"] == 9


def test_pooled_parent_is_a_domain_of_the_weighted_design():
    rows = uniform_rows("A", 10, value=5) + uniform_rows("B", 10, value=1)
    v = make_volumes([("A", "_all", 300), ("B", "_all", 100)])
    units = make_units([("P", "district", ""), ("A", "commune", "P"), ("B", "commune", "P")])
    res = compute_index(make_responses(rows), v, units, period="2025")
    p = res.table[res.table.level == "district"].iloc[0]
    assert p["unit_code"] == "P" and p["index"] == pytest.approx(0.75) and p["N"] == 400 and p["n"] == 20
    mou = compute_index(make_responses(rows), v, units, period="2025", options=IndexOptions(rollup="mean_of_units"))
    assert mou.table[mou.table.level == "district"].iloc[0]["index"] == pytest.approx(0.5)
    assert set(res.table.level) == {"unit", "district", "root"}


def test_mean_of_units_mean_and_variance(rng):
    rows = []
    for u, n, p in [("C1", 30, 0.8), ("C2", 25, 0.6), ("C3", 40, 0.9)]:
        for _ in range(n):
            rows.append(dict(unit_code=u, **{k: (5 if rng.random() < p else 2) for k in ITEM_KEYS}))
    units = make_units([("P", "province", ""), ("D1", "district", "P"), ("D2", "district", "P"),
                        ("C1", "commune", "D1"), ("C2", "commune", "D1"), ("C3", "commune", "D2")])
    v = make_volumes([("C1", "_all", 300), ("C2", "_all", 100), ("C3", "_all", 500)])
    t = compute_index(make_responses(rows), v, units, period="2025",
                      options=IndexOptions(rollup="mean_of_units")).table.set_index(["level", "unit_code"])
    c1, c2, c3 = (t.loc[("unit", c)] for c in ("C1", "C2", "C3"))
    d1 = t.loc[("district", "D1")]
    assert d1["index"] == pytest.approx((c1["index"] + c2["index"]) / 2, abs=1e-14)
    assert d1["index_se"] == pytest.approx(np.sqrt(c1["index_se"] ** 2 + c2["index_se"] ** 2) / 2, abs=1e-14)
    assert d1["access_rate"] == pytest.approx((c1["access_rate"] + c2["access_rate"]) / 2, abs=1e-14)
    d2 = t.loc[("district", "D2")]
    assert d2["index"] == pytest.approx(c3["index"], abs=1e-14)
    prov = t.loc[("province", "P")]
    assert prov["index"] == pytest.approx((d1["index"] + d2["index"]) / 2, abs=1e-14)
    assert prov["index_se"] == pytest.approx(np.sqrt(d1["index_se"] ** 2 + d2["index_se"] ** 2) / 2, abs=1e-14)
    assert t.loc[("root", "_root")]["index"] == pytest.approx(prov["index"], abs=1e-14)
    assert prov["index_ci_low"] < prov["index"] < prov["index_ci_high"]


def test_successor_mapping_and_as_of_tree():
    units = make_units([("P", "province", "", "2000-01-01"),
                        ("OLD", "district", "P", "2000-01-01", "2025-07-01", "NEW"),
                        ("NEW", "district", "P", "2025-07-01"),
                        ("X", "commune", "OLD", "2000-01-01")])
    rows = (uniform_rows("OLD", 4, submitted_at="2025-03-01T10:00:00+07:00")
            + uniform_rows("NEW", 6, value=1) + uniform_rows("X", 2))
    res = compute_index(make_responses(rows), units=units, period="2025")
    t = res.table
    assert set(t.loc[t.level == "unit", "unit_code"]) == {"OLD", "NEW", "X"}
    # as it was then: X rolls up into OLD (retired, its last version) and P
    assert t[(t.level == "district") & (t.unit_code == "OLD")]["n"].iloc[0] == 6
    mapped = compute_index(make_responses(rows), units=units, period="2025",
                           options=IndexOptions(map_successors=True)).table
    u = mapped[mapped.level == "unit"].set_index("unit_code")
    assert set(u.index) == {"NEW", "X"} and u.loc["NEW", "n"] == 10
    assert mapped[mapped.level == "province"]["n"].iloc[0] == 12


def test_level_filter():
    units = make_units([("P", "district", ""), ("A", "commune", "P")])
    r = make_responses(uniform_rows("A", 3))
    for lv, expect in [("unit", {"unit"}), ("parent", {"district"}), ("root", {"root"})]:
        t = compute_index(r, units=units, options=IndexOptions(level_filter=lv)).table
        assert set(t.level) == expect


def test_targets_in_table():
    rows = uniform_rows("A", 200, value=5) + uniform_rows("A", 2, value=1)
    row = _unit(compute_index(make_responses(rows), options=IndexOptions(target=0.9)), "A")
    assert row["target"] == 0.9 and row["target_status"] == "met"
    row = _unit(compute_index(make_responses(rows), options=IndexOptions(target={"unit": 0.999})), "A")
    assert row["target_status"] == "not_met"


def test_criteria_mode_is_mean_of_criteria_rates():
    rows = [dict(unit_code="U", access_c1=1, access_c2=0, access_c3="", access=2),
            dict(unit_code="U", access_c1=1, access_c2=1, access_c3=1, access=2),
            dict(unit_code="U", access_c1=0, access_c2="", access_c3=1, access=2)]
    row = _unit(compute_index(make_responses(rows), options=IndexOptions(element_mode="criteria")), "U")
    assert row["access_rate"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 2) / 3)
    direct = _unit(compute_index(make_responses(rows)), "U")
    assert direct["access_rate"] == 0.0


def test_import_analysis_with_flask_blocked():
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('flask', 'survey_app'):
                    raise ImportError('blocked: ' + name)
                return None
        sys.meta_path.insert(0, Block())
        import analysis, analysis.__main__, analysis.output
        from analysis import compute_index
        assert 'flask' not in sys.modules and 'survey_app' not in sys.modules
        print('ok')
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_successors_are_followed_transitively_and_volumes_move_too():
    units = make_units([("P", "province", ""),
                        ("A", "commune", "P", "2000-01-01", "2025-01-01", "B"),
                        ("B", "commune", "P", "2025-01-01", "2025-07-01", "C"),
                        ("C", "commune", "P", "2025-07-01")])
    rows = uniform_rows("A", 2) + uniform_rows("B", 3) + uniform_rows("C", 4)
    v = make_volumes([("A", "_all", 10, "2024-12-15", "2024-12-31"), ("B", "_all", 100, "2025-01-01", "2025-06-30"),
                      ("C", "_all", 200, "2025-07-01", "2025-12-14")])
    t = compute_index(make_responses(rows), v, units, period="2025",
                      options=IndexOptions(map_successors=True)).table
    u = t[t.level == "unit"].set_index("unit_code")
    assert list(u.index) == ["C"] and u.loc["C", "n"] == 9 and u.loc["C", "N"] == 310
    # as of a date when B was valid, A maps to B only
    t2 = compute_index(make_responses(rows), v, units, period="2025",
                       options=IndexOptions(map_successors=True, as_of=__import__("datetime").date(2025, 3, 1))).table
    u2 = t2[t2.level == "unit"].set_index("unit_code")
    assert u2.loc["B", "n"] == 5 and u2.loc["C", "n"] == 4


@pytest.mark.parametrize("rollup", ["pooled", "mean_of_units"])
def test_no_eligible_responses_never_crash(rollup):
    empty = make_responses(uniform_rows("A", 2)).iloc[0:0]
    opts = IndexOptions(rollup=rollup)
    t = compute_index(empty, options=opts).table
    assert t["level"].tolist() == ["root"] and t["n"].tolist() == [0] and np.isnan(t["index"].iloc[0])
    t = compute_index(empty, make_volumes([("A", "_all", 100)]), period="2025", options=opts).table
    assert t["unit_code"].tolist() == ["A", "_root"] and (t["N"] == 100).all()
    old = make_responses(uniform_rows("A", 2, submitted_at="2023-01-01T00:00:00Z"))
    res = compute_index(old, make_volumes([("A", "_all", 100)]), period="2025", options=opts)
    assert res.meta["n_left_out"]["outside_period"] == 2 and res.table["n"].sum() == 0


def test_homogeneous_cells_give_exactly_zero_variance_at_parent_level():
    """Every unit (one cell each) answers identically: stratified variance is 0 at every level,
    so the parent follows the Var = 0 rule (no floating-point dust mistaken for information)."""
    from scipy import stats
    units = make_units([("P", "district", ""), ("C1", "commune", "P"), ("C2", "commune", "P"),
                        ("C3", "commune", "P")])
    rows = uniform_rows("C1", 4, value=1) + uniform_rows("C2", 5, value=5) + uniform_rows("C3", 3, value=5)
    for limit in (0, 8):
        old = index_module.GRAM_MAX_RATIOS
        index_module.GRAM_MAX_RATIOS = limit
        try:
            t = compute_index(make_responses(rows), units=units).table
        finally:
            index_module.GRAM_MAX_RATIOS = old
        p = t[t.level == "district"].iloc[0]
        assert p["index"] == pytest.approx(8 / 12) and p["index_se"] == 0.0 and p["overall_se"] == 0.0
        z2 = stats.t.ppf(0.975, 12 - 3) ** 2
        centre = (8 / 12 + z2 / 24) / (1 + z2 / 12)
        half = np.sqrt(z2 * (8 / 12) * (4 / 12) / 12 + z2 * z2 / (4 * 144)) / (1 + z2 / 12)
        assert p["index_ci_low"] == pytest.approx(centre - half, abs=1e-12)
        assert p["index_ci_high"] == pytest.approx(centre + half, abs=1e-12)
