"""The two variance computations (per-cell moments, row pass) agree on larger random data."""
import numpy as np
import pandas as pd
import pytest

import analysis.estimation as index_module  # GRAM_MAX_RATIOS lives in analysis.estimation
from analysis import IndexOptions, compute_index
from analysis.schema import ELEMENTS, ITEM_KEYS


def _data(seed, n=3000, units=80, criteria=0):
    rng = np.random.default_rng(seed)
    unit = rng.integers(0, units, n)
    frame = {"unit_code": np.char.add("U", unit.astype(str)), "stratum": rng.choice(["a", "b", "c"], n)}
    p = rng.beta(6, 2, units)[unit]
    for k in ITEM_KEYS:
        v = np.where(rng.random(n) < p, rng.integers(4, 6, n), rng.integers(1, 4, n)).astype(float)
        v[rng.random(n) < 0.1] = np.nan
        frame[k] = v
    for e in ELEMENTS[:2]:
        for c in range(1, criteria + 1):
            v = (rng.random(n) < p).astype(float)
            v[rng.random(n) < 0.2] = np.nan
            frame[f"{e}_c{c}"] = v
    df = pd.DataFrame(frame)
    vol = pd.DataFrame([(f"U{u}", s, "2024-12-15", "2025-12-14", int(rng.integers(40, 900)))
                        for u in range(units) for s in ("a", "b", "c")],
                       columns=["unit_code", "stratum", "period_start", "period_end", "transactions"])
    parents = pd.DataFrame([(f"U{u}", f"U{u}", f"U{u}", "commune", f"D{u % 7}", "", "", "") for u in range(units)]
                           + [(f"D{d}", "", "", "district", "P", "", "", "") for d in range(7)]
                           + [("P", "", "", "province", "", "", "", "")],
                           columns=["code", "name_vi", "name_en", "kind", "parent_code", "valid_from", "valid_to",
                                    "successor_code"])
    return df, vol, parents


def _table(df, vol, units, limit, **opts):
    old = index_module.GRAM_MAX_RATIOS
    index_module.GRAM_MAX_RATIOS = limit
    try:
        return compute_index(df, vol, units, period="2025", options=IndexOptions(**opts)).table
    finally:
        index_module.GRAM_MAX_RATIOS = old


@pytest.mark.parametrize("criteria,mode", [(0, "direct"), (5, "criteria")])
def test_moments_and_rows_agree(criteria, mode):
    df, vol, units = _data(7 + criteria, criteria=criteria)
    a = _table(df, vol, units, 100, element_mode=mode)
    b = _table(df, vol, units, 0, element_mode=mode)
    num = [c for c in a.select_dtypes("number").columns]
    assert np.isfinite(a["index_se"]).sum() > 60
    pd.testing.assert_frame_equal(a[num], b[num], check_exact=False, rtol=1e-10, atol=1e-13)
