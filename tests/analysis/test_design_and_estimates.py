"""The analysis centre: one survey design shared by the index and the models, frozen options,
and the tidy long estimates table of which the wide table is a pivot."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from analysis import IndexOptions, SurveyDesign, build_design, compute_index, weighted_responses
from analysis.estimates import ESTIMATE_COLUMNS, wide_names
from analysis.index import estimate
from analysis.schema import ELEMENTS
from tests.factories import ITEMS, make_responses, make_units, make_volumes

UNITS = [("P", "province", ""), ("D", "district", "P"), ("A", "commune", "D"), ("B", "commune", "D"),
         ("C", "commune", "P")]
VOLS = [("A", "_all", 300), ("A", "ho_tich", 100), ("B", "_all", 80), ("C", "_all", 500), ("D", "_all", 50)]


def _data(seed=11):
    rng = np.random.default_rng(seed)
    rows = []
    for unit, n in (("A", 40), ("B", 12), ("C", 30), ("D", 8)):
        for _ in range(n):
            r = {k: int(rng.integers(1, 6)) for k in ITEMS if rng.random() > 0.15}
            rows.append(dict(unit_code=unit, stratum=str(rng.choice(["", "ho_tich"])), **r))
    rows += [dict(unit_code="B", **{k: 5 for k in ITEMS}) for _ in range(3)]
    return make_responses(rows), make_volumes(VOLS), make_units(UNITS)


# ----------------------------------------------------------------------------- design

def test_the_design_is_one_typed_object_shared_by_index_and_models():
    resp, vols, units = _data()
    design = build_design(resp, vols, units, period="2025")
    assert isinstance(design, SurveyDesign)
    assert design.weights_from == "volumes" and design.fpc
    assert len(design.responses) == len(design.weights) == len(design.cell_id)
    cells = design.cells.set_index(["unit_code", "stratum"])
    # w = N / n per cell (METHODOLOGY §3)
    assert cells.loc[("A", "ho_tich"), "w"] == pytest.approx(100 / cells.loc[("A", "ho_tich"), "n"])
    frame, meta = weighted_responses(resp, vols, units, period="2025")
    np.testing.assert_array_equal(frame["weight"].to_numpy(), design.weights)
    assert meta["n_used"] == design.eligibility.n_used == len(resp)
    res = compute_index(resp, vols, units, period="2025")
    pd.testing.assert_frame_equal(res.cells, design.cells)
    two_steps = estimate(design)
    pd.testing.assert_frame_equal(two_steps.table, res.table)
    pd.testing.assert_frame_equal(two_steps.estimates, res.estimates)
    assert set(frame["parent_code"]) == {"D", "P"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        design.weights_from = "none"


def test_design_domains_follow_the_tree():
    resp, vols, units = _data()
    design = build_design(resp, vols, units, period="2025")
    codes = design.tree.nodes["code"].to_numpy()
    assert (codes[design.row_nodes()] == design.responses["unit_code"].astype(str).to_numpy()).all()
    assert (codes[design.cell_nodes()] == design.cells["unit_code"].to_numpy()).all()


# ----------------------------------------------------------------------------- options

def test_options_are_frozen_and_a_misspelled_option_raises():
    opts = IndexOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.ci = "beta"
    with pytest.raises(TypeError):
        dataclasses.replace(opts, cap_neff=False)
    with pytest.raises(TypeError):
        opts.replace(rollups="mean_of_units")
    beta = opts.replace(ci="beta")
    assert beta.ci == "beta" and opts.ci == "wilson"


def test_compute_does_not_change_the_callers_options():
    resp, vols, units = _data()
    opts = IndexOptions(target=0.8)
    before = dataclasses.asdict(opts)
    compute_index(resp, vols, units, period="2025", options=opts)
    assert dataclasses.asdict(opts) == before


# ----------------------------------------------------------------------------- long table

@pytest.mark.parametrize("opts", [IndexOptions(), IndexOptions(rollup="mean_of_units", ci="beta"),
                                  IndexOptions(level_filter="parent"), IndexOptions(ci="logit", cap_n_eff=False)])
def test_the_wide_table_is_a_pivot_of_the_long_estimates(opts):
    resp, vols, units = _data()
    res = compute_index(resp, vols, units, period="2025", options=opts)
    long, wide = res.estimates, res.table
    assert list(long.columns) == ESTIMATE_COLUMNS
    assert set(long["quantity"]) == {"index", "overall", *ELEMENTS}
    assert len(long) == len(wide) * (2 + len(ELEMENTS))
    assert not long.duplicated(["domain", "quantity"]).any()
    key = wide["level"] + ":" + wide["unit_code"]
    for q, g in long.groupby("quantity"):
        names = wide_names(q)
        g = g.set_index("domain").loc[key]
        for v in ("estimate", "se", "ci_low", "ci_high", "n"):
            np.testing.assert_array_equal(g[v].to_numpy(float), wide[names[v]].to_numpy(float), err_msg=f"{q} {v}")
    idx = long[long["quantity"] == "index"].set_index("domain").loc[key]
    np.testing.assert_array_equal(idx["df"].to_numpy(float), wide["index_df"].to_numpy(float))


def test_long_table_df_is_the_design_df():
    resp, vols, units = _data()
    res = compute_index(resp, vols, units, period="2025", options=IndexOptions(level_filter="unit"))
    row = res.estimates[(res.estimates["domain"] == "unit:A") & (res.estimates["quantity"] == "index")].iloc[0]
    cells = res.cells[res.cells["unit_code"] == "A"]
    assert row["df"] == row["n"] - len(cells) and row["n"] == 40
