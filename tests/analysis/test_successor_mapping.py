"""--map-successors maps domains, never the design (METHODOLOGY §6); counter rows are not units.

Tree: province P > districts D1, D2; D1 > communes OLD (retired 2025-07-01, successor NEW) and NEW;
D2 > B. Each collecting unit keeps its own cells, weights and FPC when its data are mapped.
"""
import numpy as np
import pandas as pd
import pytest

from analysis import IndexOptions, InputError, compute_index, weighted_responses
from tests.factories import ITEMS, make_responses, make_units, make_volumes

UNITS = [("P", "province", "", "2000-01-01"),
         ("D1", "district", "P", "2000-01-01"), ("D2", "district", "P", "2000-01-01"),
         ("OLD", "commune", "D1", "2000-01-01", "2025-07-01", "NEW"),
         ("NEW", "commune", "D1", "2025-07-01"),
         ("B", "commune", "D2", "2000-01-01")]
VOLS = [("OLD", "ho_tich", 300, "2024-12-15", "2025-06-30"), ("OLD", "_all", 100, "2024-12-15", "2025-06-30"),
        ("NEW", "_all", 500, "2025-07-01", "2025-12-14"), ("NEW", "dat_dai", 200, "2025-07-01", "2025-12-14"),
        ("B", "_all", 400)]


def _rows(seed=7):
    rng = np.random.default_rng(seed)
    rows = []
    for unit, strata, n, month in (("OLD", ["ho_tich", "", "tu_phap"], 40, "03"),
                                   ("NEW", ["", "dat_dai"], 50, "09"), ("B", [""], 45, "05")):
        for _ in range(n):
            r = {k: int(rng.integers(1, 6)) for k in ITEMS if rng.random() > 0.1}
            rows.append(dict(unit_code=unit, stratum=str(rng.choice(strata)),
                             submitted_at=f"2025-{month}-10T09:00:00+07:00", **r))
    return make_responses(rows)


def _run(map_successors, ci="wilson", rollup="pooled", units=UNITS, vols=VOLS):
    return compute_index(_rows(), make_volumes(vols), make_units(units), period="2025",
                         options=IndexOptions(ci=ci, rollup=rollup, map_successors=map_successors))


def _numeric(row):
    return {k: v for k, v in row.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}


@pytest.mark.parametrize("ci", ["wilson", "beta", "logit"])
def test_root_and_unchanged_parents_identical_with_and_without_mapping(ci):
    plain = _run(False, ci).table.set_index(["level", "unit_code"])
    mapped = _run(True, ci).table.set_index(["level", "unit_code"])
    for key in [("root", "_root"), ("province", "P"), ("district", "D1"), ("district", "D2"), ("unit", "B")]:
        a, b = _numeric(plain.loc[key].to_dict()), _numeric(mapped.loc[key].to_dict())
        assert a.keys() == b.keys()
        for k in a:
            assert (a[k] == b[k]) or (np.isnan(a[k]) and np.isnan(b[k])), (key, k, a[k], b[k])
        assert plain.loc[key, "flags"] == mapped.loc[key, "flags"]


def test_mean_of_units_root_unchanged_when_the_parents_are():
    plain = _run(False, rollup="mean_of_units").table.set_index(["level", "unit_code"])
    mapped = _run(True, rollup="mean_of_units").table.set_index(["level", "unit_code"])
    # D2 (one child, unchanged) is the same; D1's members change (OLD + NEW -> NEW), so P may move
    assert mapped.loc[("district", "D2"), "index"] == plain.loc[("district", "D2"), "index"]
    assert mapped.loc[("district", "D1"), "index"] == pytest.approx(mapped.loc[("unit", "NEW"), "index"])


def test_mapped_unit_is_the_domain_of_the_collecting_units_cells():
    # NEW with mapping = the domain OLD + NEW, which D1 is without mapping (same cells)
    plain = _run(False).table.set_index(["level", "unit_code"])
    res = _run(True)
    mapped = res.table.set_index(["level", "unit_code"])
    new, d1 = mapped.loc[("unit", "NEW")], plain.loc[("district", "D1")]
    for c in ("n", "n_kish", "N", "index", "index_se", "index_ci_low", "index_ci_high", "access_rate", "access_se",
              "access_ci_low", "access_ci_high", "overall_rate", "mean_score", "cells"):
        assert new[c] == pytest.approx(d1[c], rel=1e-12, abs=1e-15), c
    assert new["N"] == 300 + 100 + 500 + 200  # the sum over the units mapped into it
    assert ("unit", "OLD") not in mapped.index
    # the cells stay those of the collecting units
    cells = res.cells.sort_values(["unit_code", "stratum"]).reset_index(drop=True)
    plain_cells = _run(False).cells.sort_values(["unit_code", "stratum"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(cells[["unit_code", "stratum", "n", "N", "w"]],
                                  plain_cells[["unit_code", "stratum", "n", "N", "w"]])
    assert set(cells["unit_code"]) == {"OLD", "NEW", "B"}


def test_a_valid_file_stays_valid_when_mapped():
    # OLD has no volume (one '_all' cell, w = 1, N unknown); NEW has volume for 'dat_dai' only, no '_all'.
    # Relabelling OLD's responses to NEW would need a NEW cell for them (an input error); mapping the
    # domain only keeps OLD's own cell.
    vols = [("NEW", "dat_dai", 200, "2025-07-01", "2025-12-14"), ("B", "_all", 400)]
    rows = _rows()
    rows = rows[~((rows["unit_code"] == "NEW") & (rows["stratum"] == ""))]
    res = compute_index(rows, make_volumes(vols), make_units(UNITS), period="2025",
                        options=IndexOptions(map_successors=True))
    new = res.table.set_index("unit_code").loc["NEW"]
    assert new["N"] == 200 and new["n"] == (rows["unit_code"].isin(["OLD", "NEW"])).sum()
    old_cell = res.cells[res.cells["unit_code"] == "OLD"]
    assert old_cell["stratum"].tolist() == ["_all"] and old_cell["w"].tolist() == [1.0]


def test_weighted_responses_keep_the_collecting_units_cells():
    frame, _ = weighted_responses(_rows(), make_volumes(VOLS), make_units(UNITS), period="2025",
                                  options=IndexOptions(map_successors=True))
    plain, _ = weighted_responses(_rows(), make_volumes(VOLS), make_units(UNITS), period="2025")
    assert set(frame["unit_code"].astype(str)) == {"NEW", "B"}
    assert (frame["cell_unit"].astype(str) == plain["unit_code"].astype(str)).all()
    np.testing.assert_array_equal(frame["weight"].to_numpy(), plain["weight"].to_numpy())
    assert set(frame.loc[frame["cell_unit"] == "OLD", "parent_code"]) == {"D1"}


# ----------------------------------------------------------------------------- counters in a unit file

def test_counter_rows_in_a_unit_file_are_ignored():
    with_counters = UNITS + [("B-Q1", "counter", "B", "2000-01-01"), ("NEW-Q1", "counter", "NEW", "2025-07-01")]
    plain = _run(False).table
    t = _run(False, units=with_counters).table
    assert not t["unit_code"].isin(["B-Q1", "NEW-Q1"]).any()
    # no parent row for a unit because of its counters
    assert (t.groupby("unit_code").size() == plain.groupby("unit_code").size()).all()
    assert len(t) == len(plain)
    pd.testing.assert_frame_equal(t.drop(columns=["method"]), plain.drop(columns=["method"]))


def test_a_counter_code_used_as_unit_code_is_a_clear_error():
    units = UNITS + [("B-Q1", "counter", "B", "2000-01-01")]
    rows = _rows()
    rows.loc[rows.index[-1], "unit_code"] = "B-Q1"
    with pytest.raises(InputError) as exc:
        compute_index(rows, make_volumes(VOLS), make_units(units), period="2025")
    assert "is a counter" in str(exc.value) and "'B-Q1'" in str(exc.value)


# ----------------------------------------------------------------------------- trend on one tree

def test_trend_pair_with_mapping_puts_both_periods_on_the_later_tree():
    from analysis.index import compute_pair

    args = (_rows(), make_volumes(VOLS), make_units(UNITS))
    cur, old = compute_pair(*args, period="2025-09", previous="2025-03",
                            options=IndexOptions(map_successors=True))
    assert old.meta["parameters"]["as_of"] == cur.meta["parameters"]["as_of"] == "2025-09-30"
    prev_units = set(old.table.loc[old.table.level == "unit", "unit_code"])
    assert "OLD" not in prev_units and "NEW" in prev_units  # OLD's March data on NEW, as in September
    alone = compute_index(*args, period="2025-03", options=IndexOptions(map_successors=True))
    assert "OLD" in set(alone.table.loc[alone.table.level == "unit", "unit_code"])  # OLD active in March
    # the earlier period's NEW row is the domain of OLD's cells
    new = old.table.set_index("unit_code").loc["NEW"]
    plain = compute_index(*args, period="2025-03").table.set_index("unit_code").loc["OLD"]
    assert new["index"] == plain["index"] and new["index_se"] == plain["index_se"]
    # without mapping each period keeps its own tree
    cur0, old0 = compute_pair(*args, period="2025-09", previous="2025-03")
    assert old0.meta["parameters"]["as_of"] == "2025-03-31"


def test_cli_trend_with_mapping(tmp_path):
    from analysis.__main__ import main

    r, v, u = tmp_path / "r.csv", tmp_path / "v.csv", tmp_path / "u.csv"
    _rows().to_csv(r, index=False)
    make_volumes(VOLS).to_csv(v, index=False)
    make_units(UNITS).to_csv(u, index=False)
    out = tmp_path / "t.json"
    assert main(["trend", "--responses", str(r), "--volumes", str(v), "--units", str(u), "--period", "2025-09",
                 "--previous", "2025-03", "--map-successors", "--out", str(out)]) == 0
    import json

    doc = json.loads(out.read_text())
    assert doc["meta"]["previous"]["parameters"]["as_of"] == "2025-09-30"
