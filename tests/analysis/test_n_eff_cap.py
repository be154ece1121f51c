"""Method version 2: the n_eff cap is the default for wilson and beta (METHODOLOGY §4).

The capped intervals are checked against an independent hand computation of
the stratified design (variance by the textbook formula for a ratio in a
stratified one-stage design with FPC, Kish's n and the sampling fraction),
not against the engine's own pieces. ``cap_n_eff=False`` keeps the R-exact
intervals (tests/analysis/test_analysis_against_r.py); logit is never capped.
"""
import json

import numpy as np
import pytest
from scipy import stats

from analysis import METHOD_VERSION, IndexOptions, compute_index
from analysis.__main__ import main
from analysis.schema import METHOD_VERSION_UNCAPPED
from tests.factories import make_responses, make_volumes, uniform_rows

# stratum s1: 50 responses, all satisfied, 2000 transactions (w = 40);
# stratum s2: 48 satisfied + 2 not, 100 transactions (w = 2): two failures at a low weight
ROWS = uniform_rows("A", 50, stratum="s1") + uniform_rows("A", 48, stratum="s2") + \
    uniform_rows("A", 2, value=2, stratum="s2")
VOLS = [("A", "s1", 2000), ("A", "s2", 100)]


def _hand_design():
    """(p, Var, n, df, n_kish, f) of one item's rate in unit A, by hand."""
    w = np.r_[np.full(50, 40.0), np.full(50, 2.0)]
    y = np.r_[np.ones(98), np.zeros(2)]
    h = np.r_[np.zeros(50, int), np.ones(50, int)]
    N = {0: 2000.0, 1: 100.0}
    p = np.sum(w * y) / np.sum(w)
    z = w * (y - p) / np.sum(w)                       # linearised ratio
    var = 0.0
    for s in (0, 1):
        zs = z[h == s]
        n_h = len(zs)
        var += (1 - n_h / N[s]) * n_h / (n_h - 1) * np.sum((zs - zs.mean()) ** 2)
    n_kish = np.sum(w) ** 2 / np.sum(w * w)
    f = 100 / 2100
    return p, var, 100, 100 - 2, n_kish, f


def _row(**opts):
    res = compute_index(make_responses(ROWS), make_volumes(VOLS), period="2025", options=IndexOptions(**opts))
    return res, res.table.set_index("unit_code").loc["A"]


def test_the_cap_binds_in_this_design():
    p, var, n, df, n_kish, f = _hand_design()
    assert p * (1 - p) / var > 10 * n_kish / (1 - f)


def test_capped_wilson_is_the_default_and_matches_the_hand_formula():
    p, var, n, df, n_kish, f = _hand_design()
    n_eff = min(p * (1 - p) / var, n_kish / (1 - f))
    z = stats.t.ppf(0.975, df)
    a = z * z / n_eff
    centre = (p + a / 2) / (1 + a)
    half = np.sqrt(a * p * (1 - p) + a * a / 4) / (1 + a)
    res, row = _row()
    assert row["access_rate"] == pytest.approx(p, abs=1e-14)
    assert row["access_se"] == pytest.approx(np.sqrt(var), rel=1e-10)   # the SE itself is never capped
    assert row["access_ci_low"] == pytest.approx(centre - half, abs=1e-12)
    assert row["access_ci_high"] == pytest.approx(centre + half, abs=1e-12)
    assert row["method"] == METHOD_VERSION == res.meta["method_version"] == "sipas-index/2.0"
    assert res.meta["parameters"]["cap_n_eff"] is True


def test_capped_beta_matches_the_hand_formula():
    p, var, n, df, n_kish, f = _hand_design()
    n_eff = min(p * (1 - p) / var, n_kish / (1 - f)) * (stats.t.ppf(0.025, n - 1) / stats.t.ppf(0.025, df)) ** 2
    lo = stats.beta.ppf(0.025, n_eff * p, n_eff * (1 - p) + 1)
    hi = stats.beta.ppf(0.975, n_eff * p + 1, n_eff * (1 - p))
    _, row = _row(ci="beta")
    assert row["staff_ci_low"] == pytest.approx(lo, abs=1e-10)
    assert row["staff_ci_high"] == pytest.approx(hi, abs=1e-10)


@pytest.mark.parametrize("ci", ["wilson", "beta"])
def test_uncapped_is_narrower_here_and_named(ci):
    res_c, capped = _row(ci=ci)
    res_u, uncapped = _row(ci=ci, cap_n_eff=False)
    assert uncapped["result_ci_low"] > capped["result_ci_low"]
    assert uncapped["result_se"] == capped["result_se"]
    assert uncapped["method"] == METHOD_VERSION_UNCAPPED == res_u.meta["method_version"]
    assert "off" in res_u.meta["n_eff_cap"]


def test_logit_is_never_capped():
    _, capped = _row(ci="logit")
    res, uncapped = _row(ci="logit", cap_n_eff=False)
    for c in ("access_ci_low", "access_ci_high", "index_ci_low", "index_ci_high"):
        assert capped[c] == uncapped[c]
    assert "never capped" in res.meta["n_eff_cap"]


def test_the_index_interval_is_not_capped():
    _, capped = _row()
    _, uncapped = _row(cap_n_eff=False)
    assert capped["index_ci_low"] == uncapped["index_ci_low"]


def test_cli_names_the_method_and_no_cap_gives_the_uncapped_intervals(tmp_path):
    resp, vol = tmp_path / "r.csv", tmp_path / "v.csv"
    make_responses(ROWS).to_csv(resp, index=False)
    make_volumes(VOLS).to_csv(vol, index=False)
    base = ["index", "--responses", str(resp), "--volumes", str(vol), "--period", "2025", "--level", "unit"]
    assert main(base + ["--out", str(tmp_path / "c.json")]) == 0
    assert main(base + ["--no-cap-n-eff", "--out", str(tmp_path / "u.json")]) == 0
    c = json.loads((tmp_path / "c.json").read_text())
    u = json.loads((tmp_path / "u.json").read_text())
    assert c["meta"]["method_version"] == METHOD_VERSION and c["rows"][0]["method"] == METHOD_VERSION
    assert u["meta"]["method_version"] == METHOD_VERSION_UNCAPPED and u["rows"][0]["method"] == METHOD_VERSION_UNCAPPED
    _, capped = _row()
    _, uncapped = _row(cap_n_eff=False)
    assert c["rows"][0]["access_ci_low"] == pytest.approx(capped["access_ci_low"], abs=1e-15)
    assert u["rows"][0]["access_ci_low"] == pytest.approx(uncapped["access_ci_low"], abs=1e-15)
