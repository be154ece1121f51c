"""Tests for analysis.ranking: rank intervals, parent comparison, Fay-Herriot."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

from analysis.ranking import (
    _average_ranks,
    compare_to_parent,
    fay_herriot,
    rank_units,
    shrink_index,
)


def _units(m=40, seed=1):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.70, 0.95, m)
    n = rng.integers(20, 300, m)
    return pd.DataFrame(
        {
            "unit_code": [f"U{i:03d}" for i in range(m)],
            "level": "unit",
            "index": p,
            "index_se": np.sqrt(p * (1 - p) / n),
            "n": n,
        }
    )


# --------------------------------------------------------------------------
# rank_units
# --------------------------------------------------------------------------


def test_rank_point_order_and_columns():
    t = _units()
    r = rank_units(t, n_sim=300)
    for c in ("rank", "rank_low", "rank_high", "n_ranked", "rank_method"):
        assert c in r.columns
    best = r.loc[r["index"].idxmax()]
    worst = r.loc[r["index"].idxmin()]
    assert best["rank"] == 1 and worst["rank"] == len(t)
    assert (r["n_ranked"] == len(t)).all()
    assert "seed=20251215" in r["rank_method"].iloc[0]
    assert r.attrs["rank"]["n_sim"] == 300 and r.attrs["rank"]["scale"] == "logit"
    # The input is not modified.
    assert "rank" not in t.columns
    # lower is better reverses the order.
    r2 = rank_units(t, n_sim=50, higher_is_better=False)
    assert (r2["rank"] == len(t) + 1 - r["rank"]).all()


def test_reproducible_with_seed_and_different_with_another():
    t = _units()
    a = rank_units(t, n_sim=500, seed=7)
    b = rank_units(t, n_sim=500, seed=7)
    c = rank_units(t, n_sim=500, seed=8)
    pd.testing.assert_frame_equal(a, b)
    cols = ["rank_low", "rank_high"]
    assert not a[cols].equals(c[cols])
    assert (a["rank"] == c["rank"]).all()  # point ranks do not depend on the seed


def test_interval_contains_point_rank_and_is_within_range():
    t = _units(m=60, seed=3)
    r = rank_units(t, n_sim=400)
    assert (r["rank_low"] <= r["rank"]).all()
    assert (r["rank"] <= r["rank_high"]).all()
    assert (r["rank_low"] >= 1).all() and (r["rank_high"] <= len(t)).all()
    # Wider SE -> wider interval, on average.
    width = r["rank_high"] - r["rank_low"]
    assert np.corrcoef(width, r["index_se"])[0, 1] > 0


def test_clearly_best_unit_with_tiny_se_is_rank_one_for_sure():
    t = _units(m=30)
    t.loc[len(t)] = ["BEST", "unit", 0.995, 1e-4, 5000]
    r = rank_units(t, n_sim=1000).set_index("unit_code")
    assert r.loc["BEST", ["rank", "rank_low", "rank_high"]].tolist() == [1, 1, 1]
    # Everybody else can never be first.
    assert (r.drop(index="BEST")["rank_low"] >= 2).all()


def test_ties_are_averaged():
    t = pd.DataFrame(
        {
            "unit_code": list("ABCD"),
            "index": [1.0, 1.0, 0.5, 0.5],
            "index_se": [0.0, 0.0, 0.01, 0.01],
        }
    )
    r = rank_units(t, n_sim=200).set_index("unit_code")
    assert r.loc["A", "rank"] == 1.5 and r.loc["B", "rank"] == 1.5
    assert r.loc["C", "rank"] == 3.5 and r.loc["D", "rank"] == 3.5
    # Fixed (SE 0) tied units stay tied in every replicate.
    assert r.loc["A", ["rank_low", "rank_high"]].tolist() == [1.5, 1.5]
    assert r.loc["C", "rank_low"] == 3 and r.loc["C", "rank_high"] == 4


def test_logit_scale_keeps_draws_inside_unit_interval():
    # A unit fixed at 1.0 can never be overtaken on the logit scale, while on
    # the identity scale a unit at 0.98 with a big SE sometimes exceeds 1.
    t = pd.DataFrame(
        {"unit_code": ["P", "Q"], "index": [1.0, 0.98], "index_se": [0.0, 0.05]}
    )
    r = rank_units(t, n_sim=2000).set_index("unit_code")
    assert r.loc["P", ["rank_low", "rank_high"]].tolist() == [1, 1]
    ri = rank_units(t, n_sim=2000, scale="identity").set_index("unit_code")
    assert ri.loc["P", "rank_high"] == 2
    assert ri.attrs["rank"]["scale"] == "identity"


def test_groups_rank_separately():
    t = pd.concat(
        [_units(m=10, seed=1).assign(parent_code="A"), _units(m=5, seed=2).assign(parent_code="B")],
        ignore_index=True,
    )
    r = rank_units(t, group="parent_code", n_sim=300)
    for g, sub in r.groupby("parent_code"):
        assert sorted(sub["rank"]) == list(range(1, len(sub) + 1))
        assert (sub["n_ranked"] == len(sub)).all()
        assert (sub["rank_high"] <= len(sub)).all()
    alone = rank_units(t[t.parent_code == "B"], n_sim=300)
    assert (alone["rank"].to_numpy() == r.loc[r.parent_code == "B", "rank"].to_numpy()).all()


def test_missing_estimate_and_missing_se():
    t = _units(m=6)
    t.loc[0, ["index", "index_se"]] = [np.nan, np.nan]
    t.loc[1, "index_se"] = np.nan
    r = rank_units(t, n_sim=200)
    assert r.loc[0, ["rank", "rank_low", "rank_high"]].isna().all()
    assert r.loc[0, "n_ranked"] == 0
    assert (r.loc[1:, "n_ranked"] == 5).all()
    assert r.loc[1, "rank_low"] == 1 and r.loc[1, "rank_high"] == 5


def test_identity_scale_for_scores_outside_unit_interval():
    t = pd.DataFrame({"unit_code": list("ab"), "index": [80.0, 60.0], "index_se": [1.0, 1.0]})
    r = rank_units(t, n_sim=100)
    assert r.attrs["rank"]["scale"] == "identity"
    assert r["rank_low"].tolist() == [1, 2] and r["rank_high"].tolist() == [1, 2]


def test_many_units_vectorised():
    t = _units(m=3500, seed=5)
    r = rank_units(t, n_sim=200)
    assert r["rank"].min() == 1 and r["rank"].max() == 3500
    assert (r["rank_low"] <= r["rank_high"]).all()


def test_average_ranks_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(30, 12)).astype(float)
    np.testing.assert_array_equal(_average_ranks(a), stats.rankdata(a, axis=1))
    b = rng.standard_normal((5, 50))
    np.testing.assert_array_equal(_average_ranks(b), stats.rankdata(b, axis=1))


# --------------------------------------------------------------------------
# compare_to_parent
# --------------------------------------------------------------------------


def _tree():
    return pd.DataFrame(
        {
            "unit_code": ["ROOT", "P", "hi", "lo", "mid", "touch", "empty"],
            "level": ["root", "parent", "unit", "unit", "unit", "unit", "unit"],
            "parent_code": [None, "ROOT", "P", "P", "P", "P", "P"],
            "index": [0.85, 0.80, 0.95, 0.60, 0.81, 0.88, np.nan],
            "index_ci_low": [0.84, 0.78, 0.90, 0.50, 0.70, 0.82, np.nan],
            "index_ci_high": [0.86, 0.82, 0.98, 0.70, 0.90, 0.92, np.nan],
        }
    )


def test_compare_within_the_same_table():
    r = compare_to_parent(_tree()).set_index("unit_code")
    assert r.loc["hi", "vs_parent"] == "above"
    assert r.loc["lo", "vs_parent"] == "below"
    assert r.loc["mid", "vs_parent"] == "not_different"
    assert r.loc["empty", "vs_parent"] == "unknown"
    assert r.loc["ROOT", "vs_parent"] == "no_parent"
    assert r.loc["P", "vs_parent"] == "below"  # [0.78, 0.82] vs root [0.84, 0.86]
    assert r.loc["hi", "parent_index"] == 0.80
    assert r.loc["hi", "parent_ci_low"] == 0.78 and r.loc["hi", "parent_ci_high"] == 0.82
    assert "overlap" in r["vs_parent_method"].iloc[0]


def test_touching_intervals_are_not_different():
    t = _tree()
    t.loc[t.unit_code == "touch", "index_ci_low"] = 0.82  # == parent's ci_high
    r = compare_to_parent(t).set_index("unit_code")
    assert r.loc["touch", "vs_parent"] == "not_different"
    t.loc[t.unit_code == "touch", "index_ci_low"] = 0.8200001
    assert compare_to_parent(t).set_index("unit_code").loc["touch", "vs_parent"] == "above"


def test_compare_with_mapping_pair_and_single_parent_frame():
    t = _tree()
    units = t[t.level == "unit"]
    m = compare_to_parent(units, {"P": (0.78, 0.82, 0.80)}).set_index("unit_code")
    assert m.loc["hi", "vs_parent"] == "above" and m.loc["lo", "vs_parent"] == "below"
    d = compare_to_parent(units, {"P": {"index_ci_low": 0.78, "index_ci_high": 0.82}})
    assert d["vs_parent"].tolist() == m["vs_parent"].tolist()
    # An explicit pair is the parent of every row.
    pair = compare_to_parent(units, (0.78, 0.82))
    assert pair["vs_parent"].tolist() == m["vs_parent"].tolist()
    # No parent_code column: a one-row parent table is everybody's parent.
    no_pc = units.drop(columns="parent_code")
    s = compare_to_parent(no_pc, t[t.unit_code == "P"])
    assert s["vs_parent"].tolist() == m["vs_parent"].tolist()
    # No parent_code column and several possible parents: no parent.
    assert (compare_to_parent(no_pc, t)["vs_parent"] == "no_parent").all()
    # Unknown parent code.
    u = units.assign(parent_code="X")
    assert (compare_to_parent(u, {"P": (0.78, 0.82)})["vs_parent"] == "no_parent").all()


def test_compare_matches_parent_within_period():
    t = pd.concat([_tree().assign(period="2024"), _tree().assign(period="2025")], ignore_index=True)
    t.loc[(t.period == "2025") & (t.unit_code == "P"), ["index_ci_low", "index_ci_high"]] = [0.93, 0.99]
    r = compare_to_parent(t)
    hi = r[r.unit_code == "hi"].set_index("period")["vs_parent"]
    assert hi["2024"] == "above" and hi["2025"] == "not_different"


# --------------------------------------------------------------------------
# Fay-Herriot shrinkage
# --------------------------------------------------------------------------


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


def test_boundary_and_zero_se_get_continuity_correction():
    t = _units(m=30)
    t.loc[len(t)] = ["ALL_SAT", "unit", 1.0, 0.0, 4]
    t.loc[len(t)] = ["ONE", "unit", 0.0, 0.0, 1]
    t.loc[len(t)] = ["NO_N", "unit", 1.0, 0.0, 0]
    t.loc[len(t)] = ["EMPTY", "unit", np.nan, np.nan, 0]
    s = shrink_index(t).set_index("unit_code")
    a = s.loc["ALL_SAT"]
    assert a["shrink_logit"] == pytest.approx(special.logit(4.5 / 5))
    assert a["shrink_logit_var"] == pytest.approx(1 / 4.5 + 1 / 0.5)
    assert 0 < a["index_shrunk"] < 1 and 0 < a["shrink_gamma"] < 1
    assert s.loc["ONE", "shrink_logit"] == pytest.approx(special.logit(0.25))
    assert 0 < s.loc["ONE", "index_shrunk"] < s.loc["ALL_SAT", "index_shrunk"]
    assert np.isnan(s.loc["NO_N", "index_shrunk"]) and np.isnan(s.loc["EMPTY", "index_shrunk"])
    # A unit with 4 responses all satisfied is shrunk much more than a big unit.
    assert a["shrink_gamma"] < s.drop(index=["ALL_SAT", "ONE", "NO_N", "EMPTY"])["shrink_gamma"].min()


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


def test_empty_string_parent_code_means_no_parent():
    # The index table writes "" as the root's parent code.
    t = _tree()
    t["parent_code"] = t["parent_code"].fillna("")
    r = compare_to_parent(t).set_index("unit_code")
    assert r.loc["ROOT", "vs_parent"] == "no_parent"
    assert r.loc["hi", "vs_parent"] == "above"
    # With a one-row parent table, rows without a parent code use that parent,
    # but the parent row itself is never compared with itself.
    units = t[t.level == "unit"].assign(parent_code="")
    s = compare_to_parent(pd.concat([units, t[t.unit_code == "P"]]), t[t.unit_code == "P"])
    s = s.set_index("unit_code")
    assert s.loc["hi", "vs_parent"] == "above" and s.loc["lo", "vs_parent"] == "below"
    assert s.loc["P", "vs_parent"] == "no_parent"
