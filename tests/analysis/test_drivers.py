"""Tests for analysis.drivers (weighted logistic key-driver analysis)."""

import numpy as np
import pandas as pd
import pytest

from analysis.drivers import ELEMENTS, drivers


def _to_item(sat, rng):
    """Satisfied -> 4 or 5, not satisfied -> 1, 2 or 3."""
    n = len(sat)
    return np.where(sat == 1, rng.choice([4, 5], n), rng.choice([1, 2, 3], n)).astype(float)


def simulate(n, coefs, intercept=-1.5, rates=None, seed=0, weight=None):
    rng = np.random.default_rng(seed)
    rates = rates or {}
    sat = {e: rng.binomial(1, rates.get(e, 0.7), n) for e in ELEMENTS}
    lin = intercept + sum(coefs.get(e, 0.0) * sat[e] for e in ELEMENTS)
    sat["overall"] = rng.binomial(1, 1 / (1 + np.exp(-lin)))
    df = pd.DataFrame({k: _to_item(v, rng) for k, v in sat.items()})
    df["weight"] = rng.uniform(0.5, 2.0, n) if weight is None else weight
    return df


def _by_element(out):
    return out.set_index("element")


# --------------------------------------------------------------------------
# Reference values from R's survey package (svyglm), see R_SCRIPT.
# --------------------------------------------------------------------------

R_SCRIPT = r"""
# Rscript ref.R  (ref.csv = reference_frame().to_csv("ref.csv", index=False))
suppressMessages(library(survey))   # survey 4.1-1
d <- read.csv("ref.csv")
for (v in c("overall","access","procedure","staff","result","feedback"))
  d[[paste0("s_", v)]] <- as.numeric(d[[v]] >= 4)
f <- s_overall ~ s_access + s_procedure + s_staff + s_result + s_feedback
for (des in list(svydesign(ids=~1, weights=~weight, data=d),
                 svydesign(ids=~1, strata=~cell, weights=~weight, data=d))) {
  m <- svyglm(f, design=des, family=quasibinomial(),
              control=glm.control(epsilon=1e-14, maxit=100))
  print(sprintf("%.12f", coef(m))); print(sprintf("%.12f", SE(m)))
}
"""

R_COEF = [-1.464140058299, 0.626726079939, -0.434026955589, 2.139134579229,
          1.635184924880, -0.257610475385]
R_SE = [0.639267312126, 0.372788837419, 0.417492964341, 0.394120831625,
        0.408867223540, 0.401294039524]
R_SE_STRATA = [0.638276364484, 0.373655875819, 0.418751528529, 0.394841289844,
               0.410197040355, 0.395746175359]


def _lcg(n, seed):
    """A portable uniform stream (same numbers on every numpy version)."""
    out = np.empty(n)
    x = seed
    for i in range(n):
        x = (1103515245 * x + 12345) % 2**31
        out[i] = x / 2**31
    return out


def reference_frame(n=240):
    u = _lcg(n * 9, 2025).reshape(n, 9)
    sat = {e: (u[:, j] < 0.7).astype(int) for j, e in enumerate(ELEMENTS)}
    lin = -1.2 + 2.0 * sat["staff"] + 0.8 * sat["result"] + 0.3 * sat["procedure"]
    sat["overall"] = (u[:, 5] < 1 / (1 + np.exp(-lin))).astype(int)
    cols = {}
    for k, e in enumerate(("overall",) + ELEMENTS):
        v = u[:, 6] * (k + 1) % 1.0
        cols[e] = np.where(sat[e] == 1, 4 + (v < 0.5), 1 + np.floor(v * 3)).astype(float)
    df = pd.DataFrame(cols)
    df["weight"] = np.round(0.5 + 2.5 * u[:, 7], 4)
    df["cell"] = np.array(["a", "b", "c"])[np.arange(n) % 3]
    return df


@pytest.mark.parametrize("strata, expected_se", [(None, R_SE), ("cell", R_SE_STRATA)])
def test_matches_r_svyglm(strata, expected_se):
    out = drivers(reference_frame(), min_n=50, strata=strata)
    fit = out.attrs["drivers"]["fits"][0]
    np.testing.assert_allclose([fit["intercept"], *out["coef"]], R_COEF, rtol=1e-7)
    np.testing.assert_allclose([fit["intercept_se"], *out["se"]], expected_se, rtol=1e-6)
    assert list(out["element"]) == list(ELEMENTS)


# --------------------------------------------------------------------------
# Behaviour on simulated data
# --------------------------------------------------------------------------


def test_strong_staff_no_access():
    df = simulate(4000, {"staff": 2.5, "procedure": 0.4, "result": 0.4, "feedback": 0.3}, seed=1)
    out = drivers(df)
    e = _by_element(out)
    assert (out["status"] == "ok").all()
    assert e.loc["staff", "coef"] > 2.0
    assert e.loc["staff", "p_value"] < 1e-10 and e.loc["staff", "significant"]
    assert abs(e.loc["access", "coef"]) < 0.3
    assert e.loc["access", "p_value"] > 0.05 and not e.loc["access", "significant"]
    assert e.loc["staff", "odds_ratio"] == pytest.approx(np.exp(e.loc["staff", "coef"]))
    assert e.loc["staff", "or_ci_low"] < e.loc["staff", "odds_ratio"] < e.loc["staff", "or_ci_high"]
    assert e["importance"].sum() == pytest.approx(1.0)
    assert e["importance"].idxmax() == "staff"
    assert e.loc["staff", "n"] == 4000 and e.loc["staff", "n_responses"] == 4000
    assert "var_weights" in out["method"].iloc[0]


def test_weights_change_the_answer():
    # Population: 90% of transactions behave like group S (overall driven by
    # staff), 10% like group A (driven by access).  The sample over-represents A.
    s = simulate(600, {"staff": 3.0}, seed=2, weight=0.9 / 600 * 4000)
    a = simulate(2400, {"access": 3.0}, seed=3, weight=0.1 / 2400 * 4000)
    df = pd.concat([s, a], ignore_index=True)
    w = _by_element(drivers(df))
    u = _by_element(drivers(df, weight=None))
    assert w.loc["staff", "coef"] > w.loc["access", "coef"]
    assert u.loc["access", "coef"] > u.loc["staff", "coef"]
    assert w["importance"].idxmax() == "staff" and u["importance"].idxmax() == "access"
    # Scaling every weight by a constant changes nothing.
    k = _by_element(drivers(df.assign(weight=df["weight"] * 37.0)))
    np.testing.assert_allclose(k["coef"], w["coef"], rtol=1e-8)
    np.testing.assert_allclose(k["se"], w["se"], rtol=1e-8)


def test_compressed_count_rows_equal_expanded_rows():
    rng = np.random.default_rng(5)
    base = simulate(400, {"staff": 1.5, "result": 0.7}, seed=4)
    base["weight"] = rng.choice([0.5, 1.0, 2.5], len(base))
    base["cell"] = rng.choice(["x", "y"], len(base))
    base.loc[rng.choice(len(base), 30, replace=False), "feedback"] = np.nan
    reps = rng.integers(1, 5, len(base))
    expanded = base.loc[base.index.repeat(reps)].reset_index(drop=True)
    compressed = base.assign(count=reps)
    for strata in (None, "cell"):
        a = drivers(expanded, strata=strata)
        b = drivers(compressed, strata=strata)
        for col in ("coef", "se", "p_value", "importance", "performance", "n", "n_weighted"):
            np.testing.assert_allclose(b[col], a[col], rtol=1e-8, err_msg=col)
        assert list(a["quadrant"]) == list(b["quadrant"])
    # Without the count column, the compressed rows would be counted once each.
    c = drivers(compressed.drop(columns="count"))
    assert c["n"].iloc[0] < b["n"].iloc[0]


def test_sandwich_matches_statsmodels_hc0_when_unweighted():
    import statsmodels.api as sm

    df = simulate(800, {"staff": 1.5, "access": 0.5}, seed=6)
    out = drivers(df, weight=None)
    y = (df["overall"] >= 4).astype(float)
    X = sm.add_constant((df[list(ELEMENTS)] >= 4).astype(float))
    ref = sm.GLM(y, X, family=sm.families.Binomial()).fit(cov_type="HC0")
    n = len(df)
    np.testing.assert_allclose(out["coef"], ref.params.iloc[1:], rtol=1e-7)
    np.testing.assert_allclose(out["se"], ref.bse.iloc[1:] * np.sqrt(n / (n - 1)), rtol=1e-6)


def test_too_few_per_group_and_count_in_min_n():
    big = simulate(500, {"staff": 2.0}, seed=7).assign(parent_code="BIG")
    small = simulate(60, {"staff": 2.0}, seed=8).assign(parent_code="SMALL")
    packed = simulate(40, {"staff": 2.0}, seed=9).assign(parent_code="PACKED", count=4)
    df = pd.concat([big, small, packed], ignore_index=True)
    df["count"] = df["count"].fillna(1)
    out = drivers(df, group="parent_code", min_n=100)
    small_rows = out[out.parent_code == "SMALL"]
    assert len(small_rows) == 1
    assert small_rows["status"].iloc[0] == "too_few"
    assert pd.isna(small_rows["element"].iloc[0]) and pd.isna(small_rows["coef"].iloc[0])
    assert small_rows["n"].iloc[0] == 60
    assert (out[out.parent_code == "BIG"]["status"] == "ok").all()
    assert len(out[out.parent_code == "BIG"]) == len(ELEMENTS)
    packed_rows = out[out.parent_code == "PACKED"]  # 40 rows x count 4 = 160 >= 100
    assert len(packed_rows) == len(ELEMENTS) and packed_rows["n"].iloc[0] == 160
    fits = {f["parent_code"]: f for f in out.attrs["drivers"]["fits"]}
    assert fits["SMALL"]["status"] == "too_few"


def test_incomplete_responses_are_left_out_but_count_for_performance():
    df = simulate(600, {"staff": 2.0}, seed=10)
    df.loc[:99, "access"] = np.nan
    e = _by_element(drivers(df))
    assert e.loc["staff", "n"] == 500 and e.loc["staff", "n_responses"] == 600
    w = df["weight"]
    exp_perf = (w * (df["staff"] >= 4)).sum() / w.sum()
    assert e.loc["staff", "performance"] == pytest.approx(exp_perf)
    ans = df["access"].notna()
    exp_access = (w[ans] * (df.loc[ans, "access"] >= 4)).sum() / w[ans].sum()
    assert e.loc["access", "performance"] == pytest.approx(exp_access)


def test_quadrants():
    # staff: important, low performance -> improve_first;
    # access: unimportant, high performance -> possible_overkill.
    rates = {"access": 0.95, "procedure": 0.7, "staff": 0.4, "result": 0.8, "feedback": 0.5}
    coefs = {"access": 0.0, "procedure": 0.8, "staff": 2.5, "result": 1.2, "feedback": 0.1}
    out = drivers(simulate(6000, coefs, rates=rates, seed=11))
    e = _by_element(out)
    assert e.loc["staff", "quadrant"] == "improve_first"
    assert e.loc["access", "quadrant"] == "possible_overkill"
    assert e.loc["result", "quadrant"] == "keep_up"
    assert e.loc["feedback", "quadrant"] == "lower_priority"
    fit = out.attrs["drivers"]["fits"][0]
    assert fit["importance_cut"] == pytest.approx(e["importance"].median())
    assert fit["performance_cut"] == pytest.approx(e["performance"].median())
    # Explicit cut lines override the medians.
    f = _by_element(drivers(simulate(6000, coefs, rates=rates, seed=11), performance_cut=0.99))
    assert set(f["quadrant"]) <= {"improve_first", "lower_priority"}


def test_constant_element_no_variation_and_bad_values():
    df = simulate(300, {"staff": 2.0}, seed=12)
    df["feedback"] = 5.0
    e = _by_element(drivers(df))
    assert e.loc["feedback", "status"] == "constant" and np.isnan(e.loc["feedback", "coef"])
    assert e.loc["feedback", "performance"] == 1.0
    assert e.loc["staff", "status"] == "ok"
    assert e["importance"].sum() == pytest.approx(1.0)
    flat = df.assign(overall=4.0)
    out = drivers(flat)
    assert len(out) == 1 and out["status"].iloc[0] == "no_variation"
    with pytest.raises(ValueError):
        drivers(df.assign(staff=df["staff"].replace(5.0, 6.0)))
    with pytest.raises(KeyError):
        drivers(df.drop(columns="weight"))


def test_ineligible_responses_are_left_out():
    df = simulate(500, {"staff": 2.0}, seed=13)
    noise = simulate(200, {"access": 4.0}, seed=14)
    noise["excluded"] = 1
    kid = simulate(100, {"access": 4.0}, seed=15).assign(age_group="under_18")
    both = pd.concat([df.assign(excluded=0), noise, kid], ignore_index=True)
    a = drivers(df)
    b = drivers(both)
    np.testing.assert_allclose(b["coef"], a["coef"], rtol=1e-10)
    assert b.attrs["drivers"]["left_out_ineligible"] == 300
    c = drivers(both, eligible_only=False)
    assert c["n"].iloc[0] == 800


def test_perfect_separation_is_flagged_not_raised():
    rng = np.random.default_rng(16)
    n = 300
    df = pd.DataFrame({e: rng.choice([1, 2, 3, 4, 5], n).astype(float) for e in ELEMENTS})
    df["overall"] = df["staff"]  # overall satisfied exactly when staff is
    df["weight"] = 1.0
    out = drivers(df)
    assert (out["status"] == "separation").all()
    assert _by_element(out).loc["staff", "coef"] > 10
