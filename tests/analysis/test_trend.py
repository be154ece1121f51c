"""Tests for analysis.trend (change against the previous period)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import IndexOptions, compute_index
from analysis.schema import ITEM_KEYS
from analysis.trend import trend

ITEMS = ITEM_KEYS


def _t(rows):
    return pd.DataFrame(rows, columns=["unit_code", "index", "index_se", "n"])


def test_hand_computed_example():
    cur = _t([("A", 0.80, 0.03, 200)])
    prev = _t([("A", 0.70, 0.04, 150)])
    out = trend(cur, prev)
    r = out.iloc[0]
    assert r["change"] == pytest.approx(0.10)
    assert r["change_se"] == pytest.approx(0.05)  # sqrt(0.03^2 + 0.04^2)
    assert r["z"] == pytest.approx(2.0)
    assert r["p_value"] == pytest.approx(0.04550026, abs=1e-7)
    assert r["change_ci_low"] == pytest.approx(0.10 - 1.959964 * 0.05, abs=1e-6)
    assert r["change_ci_high"] == pytest.approx(0.10 + 1.959964 * 0.05, abs=1e-6)
    assert bool(r["significant"]) is True
    assert r["direction"] == "up"
    assert r["index_current"] == 0.80 and r["index_previous"] == 0.70
    assert r["n_current"] == 200 and r["n_previous"] == 150
    assert "independent" in r["trend_method"]
    assert out.attrs["trend"]["level"] == 0.95


def test_significance_flip_with_se_and_level():
    # z = 0.1 / 0.0526 = 1.90: not significant at 95% -> flat ...
    cur = _t([("A", 0.80, 0.0372, 100)])
    prev = _t([("A", 0.70, 0.0372, 100)])
    out = trend(cur, prev)
    assert out.loc[0, "z"] == pytest.approx(0.1 / np.sqrt(2 * 0.0372**2))
    assert not out.loc[0, "significant"]
    assert out.loc[0, "direction"] == "flat"
    assert out.loc[0, "change_ci_low"] < 0 < out.loc[0, "change_ci_high"]
    # ... but significant at 90%.
    out90 = trend(cur, prev, level=0.90)
    assert out90.loc[0, "significant"]
    assert out90.loc[0, "direction"] == "up"
    # A smaller SE makes the same change significant.
    out2 = trend(_t([("A", 0.80, 0.02, 100)]), _t([("A", 0.70, 0.02, 100)]))
    assert out2.loc[0, "significant"] and out2.loc[0, "direction"] == "up"


def test_down_and_new_and_gone():
    cur = _t([("A", 0.60, 0.02, 300), ("B", 0.9, 0.01, 50), ("N", 0.8, 0.05, 40)])
    prev = _t([("A", 0.75, 0.02, 300), ("B", 0.9, 0.01, 50), ("G", 0.7, 0.05, 40)])
    out = trend(cur, prev).set_index("unit_code")
    assert list(out.index) == ["A", "B", "G", "N"]
    assert out.loc["A", "direction"] == "down" and out.loc["A", "change"] < 0
    assert out.loc["B", "direction"] == "flat" and out.loc["B", "change"] == 0
    assert out.loc["N", "direction"] == "new"
    assert out.loc["G", "direction"] == "gone"
    for u in ("N", "G"):
        assert np.isnan(out.loc[u, "change"])
        assert np.isnan(out.loc[u, "change_se"])
        assert not out.loc[u, "significant"]
    assert out["significant"].dtype == bool


def test_row_present_without_estimate_counts_as_new_or_no_data():
    cur = _t([("A", 0.8, 0.02, 100), ("B", np.nan, np.nan, 0)])
    prev = _t([("A", np.nan, np.nan, 0), ("B", np.nan, np.nan, 0)])
    out = trend(cur, prev).set_index("unit_code")
    assert out.loc["A", "direction"] == "new"
    assert out.loc["B", "direction"] == "no_data"


def test_zero_se_without_an_interval_allows_no_test():
    # SE reported 0 and no interval given: the uncertainty is unknown.
    cur = _t([("A", 1.0, 0.0, 3)])
    prev = _t([("A", 0.0, 0.0, 2)])
    out = trend(cur, prev)
    assert out.loc[0, "change"] == 1.0
    assert not out.loc[0, "significant"]
    assert out.loc[0, "direction"] == "flat"
    assert out.loc[0, "trend_flag"] == "unknown_se"
    assert np.isnan(out.loc[0, "p_value"])


def _period_table(satisfied, n, N=None):
    """Index table (unit row) of one unit with ``satisfied`` of ``n`` responses satisfied."""
    rows = [{"unit_code": "A", "stratum": "", **{k: (5.0 if i < satisfied else 2.0) for k in ITEMS}}
            for i in range(n)]
    vols = None
    if N is not None:
        vols = pd.DataFrame([{"unit_code": "A", "period_start": "2024-12-15", "period_end": "2025-12-14",
                              "stratum": "_all", "transactions": N}])
    opts = IndexOptions(weights_from="volumes" if N is not None else "none")
    t = compute_index(pd.DataFrame(rows), vols, period=None, options=opts).table
    return t[t["level"] == "unit"].reset_index(drop=True)


@pytest.mark.parametrize("prev_sat,prev_n", [(10, 10), (50, 50)])
def test_all_satisfied_then_9_of_10_is_not_a_significant_change(prev_sat, prev_n):
    prev, cur = _period_table(prev_sat, prev_n), _period_table(9, 10)
    assert prev.loc[0, "index"] == 1.0 and prev.loc[0, "index_se"] == 0.0  # Var = 0 rule
    out = trend(cur, prev).iloc[0]
    assert out["change"] == pytest.approx(-0.1)
    # the earlier period enters with its working SE, not as exact
    assert out["change_se"] > cur.loc[0, "index_se"]
    assert not out["significant"] and out["direction"] == "flat"
    # Fisher's exact test agrees: no evidence of a change
    # (10/10 vs 9/10: p = 1.0; 50/50 vs 9/10: p = 0.17)
    fisher = stats.fisher_exact([[prev_sat, prev_n - prev_sat], [9, 1]])[1]
    assert fisher > 0.05 and out["p_value"] > 0.05
    if prev_n == 50:
        assert fisher == pytest.approx(0.1667, abs=1e-4)


def test_identical_zero_se_periods_are_flat_with_p_one():
    prev, cur = _period_table(10, 10), _period_table(10, 10)
    out = trend(cur, prev).iloc[0]
    assert out["change"] == 0.0 and out["change_se"] > 0
    assert out["z"] == 0.0 and out["p_value"] == pytest.approx(1.0)
    assert not out["significant"] and out["direction"] == "flat" and out["trend_flag"] == ""


def test_change_between_two_census_figures_is_exact():
    prev, cur = _period_table(30, 30, N=30), _period_table(27, 30, N=30)
    assert prev.loc[0, "index_ci_low"] == prev.loc[0, "index_ci_high"] == 1.0
    out = trend(cur, prev).iloc[0]
    assert out["change"] == pytest.approx(-0.1) and out["change_se"] == 0.0
    assert out["trend_flag"] == "census" and out["significant"] and out["direction"] == "down"
    same = trend(prev, prev).iloc[0]
    assert same["trend_flag"] == "census" and not same["significant"] and same["p_value"] == 1.0


def test_multi_key_custom_columns_and_carry():
    cur = pd.DataFrame(
        {
            "unit_code": ["A", "A"],
            "period": ["2025", "2025"],
            "level": ["unit", "parent"],
            "staff_rate": [0.9, 0.8],
            "staff_se": [0.01, 0.01],
        }
    )
    prev = cur.assign(period="2024", staff_rate=[0.8, 0.8])
    out = trend(cur, prev, key=["unit_code", "level"], estimate="staff_rate", se="staff_se")
    out = out.set_index("level")
    assert out.loc["unit", "direction"] == "up"
    assert out.loc["parent", "direction"] == "flat"
    assert out.loc["unit", "period_current"] == "2025"
    assert out.loc["unit", "period_previous"] == "2024"
    assert "staff_rate_current" in out.columns


def test_carry_and_key_dtype_mismatch():
    cur = pd.DataFrame({"unit_code": [1, 2], "index": [0.8, 0.7], "index_se": [0.01, 0.01],
                        "level": ["unit", "unit"]})
    prev = pd.DataFrame({"unit_code": ["1"], "index": [0.7], "index_se": [0.01]})
    out = trend(cur, prev)
    assert list(out["unit_code"]) == ["1", "2"]
    assert list(out["level"]) == ["unit", "unit"]
    assert list(out["direction"]) == ["up", "new"]


def test_duplicate_keys_rejected():
    cur = _t([("A", 0.8, 0.01, 1), ("A", 0.7, 0.01, 1)])
    with pytest.raises(ValueError):
        trend(cur, _t([("A", 0.8, 0.01, 1)]))
    with pytest.raises(KeyError):
        trend(cur.drop(columns="index_se"), _t([("A", 0.8, 0.01, 1)]))
