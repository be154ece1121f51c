"""Tests for analysis.ranking: rank intervals (working SE, rank_among), parent comparison."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import IndexOptions, compute_index
from analysis.ranking import (
    RANK_STATUSES,
    _average_ranks,
    compare_to_parent,
    order_ranked,
    rank_status_label,
    rank_units,
    ranking_note,
)
from tests.factories import make_responses, uniform_rows, unit_estimates


def _responses(spec):
    """spec: (unit, n, share satisfied): every item 5 for the satisfied responses, 2 for the others."""
    rows = []
    for unit, n, share in spec:
        k = round(share * n)
        rows += uniform_rows(unit, k, value=5) + uniform_rows(unit, n - k, value=2)
    return make_responses(rows)


def _engine_table(spec, volumes=None):
    """Unit rows of compute_index (default options) over ``spec``."""
    opts = IndexOptions(weights_from="volumes" if volumes is not None else "none")
    res = compute_index(_responses(spec), volumes, period=None, options=opts)
    return res.table[res.table["level"] == "unit"].reset_index(drop=True)


def _units(m=40, seed=1):
    return unit_estimates(m, seed, adequacy="adequate")


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
    t.loc[len(t)] = ["BEST", "unit", 0.995, 1e-4, 5000, "adequate"]
    r = rank_units(t, n_sim=1000).set_index("unit_code")
    assert r.loc["BEST", ["rank", "rank_low", "rank_high"]].tolist() == [1, 1, 1]
    # Everybody else can never be first.
    assert (r.drop(index="BEST")["rank_low"] >= 2).all()


def test_ties_are_averaged():
    # A and B: census units at 100% (zero-width interval: exact); C and D tied at 0.5.
    t = pd.DataFrame(
        {
            "unit_code": list("ABCD"),
            "index": [1.0, 1.0, 0.5, 0.5],
            "index_se": [0.0, 0.0, 0.01, 0.01],
            "index_ci_low": [1.0, 1.0, 0.48, 0.48],
            "index_ci_high": [1.0, 1.0, 0.52, 0.52],
        }
    )
    r = rank_units(t, n_sim=200, rank_among="all").set_index("unit_code")
    assert r.loc["A", "rank"] == 1.5 and r.loc["B", "rank"] == 1.5
    assert r.loc["C", "rank"] == 3.5 and r.loc["D", "rank"] == 3.5
    # Exact (census) tied units stay tied in every replicate.
    assert r.loc["A", ["rank_low", "rank_high"]].tolist() == [1.5, 1.5]
    assert r.loc["C", "rank_low"] == 3 and r.loc["C", "rank_high"] == 4


def test_ties_between_zero_se_units_that_are_not_a_census_are_not_exact():
    # Two units at 100% with SE reported 0 (Var = 0 rule) but wide intervals:
    # tied point ranks, yet each can fall behind the 0.9 unit in a replicate.
    t = pd.DataFrame(
        {
            "unit_code": list("ABC"),
            "index": [1.0, 1.0, 0.9],
            "index_se": [0.0, 0.0, 0.01],
            "index_ci_low": [0.7, 0.7, 0.88],
            "index_ci_high": [1.0, 1.0, 0.92],
        }
    )
    r = rank_units(t, n_sim=2000, rank_among="all").set_index("unit_code")
    assert r.loc["A", "rank"] == r.loc["B", "rank"] == 1.5
    assert r.loc["A", "rank_low"] == 1 and r.loc["A", "rank_high"] == 3
    assert r.loc["C", "rank_low"] == 1


def test_logit_scale_keeps_draws_inside_unit_interval():
    # A unit fixed at 1.0 can never be overtaken on the logit scale, while on
    # the identity scale a unit at 0.98 with a big SE sometimes exceeds 1.
    t = pd.DataFrame(
        {"unit_code": ["P", "Q"], "index": [1.0, 0.98], "index_se": [0.0, 0.05],
         "index_ci_low": [1.0, 0.85], "index_ci_high": [1.0, 0.995]}
    )
    r = rank_units(t, n_sim=2000, rank_among="all").set_index("unit_code")
    assert r.loc["P", ["rank_low", "rank_high"]].tolist() == [1, 1]
    ri = rank_units(t, n_sim=2000, scale="identity", rank_among="all").set_index("unit_code")
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
    r = rank_units(t, n_sim=100, rank_among="all")
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


# --------------------------------------------------------------------------
# Working SE (METHODOLOGY 4) and the ranking rule (METHODOLOGY 6)
# --------------------------------------------------------------------------

SPEC = [(f"U{i:02d}", 60, 0.70 + 0.012 * i) for i in range(20)]


def test_one_response_unit_at_100_percent_is_not_certain_of_rank_one():
    table = _engine_table(SPEC + [("ONE", 1, 1.0)])
    one = table.set_index("unit_code").loc["ONE"]
    assert one["index"] == 1.0 and one["index_se"] == 0.0  # the Var = 0 rule
    assert one["index_ci_low"] < 0.1                      # ... with an honest interval
    r = rank_units(table, rank_among="all").set_index("unit_code")
    k = r.loc["ONE", "n_ranked"]
    assert k == 21 and r.loc["ONE", "rank"] == 1
    # its rank interval spans most of the ranks (not 1-1)
    assert r.loc["ONE", "rank_low"] == 1
    assert r.loc["ONE", "rank_high"] - r.loc["ONE", "rank_low"] + 1 >= 0.8 * k
    # the well-measured units keep narrower intervals
    width = (r["rank_high"] - r["rank_low"]).drop(index="ONE")
    assert width.max() < r.loc["ONE", "rank_high"] - r.loc["ONE", "rank_low"]


def test_census_unit_is_exact_in_the_simulation():
    # ALL: 30 responses out of 30 transactions, all satisfied: f = 1, exact.
    vols = pd.DataFrame([{"unit_code": u, "period_start": "2024-12-15", "period_end": "2025-12-14",
                          "stratum": "_all", "transactions": n * 10} for u, n, _ in SPEC]
                        + [{"unit_code": "ALL", "period_start": "2024-12-15", "period_end": "2025-12-14",
                            "stratum": "_all", "transactions": 30}])
    table = _engine_table(SPEC + [("ALL", 30, 1.0)], vols)
    row = table.set_index("unit_code").loc["ALL"]
    assert row["index_ci_low"] == row["index_ci_high"] == 1.0
    r = rank_units(table, rank_among="all").set_index("unit_code")
    assert r.loc["ALL", ["rank", "rank_low", "rank_high"]].tolist() == [1, 1, 1]


def test_only_adequate_units_are_ranked_by_default():
    t = _units(m=12)
    t.loc[[2, 5], "adequacy"] = "inadequate"
    t.loc[7, "adequacy"] = "no_population"
    t.loc[9, ["index", "index_se"]] = [np.nan, np.nan]
    t.loc[2, "index"] = 0.999  # the best estimate, but an inadequate sample
    r = rank_units(t, n_sim=300)
    status = r["rank_status"].tolist()
    assert status.count("ranked") == 8
    assert [status[i] for i in (2, 5, 7)] == ["sample_too_small"] * 3 and status[9] == "no_estimate"
    not_ranked = r["rank_status"] != "ranked"
    assert r.loc[not_ranked, ["rank", "rank_low", "rank_high"]].isna().all().all()
    assert (r.loc[not_ranked, "n_ranked"] == 0).all()
    ranked = r[~not_ranked]
    assert sorted(ranked["rank"]) == list(range(1, 9)) and (ranked["n_ranked"] == 8).all()
    assert (ranked["rank_high"] <= 8).all()
    assert "rank_among=adequate" in r["rank_method"].iloc[0]
    assert r.attrs["rank"]["rank_among"] == "adequate"
    # the ranked units' ranks are those of ranking them alone
    alone = rank_units(t[r["rank_status"] == "ranked"], n_sim=300)
    assert alone["rank"].tolist() == ranked["rank"].tolist()
    # rank_among="all" ranks every unit with an estimate
    a = rank_units(t, n_sim=300, rank_among="all")
    assert (a["rank_status"] == "ranked").sum() == 11 and a.loc[2, "rank"] == 1
    assert a.loc[9, "rank_status"] == "no_estimate"


def test_rank_among_needs_the_adequacy_column_and_a_known_value():
    t = _units(m=5).drop(columns="adequacy")
    with pytest.raises(KeyError, match="rank_among='all'"):
        rank_units(t)
    with pytest.raises(ValueError, match="rank_among"):
        rank_units(t, rank_among="some")


def test_order_ranked_lists_unranked_units_after_the_ranked_without_order_by_index():
    t = _units(m=8)
    t.loc[[1, 4], "adequacy"] = "inadequate"
    t.loc[6, ["index", "index_se"]] = [np.nan, np.nan]
    r = order_ranked(rank_units(t, n_sim=200))
    st = r["rank_status"].tolist()
    assert st == ["ranked"] * 5 + ["sample_too_small"] * 2 + ["no_estimate"]
    assert r["rank"].iloc[:5].tolist() == [1, 2, 3, 4, 5]
    assert r["unit_code"].iloc[5:7].tolist() == sorted(t.loc[[1, 4], "unit_code"])
    # within groups
    g = pd.concat([_units(m=4, seed=1).assign(kind="commune"), _units(m=3, seed=2).assign(kind="ward")],
                  ignore_index=True)
    g.loc[0, "adequacy"] = "inadequate"
    o = order_ranked(rank_units(g, group="kind", n_sim=100), group="kind")
    assert o["kind"].tolist() == ["commune"] * 4 + ["ward"] * 3
    assert o["rank_status"].iloc[3] == "sample_too_small"


def test_ranking_note_and_status_labels():
    assert set(RANK_STATUSES) == {"ranked", "sample_too_small", "no_estimate"}
    assert "cỡ mẫu quá nhỏ" in ranking_note("adequate", "vi")
    assert "not ranked: sample too small" in ranking_note("adequate", "en")
    assert "including units whose sample is not adequate" in ranking_note("all", "en")
    assert rank_status_label("sample_too_small", "en") == "not ranked: sample too small"
    assert rank_status_label("sample_too_small") == "không xếp hạng: cỡ mẫu quá nhỏ"
    with pytest.raises(ValueError):
        ranking_note("some")


def test_one_response_unit_is_not_different_from_its_parent():
    # 1 of 1 satisfied: SE reported 0, but the published interval is honest,
    # so the unit is "not different" from a parent at 0.85.
    table = _engine_table(SPEC + [("ONE", 1, 1.0)])
    one = table[table["unit_code"] == "ONE"]
    r = compare_to_parent(one, (0.83, 0.87, 0.85))
    assert r["vs_parent"].tolist() == ["not_different"]


def test_cli_rank_among(tmp_path):
    from pathlib import Path

    from analysis.__main__ import main

    case = Path(__file__).resolve().parents[1] / "r" / "cases" / "volume_fpc"
    base = ["index", "--responses", str(case / "responses.csv"), "--volumes", str(case / "volumes.csv"),
            "--period", "2025", "--level", "unit", "--rank", "--n-sim", "200"]
    assert main(base + ["--out", str(tmp_path / "a.csv")]) == 0
    a = pd.read_csv(tmp_path / "a.csv")
    assert len(a) == 3 and (a["adequacy"] != "adequate").all()
    assert (a["rank_status"] == "sample_too_small").all() and a["rank"].isna().all()
    assert main(base + ["--rank-among", "all", "--out", str(tmp_path / "b.csv")]) == 0
    b = pd.read_csv(tmp_path / "b.csv")
    assert (b["rank_status"] == "ranked").all() and sorted(b["rank"]) == [1, 2, 3]
    import json

    meta = json.loads((tmp_path / "b.csv.meta.json").read_text())
    assert meta["ranking"]["rank_among"] == "all" and "sample" in meta["ranking"]["rule_en"]
