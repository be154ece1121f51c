"""The engine against R's survey package (expected values committed in tests/r/expected).

R is not needed to run these tests: tests/r/make_expected.R produced the CSV
files (see tests/r/README.md). Tolerance 1e-9 (absolute) on rates, SEs and
the intervals R defines (Korn-Graubard "beta", "xlogit"); R leaves intervals
empty where Var = 0 or the design df is 0, where our METHODOLOGY rules differ
on purpose (tested in test_intervals.py).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis.estimation as index_module  # GRAM_MAX_RATIOS lives in analysis.estimation
from analysis import IndexOptions, compute_index, read_responses, read_units, read_volumes
from analysis.schema import ITEM_KEYS

R_DIR = Path(__file__).resolve().parents[1] / "r"
CASES = sorted(p.name for p in (R_DIR / "cases").iterdir() if p.is_dir())
#: Cases whose R values follow a rule the engine does not implement yet: {case: reason}, marked
#: xfail(strict=True) so that the mark must go when the engine matches.
PENDING: dict = {}
CASE_PARAMS = [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=PENDING[c])) if c in PENDING else c
               for c in CASES]
TOL = 1e-9


def _params(case):
    p = pd.read_csv(R_DIR / "cases" / case / "params.csv", dtype=str)
    return dict(zip(p["key"], p["value"]))


@functools.cache
def _run(case, ci="wilson", path="moments"):
    """Index table of a case; ``path`` forces the variance computation (per-cell moments or rows)."""
    old = index_module.GRAM_MAX_RATIOS
    index_module.GRAM_MAX_RATIOS = old if path == "moments" else 0
    try:
        return _run_case(case, ci)
    finally:
        index_module.GRAM_MAX_RATIOS = old


def _run_case(case, ci):
    d = R_DIR / "cases" / case
    prm = _params(case)
    units = read_units(d / "units.csv") if (d / "units.csv").exists() else None
    known = set(units["code"]) if units is not None else None
    resp = read_responses(d / "responses.csv", known_units=known)
    vols = read_volumes(d / "volumes.csv") if (d / "volumes.csv").exists() else None
    # R's svyciprop: the uncapped intervals (method version 2 caps n_eff by default); optional case
    # parameters: rollup, as_of (tree date), map_successors (tests/r/make_cases.py)
    opts = IndexOptions(ci=ci, weights_from=prm["weights_from"], element_mode=prm["element_mode"], cap_n_eff=False,
                        rollup=prm.get("rollup", "pooled"), as_of=prm.get("as_of") or None,
                        map_successors=prm.get("map_successors") == "1")
    return compute_index(resp, vols, units, period=prm["period"], options=opts).table.copy()


def _expected(case):
    return pd.read_csv(R_DIR / "expected" / f"{case}.csv", keep_default_na=True)


def _row(table, level, domain):
    if level == "root":
        sel = table[table["level"] == "root"]
    else:
        sel = table[(table["level"] == level) & (table["unit_code"] == domain)]
    assert len(sel) == 1, (level, domain)
    return sel.iloc[0]


def _close(a, b, what):
    assert np.isfinite(a), what
    assert abs(float(a) - float(b)) <= TOL, f"{what}: python {a!r} vs R {b!r}"


def test_every_case_has_expected_values():
    assert CASES, "no R cases"
    for case in CASES:
        assert (R_DIR / "expected" / f"{case}.csv").exists(), case


@pytest.mark.parametrize("path", ["moments", "rows"])
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_rates_and_standard_errors_match_r(case, path):
    table = _run(case, path=path)
    exp = _expected(case)
    checked = 0
    for rec in exp.itertuples(index=False):
        row = _row(table, rec.level, rec.domain)
        q = rec.quantity
        est_col = "index" if q == "index" else f"{q}_rate"
        se_col = "index_se" if q == "index" else f"{q}_se"
        n_col = "n" if q == "index" else f"{q}_n"
        what = f"{case} {rec.level} {rec.domain} {q}"
        assert int(row[n_col]) == int(rec.n), what + " n"
        if rec.n == 0 or not np.isfinite(rec.est):
            assert not np.isfinite(row[est_col]), what
            continue
        _close(row[est_col], rec.est, what + " estimate")
        if rec.se > 1e-9:
            _close(row[se_col], rec.se, what + " SE")
        else:  # Var = 0 rule: the reported SE is 0
            assert row[se_col] == 0.0, what
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("case", CASE_PARAMS)
@pytest.mark.parametrize("method,prefix", [("beta", "beta"), ("logit", "xlogit")])
def test_intervals_match_r_where_r_defines_them(case, method, prefix):
    table = _run(case, ci=method, path="moments" if method == "beta" else "rows")
    exp = _expected(case)
    checked = 0
    for rec in exp.itertuples(index=False):
        lo, hi = getattr(rec, f"{prefix}_low"), getattr(rec, f"{prefix}_high")
        if not (np.isfinite(lo) and np.isfinite(hi)) or rec.df < 1:
            continue
        row = _row(table, rec.level, rec.domain)
        q = rec.quantity
        col = "index" if q == "index" else q
        what = f"{case} {rec.level} {rec.domain} {q} {method}"
        _close(row[f"{col}_ci_low"], lo, what + " low")
        _close(row[f"{col}_ci_high"], hi, what + " high")
        checked += 1
    if case != "criteria":
        assert checked > 0


def test_compressed_count_rows_give_identical_results():
    """Rows with a ``count`` column give the results of the uncompressed frame.

    Each case's eligible responses are tripled (three identical copies of every
    response), then grouped by unit, stratum and answer pattern into count rows.
    """
    from analysis import parse_period, period_contains

    for case in ("volume_fpc", "rollup", "tiny_cells", "over_population"):
        d = R_DIR / "cases" / case
        units = read_units(d / "units.csv") if (d / "units.csv").exists() else None
        resp = read_responses(d / "responses.csv")
        vols = read_volumes(d / "volumes.csv")
        elig = resp[(~resp["excluded"]) & (~resp["under_18"])]
        elig = elig[period_contains(parse_period("2025"), elig["submitted_at"])]
        keys = ["unit_code", "stratum", *ITEM_KEYS]
        tripled = pd.concat([elig[keys]] * 3, ignore_index=True)
        full = compute_index(tripled, vols, units, period="2025").table
        comp = tripled.groupby(keys, dropna=False).size().rename("count").reset_index()
        assert len(comp) < len(tripled) and comp["count"].sum() == len(tripled)
        small = compute_index(comp, vols, units, period="2025").table
        num = full.select_dtypes("number").columns
        pd.testing.assert_frame_equal(full[num].reset_index(drop=True), small[num].reset_index(drop=True),
                                      check_exact=False, rtol=1e-12, atol=1e-12)
        assert (full["flags"].to_numpy() == small["flags"].to_numpy()).all()
        assert (full["n"].to_numpy() > 0).any()
