"""Weights, adequacy, intervals and targets against hand computations."""
import math

import numpy as np
import pytest
from scipy import stats

from analysis import IndexOptions, InputError, compute_index, parse_period
from analysis.adequacy import adequacy_status, cochran, required_n, yamane
from analysis.intervals import index_interval, proportion_interval, wilson
from analysis.io import prepare_volumes
from analysis.targets import parse_target_arg, resolve_targets, target_status
from analysis.weights import kish_n, volumes_in_period
from tests.factories import make_responses, make_volumes, uniform_rows

# ----------------------------------------------------------------------------- adequacy

def test_yamane_worked_example():
    assert yamane(1000) == 286


def test_cochran_worked_examples():
    assert cochran(1000) == 278
    assert cochran(None) == 385


def test_required_n_is_capped_at_n_and_unknown_n_uses_cochran():
    req = required_n([1000, 20, np.nan, 100], ["commune"] * 4, "quota", quotas={"commune": 150})
    assert req.tolist()[:2] == [150, 20] and req[2] == 385 and req[3] == 100
    assert required_n([1000], rule="cochran")[0] == 278


def test_adequacy_status_order():
    st = adequacy_status([np.nan, 20, 100, 100], [500, 25, 80, 79], [385, 20, 80, 80], 30)
    assert st.tolist() == ["no_population", "not_eligible", "adequate", "inadequate"]


# ----------------------------------------------------------------------------- volumes and weights

def test_volumes_prorated_for_partial_overlap():
    v = prepare_volumes(make_volumes([
        ("U", "a", 92, "2024-10-01", "2024-12-31"),   # 17 of 92 days in report year 2025
        ("U", "a", 730, "2025-06-01", "2026-05-31"),  # 197 of 365 days
        ("U", "b", 40, "2025-01-01", "2025-01-31"),   # inside
        ("U", "c", 99, "2023-01-01", "2023-12-31"),   # outside
    ]))
    out = volumes_in_period(v, parse_period("2025")).set_index("stratum")
    assert out.loc["a", "N"] == pytest.approx(17 + 730 * 197 / 365, abs=1e-12)
    assert bool(out.loc["a", "prorated"]) and not bool(out.loc["b", "prorated"])
    assert out.loc["b", "N"] == 40 and "c" not in out.index


def test_kish_n():
    assert kish_n(np.array([1.0, 1.0, 2.0])) == pytest.approx(16 / 6)
    assert kish_n(np.array([1.0, 2.0]), np.array([2, 1])) == pytest.approx(16 / 6)


def test_cell_without_volume_names_unit_and_stratum():
    r = make_responses(uniform_rows("U", 3, stratum="land") + uniform_rows("U", 2, stratum="civil"))
    v = make_volumes([("U", "land", 100)])
    with pytest.raises(InputError) as exc:
        compute_index(r, v, period="2025")
    msg = str(exc.value)
    assert "'U'" in msg and "'civil'" in msg and exc.value.problems[0].column == "stratum"
    res = compute_index(r, v, period="2025", options=IndexOptions(weights_from="none"))
    assert res.table.loc[res.table.level == "unit", "n"].tolist() == [5]


def test_ineligible_response_never_raises_a_cell_error():
    r = make_responses(uniform_rows("U", 3, stratum="land") + uniform_rows("U", 1, stratum="civil", excluded="1"))
    res = compute_index(r, make_volumes([("U", "land", 100)]), period="2025")
    assert res.meta["n_left_out"]["excluded"] == 1


def test_weights_are_volume_over_responses_and_all_fallback():
    rows = (uniform_rows("U", 2, value=5, stratum="a") + uniform_rows("U", 3, value=1, stratum="b")
            + uniform_rows("U", 1, value=1, stratum="zzz"))
    v = make_volumes([("U", "a", 100), ("U", "b", 30), ("U", "_all", 10)])
    res = compute_index(make_responses(rows), v, period="2025")
    cells = res.cells.set_index("stratum")
    assert cells.loc["a", "w"] == 50 and cells.loc["b", "w"] == 10 and cells.loc["_all", "w"] == 10
    row = res.table[res.table.level == "unit"].iloc[0]
    # satisfied weight 2*50 over total 2*50 + 3*10 + 1*10
    assert row["overall_rate"] == pytest.approx(100 / 140)
    assert row["N"] == 140 and row["response_rate"] == pytest.approx(6 / 140)
    w = np.array([50, 50, 10, 10, 10, 10.0])
    assert row["n_kish"] == pytest.approx(w.sum() ** 2 / (w ** 2).sum())
    assert row["deff"] == pytest.approx(6 / row["n_kish"])


def test_over_population_cell_is_a_census_and_flagged():
    rows = uniform_rows("U", 4, value=5, stratum="a") + uniform_rows("U", 1, value=2, stratum="a")
    rows += uniform_rows("U", 3, value=4, stratum="b")
    v = make_volumes([("U", "a", 3), ("U", "b", 60)])
    res = compute_index(make_responses(rows), v, period="2025")
    cells = res.cells.set_index("stratum")
    assert bool(cells.loc["a", "over_population"]) and cells.loc["a", "w"] == 1 and cells.loc["a", "N"] == 5
    row = res.table[res.table.level == "unit"].iloc[0]
    assert "over_population" in row["flags"].split(";")
    assert row["N"] == 63  # the unit's N stays the recorded volume


def test_explicit_weight_column_is_used_as_is():
    rows = [dict(unit_code="U", overall=5, weight=3), dict(unit_code="U", overall=1, weight=1),
            dict(unit_code="U", overall=4, weight=2)]
    res = compute_index(make_responses(rows), options=IndexOptions(weights_from="column"))
    assert res.table.iloc[0]["overall_rate"] == pytest.approx(5 / 6)
    assert res.meta["parameters"]["weights_from_used"] == "column"


# ----------------------------------------------------------------------------- intervals

def _wilson_hand(p, n, z):
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_wilson_matches_published_value():
    lo, hi = wilson(np.array([0.9]), np.array([50.0]), stats.norm.ppf(0.975))
    assert lo[0] == pytest.approx(0.7864, abs=5e-5) and hi[0] == pytest.approx(0.9565, abs=5e-5)


def test_wilson_with_design_effective_n_and_t_quantile():
    p, var, df = 0.7, 0.004, 12.0
    se, lo, hi = proportion_interval(np.array([p]), np.array([var]), np.array([20.0]), np.array([df]), "wilson")
    elo, ehi = _wilson_hand(p, p * (1 - p) / var, stats.t.ppf(0.975, df))
    assert se[0] == pytest.approx(math.sqrt(var)) and lo[0] == pytest.approx(elo, abs=1e-12)
    assert hi[0] == pytest.approx(ehi, abs=1e-12)


@pytest.mark.parametrize("method", ["wilson", "beta", "logit"])
def test_zero_variance_rule_uses_wilson_with_kish_n_and_fpc(method):
    # 15 responses all satisfied, one cell of N = 200: n_eff = 15 / (1 - 15/200), df = 14
    r = make_responses(uniform_rows("U", 15, value=5))
    res = compute_index(r, make_volumes([("U", "_all", 200)]), period="2025", options=IndexOptions(ci=method))
    row = res.table[res.table.level == "unit"].iloc[0]
    elo, ehi = _wilson_hand(1.0, 15 / (1 - 15 / 200), stats.t.ppf(0.975, 14))
    for q in ("overall", "access"):
        assert row[f"{q}_rate"] == 1.0 and row[f"{q}_se"] == 0.0
        assert row[f"{q}_ci_low"] == pytest.approx(elo, abs=1e-12)
        assert row[f"{q}_ci_high"] == pytest.approx(ehi, abs=1e-12)
    assert row["index_ci_low"] == pytest.approx(elo, abs=1e-12) and row["index_se"] == 0.0


def test_zero_rate_without_population_uses_f_zero():
    r = make_responses(uniform_rows("U", 8, value=2))
    row = compute_index(r).table.iloc[0]
    elo, ehi = _wilson_hand(0.0, 8, stats.t.ppf(0.975, 7))
    assert row["overall_rate"] == 0 and row["overall_ci_low"] == pytest.approx(0, abs=1e-15)
    assert row["overall_ci_high"] == pytest.approx(ehi, abs=1e-12)


def test_census_gives_zero_width_interval():
    rows = uniform_rows("U", 4, value=5) + uniform_rows("U", 1, value=2)
    row = compute_index(make_responses(rows), make_volumes([("U", "_all", 5)]), period="2025").table.iloc[0]
    assert row["overall_rate"] == pytest.approx(0.8)
    assert row["overall_se"] == 0.0
    assert row["overall_ci_low"] == pytest.approx(0.8) and row["overall_ci_high"] == pytest.approx(0.8)
    assert row["moe"] == pytest.approx(0.0)


def test_single_response_never_nan():
    row = compute_index(make_responses(uniform_rows("U", 1, value=4))).table.iloc[0]
    for c in ("overall_ci_low", "overall_ci_high", "index_ci_low", "index_ci_high"):
        assert np.isfinite(row[c])
    assert row["index_se"] == 0.0


def test_index_interval_is_logit_wald_on_design_df():
    se, lo, hi = index_interval(np.array([0.8]), np.array([0.0009]), np.array([30.0]))
    t = stats.t.ppf(0.975, 30)
    h = t * 0.03 / (0.8 * 0.2)
    lg = math.log(0.8 / 0.2)
    assert lo[0] == pytest.approx(1 / (1 + math.exp(-(lg - h))), abs=1e-12)
    assert hi[0] == pytest.approx(1 / (1 + math.exp(-(lg + h))), abs=1e-12)


# ----------------------------------------------------------------------------- targets

def test_target_status_uses_interval_not_point():
    st = target_status([0.91, 0.80, 0.85, np.nan], [0.97, 0.89, 0.93, np.nan], [0.9, 0.9, 0.9, 0.9])
    assert st.tolist() == ["met", "not_met", "inconclusive", ""]


def test_targets_per_year_and_kind():
    spec = {(2025, "commune"): 0.9, "district": 0.95, "*": 0.8}
    assert resolve_targets(spec, 2025, ["commune", "district", "ward"]).tolist() == [0.9, 0.95, 0.8]
    assert resolve_targets(spec, 2024, ["commune"]).tolist() == [0.8]
    assert parse_target_arg("90") == 0.9
    assert parse_target_arg("2025:commune=0.9,district=95") == {(2025, "commune"): 0.9, "district": 0.95}


def test_cap_n_eff_truncates_the_design_effective_size():
    # design n_eff = p(1-p)/Var = 0.99*0.01/1e-5 = 990 > n_kish = 300: capped at 300
    p, var = np.array([0.99]), np.array([1e-5])
    n, df, kish, f = np.array([300.0]), np.array([298.0]), np.array([300.0]), np.array([0.0])
    se0, lo0, hi0 = proportion_interval(p, var, n, df, "wilson", 0.95, kish, f)
    se1, lo1, hi1 = proportion_interval(p, var, n, df, "wilson", 0.95, kish, f, cap_n_eff=True)
    elo, ehi = _wilson_hand(0.99, 300, stats.t.ppf(0.975, 298))
    assert lo1[0] == pytest.approx(elo, abs=1e-12) and hi1[0] == pytest.approx(ehi, abs=1e-12)
    assert lo0[0] > lo1[0] and se0[0] == se1[0] == pytest.approx(np.sqrt(1e-5))
