"""Working SE (METHODOLOGY §4): the uncertainty a reported SE of 0 hides, for downstream statistics."""
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from analysis import IndexOptions, compute_index
from analysis.intervals import (
    proportion_interval,
    working_logit,
    working_point,
    working_se,
)
from analysis.schema import SE_ZERO
from tests.factories import make_responses, uniform_rows

Z95 = stats.norm.ppf(0.975)


def test_positive_se_is_kept():
    se = np.array([0.01, 0.2, 2 * SE_ZERO])
    out = working_se(se, np.zeros(3), np.ones(3))
    assert np.array_equal(out, se)


def test_zero_se_becomes_the_se_of_a_normal_interval_as_wide():
    out = working_se(np.array([0.0, 1e-12]), np.array([0.8, 0.2]), np.array([1.0, 0.6]))
    assert out == pytest.approx([0.2 / (2 * Z95), 0.4 / (2 * Z95)], rel=1e-12)


def test_z_not_t_and_level_respected():
    # level 0.90: z = 1.6449 (a t quantile on df = 1 would be 6.31)
    out = working_se(0.0, 0.1, 0.5, level=0.90)
    assert out == pytest.approx(0.4 / (2 * stats.norm.ppf(0.95)), rel=1e-12)
    assert isinstance(out, float)


def test_zero_only_for_zero_width_interval_and_nan_without_estimate():
    out = working_se(np.array([0.0, 0.0, np.nan, np.nan]), np.array([1.0, np.nan, np.nan, 0.5]),
                     np.array([1.0, np.nan, np.nan, 0.7]))
    assert out[0] == 0.0
    assert np.isnan(out[1]) and np.isnan(out[2])
    assert out[3] == pytest.approx(0.2 / (2 * Z95))


def test_series_keep_their_index():
    idx = pd.Index(["a", "b"], name="unit")
    se = pd.Series([0.0, 0.05], index=idx)
    out = working_se(se, pd.Series([0.7, 0.1], index=idx), pd.Series([1.0, 0.3], index=idx))
    assert isinstance(out, pd.Series) and out.index.equals(idx)
    assert out["b"] == 0.05 and out["a"] == pytest.approx(0.3 / (2 * Z95))


def test_working_point_replaces_only_the_edges():
    out = working_point(np.array([1.0, 0.0, 0.4, np.nan]), np.array([0.8, 0.0, 0.3, np.nan]),
                        np.array([1.0, 0.3, 0.5, np.nan]))
    assert out[:3] == pytest.approx([0.9, 0.15, 0.4])
    assert np.isnan(out[3])


def test_working_logit_delta_method():
    lg, lse = working_logit(np.array([1.0, 0.4]), np.array([0.0, 0.05]), np.array([0.8, 0.3]),
                            np.array([1.0, 0.5]))
    assert lg == pytest.approx([special.logit(0.9), special.logit(0.4)])
    assert lse == pytest.approx([(0.2 / (2 * Z95)) / (0.9 * 0.1), 0.05 / (0.4 * 0.6)])


def test_census_at_one_is_exact_on_the_logit_scale():
    lg, lse = working_logit(1.0, 0.0, 1.0, 1.0)
    assert lg == np.inf and lse == 0.0


def test_one_response_at_100_percent_has_a_wide_working_se():
    # the Var = 0 rule: n_eff = n_kish = 1, Wilson on df = 1 -> an interval spanning most of [0, 1]
    se, lo, hi = proportion_interval(np.array([1.0]), np.array([0.0]), np.array([1.0]), np.array([1.0]))
    assert se[0] == 0.0
    sw = working_se(se, lo, hi)
    assert sw[0] == pytest.approx((hi[0] - lo[0]) / (2 * Z95))
    assert sw[0] > 0.2


def test_on_an_index_table():
    # a unit with 10 of 10 satisfied on every item: reported SE 0, working SE from its interval
    rows = uniform_rows("A", 10) + uniform_rows("B", 30) + uniform_rows("B", 10, value=2)
    resp = make_responses(rows)
    t = compute_index(resp, options=IndexOptions(weights_from="none")).table.set_index("unit_code")
    assert t.loc["A", "index_se"] == 0.0
    sw = working_se(t["index_se"], t["index_ci_low"], t["index_ci_high"])
    assert sw["A"] == pytest.approx((t.loc["A", "index_ci_high"] - t.loc["A", "index_ci_low"]) / (2 * Z95))
    assert sw["B"] == t.loc["B", "index_se"]


def _mou(rows, vols):
    from tests.factories import make_units, make_volumes

    units = make_units([("D", "district", ""), ("C1", "commune", "D"), ("C2", "commune", "D")])
    return compute_index(make_responses(rows), make_volumes(vols), units, period="2025",
                         options=IndexOptions(rollup="mean_of_units")).table.set_index("unit_code")


def test_mean_of_units_uses_the_working_se_of_a_zero_se_child():
    rows = uniform_rows("C1", 10) + uniform_rows("C2", 20) + uniform_rows("C2", 10, value=2)
    t = _mou(rows, [("C1", "_all", 500), ("C2", "_all", 400)])
    c1, c2, d = t.loc["C1"], t.loc["C2"], t.loc["D"]
    assert c1["index_se"] == 0.0 and c1["access_se"] == 0.0
    sw1 = working_se(c1["index_se"], c1["index_ci_low"], c1["index_ci_high"])
    assert sw1 > 0.05
    assert d["index_se"] == pytest.approx(np.sqrt(sw1 ** 2 + c2["index_se"] ** 2) / 2, rel=1e-12)
    sa = working_se(c1["access_se"], c1["access_ci_low"], c1["access_ci_high"])
    assert d["access_se"] == pytest.approx(np.sqrt(sa ** 2 + c2["access_se"] ** 2) / 2, rel=1e-12)


def test_mean_of_units_census_child_adds_nothing():
    # C1 is a census (10 responses, 10 transactions): exact, working SE 0
    rows = uniform_rows("C1", 10) + uniform_rows("C2", 20) + uniform_rows("C2", 10, value=2)
    t = _mou(rows, [("C1", "_all", 10), ("C2", "_all", 400)])
    c1, c2, d = t.loc["C1"], t.loc["C2"], t.loc["D"]
    assert c1["index_ci_low"] == c1["index_ci_high"] == 1.0
    assert d["index_se"] == pytest.approx(c2["index_se"] / 2, rel=1e-12)
