"""Tests for analysis.drivers (weighted logistic key-driver analysis)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import read_responses, read_units, read_volumes
from analysis.drivers import drivers
from analysis.index import weighted_responses
from analysis.schema import ELEMENTS


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
# Reference values from R's survey package (svyglm), committed by
# tests/r/make_expected.R from the case tests/r/cases/key_drivers
# --------------------------------------------------------------------------

R_DIR = Path(__file__).resolve().parents[1] / "r"


def _case_frame(case="key_drivers"):
    """The case's eligible responses with their design (cells, weights, N) as the CLI builds them."""
    d = R_DIR / "cases" / case
    prm = pd.read_csv(d / "params.csv", dtype=str).set_index("key")["value"]
    units = read_units(d / "units.csv")
    resp = read_responses(d / "responses.csv", known_units=set(units["code"]))
    vols = read_volumes(d / "volumes.csv")
    frame, _ = weighted_responses(resp, vols, units, period=prm["period"])
    return frame, prm


def test_drivers_case_matches_r_svyglm_on_the_complete_cases_domain_with_fpc():
    frame, prm = _case_frame()
    exp = pd.read_csv(R_DIR / "expected" / "key_drivers.drivers.csv")
    assert prm["drivers_level"] == "district"
    # the case has incomplete responses and a finite population in every cell
    assert frame[["overall", *ELEMENTS]].isna().any(axis=1).mean() > 0.2
    assert frame["cell_N"].notna().all() and (frame.groupby("cell")["count"].sum() == 1).any()
    by_parent = drivers(frame, weight="weight", count="count", strata="cell", fpc="cell_N",
                        group="parent_code", min_n=50)
    whole = drivers(frame, weight="weight", count="count", strata="cell", fpc="cell_N", min_n=50)
    checked = 0
    for (level, domain), rows in exp.groupby(["level", "domain"]):
        out = whole if level == "root" else by_parent[by_parent["parent_code"] == domain]
        fits = out.attrs["drivers"]["fits"]
        fit = fits[0] if level == "root" else next(f for f in fits if f["parent_code"] == domain)
        rows = rows.set_index("term")
        assert (out["n"] == rows["n"].iloc[0]).all(), (level, domain)
        coef = [fit["intercept"], *out.set_index("element").loc[list(ELEMENTS), "coef"]]
        se = [fit["intercept_se"], *out.set_index("element").loc[list(ELEMENTS), "se"]]
        np.testing.assert_allclose(coef, rows.loc[["intercept", *ELEMENTS], "coef"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(se, rows.loc[["intercept", *ELEMENTS], "se"], rtol=1e-9, atol=1e-12)
        checked += 1
    assert checked == 3


def test_fpc_and_incomplete_responses_change_the_standard_errors():
    frame, _ = _case_frame()
    full = drivers(frame, weight="weight", count="count", strata="cell", fpc="cell_N", min_n=50)
    no_fpc = drivers(frame, weight="weight", count="count", strata="cell", min_n=50)
    complete_only = frame[frame[["overall", *ELEMENTS]].notna().all(axis=1)]
    alone = drivers(complete_only, weight="weight", count="count", strata="cell", fpc="cell_N", min_n=50)
    np.testing.assert_allclose(no_fpc["coef"], full["coef"], rtol=1e-12)
    np.testing.assert_allclose(alone["coef"], full["coef"], rtol=1e-12)
    assert (full["se"] < no_fpc["se"]).all()          # the FPC shrinks every SE
    assert not np.allclose(alone["se"], full["se"], rtol=1e-4)  # the domain is not the whole design
    assert "FPC=cell_N" in full["method"].iloc[0]


def test_fpc_must_be_one_population_per_stratum():
    frame, _ = _case_frame()
    bad = frame.copy()
    bad.loc[bad.index[:2], "cell_N"] = [1e6, 2e6]
    bad.loc[bad.index[:2], "cell"] = bad.loc[bad.index[0], "cell"]
    with pytest.raises(ValueError, match="one population size per stratum"):
        drivers(bad, weight="weight", count="count", strata="cell", fpc="cell_N", min_n=50)


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
