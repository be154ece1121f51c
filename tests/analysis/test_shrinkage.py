"""Tests for analysis.shrinkage: Fay-Herriot fit and the shrunk index (working SE)."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

from analysis import IndexOptions, compute_index
from analysis.shrinkage import fay_herriot, shrink_index
from tests.factories import make_responses, uniform_rows, unit_estimates

Z95 = stats.norm.ppf(0.975)


def _units(m=40, seed=1):
    return unit_estimates(m, seed)


def _responses(spec):
    """spec: (unit, n, share satisfied): every item 5 for the satisfied responses, 2 for the others."""
    rows = []
    for unit, n, share in spec:
        k = round(share * n)
        rows += uniform_rows(unit, k, value=5) + uniform_rows(unit, n - k, value=2)
    return make_responses(rows)


def _engine_units(spec, transactions=None):
    """Unit rows of compute_index over ``spec``; ``transactions``: unit -> N (volumes, FPC)."""
    vols = None
    if transactions:
        vols = pd.DataFrame([{"unit_code": u, "period_start": "2024-12-15", "period_end": "2025-12-14",
                              "stratum": "_all", "transactions": N} for u, N in transactions.items()])
    opts = IndexOptions(weights_from="volumes" if vols is not None else "none")
    t = compute_index(_responses(spec), vols, period=None, options=opts).table
    return t[t["level"] == "unit"].reset_index(drop=True)


SPEC = [(f"U{i:02d}", 40 + 5 * i, 0.62 + 0.015 * i) for i in range(20)]


def _brute_reml(y, X, D):
    """Restricted log-likelihood written with full matrices."""

    def negll(A):
        V = np.diag(A + D)
        Vi = np.linalg.inv(V)
        XtViX = X.T @ Vi @ X
        P = Vi - Vi @ X @ np.linalg.inv(XtViX) @ X.T @ Vi
        return 0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtViX)[1] + y @ P @ y)

    return negll


def _brute_ml(y, X, D):
    def negll(A):
        V = np.diag(A + D)
        Vi = np.linalg.inv(V)
        beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
        r = y - X @ beta
        return 0.5 * (np.linalg.slogdet(V)[1] + r @ Vi @ r)

    return negll


def _maximise(negll, hi=5.0):
    grid = np.linspace(0, hi, 401)
    vals = [negll(a) for a in grid]
    k = int(np.argmin(vals))
    lo_b, hi_b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(negll, bounds=(lo_b, hi_b), method="bounded",
                                   options={"xatol": 1e-12})
    return res.x if negll(res.x) < negll(0.0) else 0.0


@pytest.mark.parametrize("with_covariate", [False, True])
def test_reml_and_ml_match_brute_force_maximisation(with_covariate):
    rng = np.random.default_rng(11)
    m = 40
    x = rng.normal(size=m)
    D = rng.uniform(0.05, 0.8, m)
    y = 1.5 + (0.7 * x if with_covariate else 0) + rng.normal(0, 0.6, m) + rng.normal(0, np.sqrt(D))
    X = np.column_stack([np.ones(m), x]) if with_covariate else np.ones((m, 1))
    reml = fay_herriot(y, D, X, method="REML")
    ml = fay_herriot(y, D, X, method="ML")
    assert reml["converged"] and ml["converged"]
    assert reml["A"] == pytest.approx(_maximise(_brute_reml(y, X, D)), rel=1e-5)
    assert ml["A"] == pytest.approx(_maximise(_brute_ml(y, X, D)), rel=1e-5)
    assert ml["A"] < reml["A"]  # ML is biased downwards
    # beta is the GLS estimate at A.
    W = np.diag(1 / (reml["A"] + D))
    np.testing.assert_allclose(reml["beta"], np.linalg.solve(X.T @ W @ X, X.T @ W @ y))


def test_fh_moment_estimator_solves_its_equation():
    rng = np.random.default_rng(12)
    m = 30
    D = rng.uniform(0.05, 0.5, m)
    y = rng.normal(1.0, 0.5, m) + rng.normal(0, np.sqrt(D))
    fit = fay_herriot(y, D, method="FH")
    A = fit["A"]
    w = 1 / (A + D)
    beta = np.sum(w * y) / np.sum(w)
    assert np.sum(w * (y - beta) ** 2) == pytest.approx(m - 1, rel=1e-8)


def test_balanced_case_has_the_textbook_closed_form():
    # Equal sampling variances: REML = moment = s^2 - D, ML = (m-1)/m s^2 - D
    # (Efron-Morris; Rao & Molina 2015, sec. 6.1).
    y = np.array([0.2, 1.9, 0.7, 1.4, 2.6, -0.3, 1.1, 0.5, 1.8, 2.2])
    D = np.full(y.size, 0.25)
    s2 = np.var(y, ddof=1)
    assert fay_herriot(y, D, method="REML")["A"] == pytest.approx(s2 - 0.25, rel=1e-8)
    assert fay_herriot(y, D, method="FH")["A"] == pytest.approx(s2 - 0.25, rel=1e-8)
    assert fay_herriot(y, D, method="ML")["A"] == pytest.approx(np.var(y) - 0.25, rel=1e-8)
    # Then every area is shrunk by the same factor towards the mean.
    fit = fay_herriot(y, D)
    gamma = (s2 - 0.25) / s2
    np.testing.assert_allclose(fit["eblup"], y.mean() + gamma * (y - y.mean()))


def test_shrink_index_gamma_and_direction():
    rng = np.random.default_rng(21)
    m = 50
    true = special.expit(rng.normal(1.8, 0.6, m))
    n = rng.integers(10, 400, m)
    p = np.clip(true + rng.normal(0, np.sqrt(true * (1 - true) / n)), 0.05, 0.99)
    t = pd.DataFrame({"unit_code": range(m), "index": p,
                      "index_se": np.sqrt(p * (1 - p) / n), "n": n})
    s = shrink_index(t)
    A = s["shrink_A"].iloc[0]
    assert A > 0
    assert ((s["shrink_gamma"] > 0) & (s["shrink_gamma"] < 1)).all()
    np.testing.assert_allclose(s["shrink_gamma"], A / (A + s["shrink_logit_var"]))
    # gamma falls as the sampling variance grows.
    order = np.argsort(s["shrink_logit_var"].to_numpy())
    assert np.all(np.diff(s["shrink_gamma"].to_numpy()[order]) <= 0)
    # The shrunk value lies between the direct value and the common mean, and
    # moves further (on the logit scale, relative to its distance) when the SE is larger.
    mean = s.attrs["shrink"]["fits"][0]["beta"][0]
    y = special.logit(s["index"])
    ys = special.logit(s["index_shrunk"])
    assert np.all((ys - mean) * (y - mean) >= 0) and np.all(np.abs(ys - mean) <= np.abs(y - mean) + 1e-12)
    moved = 1 - (ys - mean) / (y - mean)
    np.testing.assert_allclose(moved, 1 - s["shrink_gamma"], rtol=1e-8)
    # Same direct estimate, bigger SE -> pulled closer to the mean.
    two = pd.concat([t, pd.DataFrame({"unit_code": ["small", "big"], "index": [0.97, 0.97],
                                      "index_se": [0.005, 0.03], "n": [1000, 30]})],
                    ignore_index=True)
    s2 = shrink_index(two).set_index("unit_code")
    assert s2.loc["big", "index_shrunk"] < s2.loc["small", "index_shrunk"] < 0.97
    assert "REML" in s["shrink_method"].iloc[0]
    assert s.attrs["shrink"]["variance_estimator"] == "REML"


def test_no_between_unit_variance_collapses_to_the_mean():
    # Direct estimates closer together than their sampling error implies: A = 0.
    m = 20
    p = 0.85 + np.linspace(-0.002, 0.002, m)
    t = pd.DataFrame({"unit_code": range(m), "index": p, "index_se": 0.03, "n": 150})
    s = shrink_index(t)
    assert s["shrink_A"].iloc[0] == 0
    assert (s["shrink_gamma"] == 0).all()
    assert s["index_shrunk"].nunique() == 1 or np.ptp(s["index_shrunk"]) < 1e-12
    beta = s.attrs["shrink"]["fits"][0]["beta"][0]
    assert s["index_shrunk"].iloc[0] == pytest.approx(special.expit(beta))
    w = 1 / s["shrink_logit_var"]
    assert beta == pytest.approx(np.sum(w * special.logit(p)) / np.sum(w))


def test_shrink_groups_covariates_and_too_few():
    t = pd.concat([_units(m=25, seed=1).assign(level="unit"),
                   _units(m=2, seed=2).assign(level="parent")], ignore_index=True)
    s = shrink_index(t, group="level")
    par = s[s.level == "parent"]
    # Two parents are too few to estimate A: no shrinkage.
    np.testing.assert_allclose(par["index_shrunk"], par["index"])
    assert (par["shrink_gamma"] == 1).all()
    assert len(s.attrs["shrink"]["fits"]) == 2
    # A covariate that explains the differences reduces A.
    rng = np.random.default_rng(4)
    m = 60
    x = rng.normal(size=m)
    p = special.expit(1.5 + 0.8 * x + rng.normal(0, 0.1, m))
    u = pd.DataFrame({"index": p, "index_se": 0.02, "n": 300, "x": x})
    a0 = shrink_index(u)["shrink_A"].iloc[0]
    a1 = shrink_index(u, covariates=["x"])["shrink_A"].iloc[0]
    assert a1 < a0 / 5
    assert shrink_index(u, method="FH")["shrink_method"].str.contains("A=FH").all()




def test_unit_with_50_of_50_satisfied_is_never_shrunk_below_its_own_lower_bound():
    t = _engine_units(SPEC + [("FULL", 50, 1.0)])
    full = t.set_index("unit_code").loc["FULL"]
    assert full["index"] == 1.0 and full["index_se"] == 0.0
    s = shrink_index(t).set_index("unit_code")
    row = s.loc["FULL"]
    assert row["index_ci_low"] <= row["index_shrunk"] <= 1.0
    assert row["index_shrunk"] < 1.0  # still shrunk, within what its data allow
    # it enters the fit with its working SE, from the published interval's width
    mid = (row["index_ci_low"] + row["index_ci_high"]) / 2
    sw = (row["index_ci_high"] - row["index_ci_low"]) / (2 * Z95)
    assert row["shrink_logit"] == pytest.approx(special.logit(mid), rel=1e-12)
    assert row["shrink_logit_var"] == pytest.approx((sw / (mid * (1 - mid))) ** 2, rel=1e-12)
    # every unit stays inside its own interval
    assert (s["index_shrunk"] >= s["index_ci_low"] - 1e-15).all()
    assert (s["index_shrunk"] <= s["index_ci_high"] + 1e-15).all()
    assert s.attrs["shrink"]["limited_to_interval"]


def test_census_unit_is_not_shrunk():
    # CENSUS: 40 responses from 40 transactions (f = 1): its figure is exact.
    transactions = {u: 10 * n for u, n, _ in SPEC}
    transactions["CENSUS"] = 40
    t = _engine_units(SPEC + [("CENSUS", 40, 0.5)], transactions)
    c = t.set_index("unit_code").loc["CENSUS"]
    assert c["index_ci_low"] == c["index_ci_high"] == c["index"]
    s = shrink_index(t).set_index("unit_code")
    assert s.loc["CENSUS", "index_shrunk"] == c["index"]
    assert s.loc["CENSUS", "shrink_gamma"] == 1.0
    # ... and is left out of the fit (the model variance of the others is unchanged)
    alone = shrink_index(t[t["unit_code"] != "CENSUS"])
    assert s["shrink_A"].dropna().iloc[0] == pytest.approx(alone["shrink_A"].iloc[0], rel=1e-12)
    assert s.attrs["shrink"]["fits"][0]["m"] == len(SPEC)


def test_p_zero_and_p_one_are_handled():
    t = _engine_units(SPEC + [("ZERO", 12, 0.0), ("ONE", 1, 1.0), ("ALL", 8, 1.0)])
    s = shrink_index(t).set_index("unit_code")
    for u in ("ZERO", "ONE", "ALL"):
        row = s.loc[u]
        assert np.isfinite(row["index_shrunk"]) and np.isfinite(row["shrink_logit"])
        assert 0 < row["shrink_gamma"] < 1
        assert row["index_ci_low"] <= row["index_shrunk"] <= row["index_ci_high"]
    assert s.loc["ZERO", "index_shrunk"] < s.loc["ALL", "index_shrunk"]
    # one response tells little: shrunk more than 8 of 8
    assert s.loc["ONE", "shrink_gamma"] < s.loc["ALL", "shrink_gamma"]


def test_zero_se_without_interval_is_left_out():
    t = _units(m=30)
    t.loc[len(t)] = ["NO_CI", "unit", 1.0, 0.0, 4]
    t.loc[len(t)] = ["EMPTY", "unit", np.nan, np.nan, 0]
    s = shrink_index(t).set_index("unit_code")
    assert np.isnan(s.loc["NO_CI", "index_shrunk"]) and np.isnan(s.loc["EMPTY", "index_shrunk"])
    assert s["index_shrunk"].notna().sum() == 30
