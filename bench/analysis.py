"""Benchmarks of the analysis engine (prints figures, asserts nothing about time).

Usage (from the repository root)::

    python bench/analysis.py              # both parts
    python bench/analysis.py --part annual
    python bench/analysis.py --part r     # needs Rscript with r-cran-survey
    python bench/analysis.py --part cli   # python -m analysis index on CSV files

Part ``annual``: 1,000,000 responses over 3,500 units (communes, departments,
service-centre desks; 2 strata each; quarterly volumes) under districts / service centres /
provinces; times the whole annual computation (validation, weights, all
elements, index, intervals, adequacy, roll-up to province and root, ranking
when :mod:`analysis.ranking` is present). Goal: under 10 s.

Part ``r``: 200,000 responses over 500 units (2 strata each, volume weights
with FPC); times R survey's ``svyby(~s, ~unit, design, svymean)`` inside R
(``system.time`` around svyby only) against our per-unit estimates of the
same item, checks that rates and SEs agree, prints the ratio. Goal: ≥ 100×.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis import IndexOptions, compute_index, parse_period, prepare_responses, prepare_units, prepare_volumes  # noqa: E402
from analysis.design import build_design  # noqa: E402
from analysis.estimation import build_vars, cell_stats, estimate_level  # noqa: E402
from analysis.schema import ITEM_KEYS  # noqa: E402

ITEMS = list(ITEM_KEYS)


def make_tree(rng):
    """5 provinces; 100 districts; 50 service centres; 2,500 communes, 500 departments, 500 service-centre desks.

    The desks are units of kind ``other`` under the service centres (a row of kind ``counter`` is a service
    point, not a unit of the index: METHODOLOGY §6).
    """
    rows = [(f"P{i}", "province", "") for i in range(5)]
    rows += [(f"D{i:03d}", "district", f"P{i % 5}") for i in range(100)]
    rows += [(f"S{i:02d}", "service_center", f"P{i % 5}") for i in range(50)]
    leaves = [(f"C{i:04d}", "commune", f"D{i % 100:03d}") for i in range(2500)]
    leaves += [(f"G{i:03d}", "department", f"P{i % 5}") for i in range(500)]
    leaves += [(f"K{i:03d}", "other", f"S{i % 50:02d}") for i in range(500)]
    rows += leaves
    units = pd.DataFrame(rows, columns=["code", "kind", "parent_code"])
    units["name_vi"] = units["code"]
    units["name_en"] = units["code"]
    units["valid_from"] = "2020-01-01"
    units["valid_to"] = ""
    units["successor_code"] = ""
    return units, [c for c, _, _ in leaves]


def make_responses(rng, leaves, n, period, strata=("a", "b"), na=0.05, timestamps=True):
    """n responses, units drawn with a skewed distribution, unit-specific satisfaction."""
    U = len(leaves)
    size = rng.gamma(2.0, 1.0, U)
    unit_idx = rng.choice(U, size=n, p=size / size.sum())
    p_unit = rng.beta(8, 2, U)
    frame = {"unit_code": np.asarray(leaves, dtype=object)[unit_idx],
             "stratum": np.asarray(strata, dtype=object)[rng.integers(0, len(strata), n)]}
    for k in ITEMS:
        sat = rng.random(n) < p_unit[unit_idx]
        v = np.where(sat, rng.integers(4, 6, n), rng.integers(1, 4, n)).astype(float)
        v[rng.random(n) < na] = np.nan
        frame[k] = v
    df = pd.DataFrame(frame)
    df["excluded"] = rng.random(n) < 0.02
    df["age_group"] = np.where(rng.random(n) < 0.01, "under_18", "")
    if timestamps:
        start = pd.Timestamp(period.start).value
        end = pd.Timestamp(period.end).value
        ts = rng.integers(start - (end - start) // 50, end, n)  # ~2% before the period
        df["submitted_at"] = pd.to_datetime(ts, utc=True)
    return df


def make_volumes(rng, leaves, strata=("a", "b"), quarterly=True):
    rows = []
    quarters = [parse_period(f"2025-Q{q}") for q in range(1, 5)] if quarterly else [parse_period("2025")]
    base = rng.integers(200, 5000, len(leaves))
    for i, u in enumerate(leaves):
        for s in strata:
            for q in quarters:
                rows.append((u, q.first.isoformat(), q.last.isoformat(), s, int(base[i] // len(quarters))))
    return pd.DataFrame(rows, columns=["unit_code", "period_start", "period_end", "stratum", "transactions"])


def annual(n=1_000_000):
    rng = np.random.default_rng(2025)
    period = parse_period("2025")
    units, leaves = make_tree(rng)
    t0 = time.perf_counter()
    resp = make_responses(rng, leaves, n, period)
    vols = make_volumes(rng, leaves)
    print(f"generated {len(resp):,} responses, {len(vols):,} volume rows, {len(units):,} units "
          f"in {time.perf_counter() - t0:.1f} s (not timed below)")

    c0 = time.process_time()
    t0 = time.perf_counter()
    r = prepare_responses(resp, source="bench")
    v = prepare_volumes(vols, source="bench")
    u = prepare_units(units, source="bench")
    t_valid = time.perf_counter() - t0
    c_valid = time.process_time() - c0
    c0 = time.process_time()
    t0 = time.perf_counter()
    res = compute_index(r, v, u, period=period, options=IndexOptions(target=0.9))
    t_index = time.perf_counter() - t0
    c_index = time.process_time() - c0
    t_rank = None
    try:
        from analysis import ranking
    except ImportError:
        ranking = None
    if ranking is not None:
        c0 = time.process_time()
        t0 = time.perf_counter()
        ranking.rank_units(res.table, group="level", seed=1, n_sim=2000)
        t_rank = time.perf_counter() - t0
        c_rank = time.process_time() - c0
    levels = res.table["level"].value_counts().to_dict()
    print(f"{'step':34s} {'wall':>7s} {'cpu':>7s}")
    print(f"{'validation (prepare_*)':34s} {t_valid:6.2f}s {c_valid:6.2f}s")
    print(f"{'compute_index (all levels)':34s} {t_index:6.2f}s {c_index:6.2f}s   rows by level: {levels}")
    if t_rank is not None:
        print(f"{'rank_units (2,000 draws)':34s} {t_rank:6.2f}s {c_rank:6.2f}s")
    total = t_valid + t_index + (t_rank or 0)
    ctotal = c_valid + c_index + (c_rank if t_rank is not None else 0)
    print(f"{'TOTAL annual computation':34s} {total:6.2f}s {ctotal:6.2f}s   "
          f"(goal < 10 s wall: {'met' if total < 10 else 'MISSED'}; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"meta: n_read={res.meta['n_read']:,} n_used={res.meta['n_used']:,} left_out={res.meta['n_left_out']}")
    return total


R_SCRIPT = r"""
suppressMessages(library(survey))
options(survey.lonely.psu = "adjust")
d <- read.csv("%(csv)s", stringsAsFactors = FALSE)
des <- svydesign(ids = ~1, strata = ~cell, weights = ~w, fpc = ~N, data = d)
tm <- system.time(res <- svyby(~s, ~unit, des, svymean))
cat("ELAPSED", tm[["elapsed"]], "\n")
write.csv(data.frame(unit = res$unit, rate = res$s, se = SE(res)), "%(out)s", row.names = FALSE)
"""


def versus_r(n=200_000, units=500):
    if shutil.which("Rscript") is None:
        print("Rscript not found: skipping the R comparison")
        return None
    rng = np.random.default_rng(7)
    period = parse_period("2025")
    leaves = [f"U{i:03d}" for i in range(units)]
    resp = make_responses(rng, leaves, n, period, na=0.0, timestamps=False)
    resp["excluded"] = False
    resp["age_group"] = ""
    vols = make_volumes(rng, leaves, quarterly=False)
    vols["transactions"] = np.maximum(vols["transactions"], 2000)
    opts = IndexOptions()
    sd = build_design(prepare_responses(resp), prepare_volumes(vols), None, period=period, options=opts)
    design, R = sd.rows, sd.responses
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "d.csv")
        out = os.path.join(tmp, "r.csv")
        cells = sd.cells
        pd.DataFrame({"unit": R["unit_code"], "cell": sd.cell_id, "w": design.w,
                      "N": cells["N"].to_numpy()[sd.cell_id],
                      "s": (R["overall"] >= 4).astype(int)}).to_csv(csv, index=False)
        script = os.path.join(tmp, "b.R")
        Path(script).write_text(R_SCRIPT % {"csv": csv, "out": out})
        p = subprocess.run(["Rscript", script], capture_output=True, text=True, timeout=3000)
        if p.returncode != 0:
            print("R failed:", p.stderr[-2000:])
            return None
        r_time = float(p.stdout.split("ELAPSED")[1].split()[0])
        r_res = pd.read_csv(out).set_index("unit")

    # ours, the same per-unit estimates (the overall item only)
    tree_ids = pd.Series(np.arange(units), index=leaves)
    dom = tree_ids.reindex(R["unit_code"]).to_numpy()
    cell_dom = tree_ids.reindex(sd.cells["unit_code"]).to_numpy()
    V = build_vars(R[["overall"]], (), "direct")
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        stats = cell_stats(design, V)
        est = estimate_level(design, V, stats, dom, units, cell_dom, {}, opts)
        best = min(best, time.perf_counter() - t0)
    ours = pd.DataFrame({"rate": est["overall_rate"], "se": est["overall_se"]}, index=leaves)
    r_in, v_in = prepare_responses(resp), prepare_volumes(vols)
    t0 = time.perf_counter()
    c0 = time.process_time()
    compute_index(r_in, v_in, period=period)
    t_full = time.perf_counter() - t0
    c_full = time.process_time() - c0
    diff_rate = float(np.max(np.abs(ours.loc[r_res.index, "rate"] - r_res["rate"])))
    diff_se = float(np.max(np.abs(ours.loc[r_res.index, "se"] - r_res["se"])))
    print(f"R svyby(~s, ~unit, svymean), {n:,} responses, {units} units, {len(sd.cells)} cells: {r_time:8.2f} s")
    print(f"ours, same per-unit estimates (best of 5):                             {best:8.4f} s")
    print(f"ours, full compute_index (6 items, index, intervals, adequacy, root):  {t_full:8.3f} s "
          f"(cpu {c_full:.3f} s; validation excluded)")
    print(f"max |rate diff| = {diff_rate:.2e}, max |SE diff| = {diff_se:.2e}")
    ratio = r_time / best
    print(f"speed-up same estimates: {ratio:,.0f}x (goal >= 100x: {'met' if ratio >= 100 else 'MISSED'}); "
          f"vs full compute_index: {r_time / t_full:,.0f}x")
    return ratio


def cli(n=1_000_000):
    """End to end: write the annual data set as CSV files, time ``python -m analysis index`` on them."""
    import resource

    rng = np.random.default_rng(2025)
    period = parse_period("2025")
    units, leaves = make_tree(rng)
    resp = make_responses(rng, leaves, n, period)
    resp.insert(0, "response_id", np.arange(len(resp)))
    resp["channel"] = "qr"
    resp["instrument"] = "counter-quick/1"
    resp["excluded"] = resp["excluded"].astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {k: os.path.join(tmp, f"{k}.csv") for k in ("r", "v", "u")}
        resp.to_csv(paths["r"], index=False, float_format="%.0f")
        make_volumes(rng, leaves).to_csv(paths["v"], index=False)
        units.to_csv(paths["u"], index=False)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "analysis", "index", "--responses", paths["r"], "--volumes",
                            paths["v"], "--units", paths["u"], "--period", "2025", "--out",
                            os.path.join(tmp, "out.csv")], cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"CLI index on a {n:,}-row response CSV (read, validate, compute, write): wall {wall:.2f} s, "
          f"cpu {cpu:.2f} s, exit {p.returncode}; load average {os.getloadavg()[0]:.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["annual", "r", "cli", "all"], default="all")
    ap.add_argument("--n", type=int, default=1_000_000)
    a = ap.parse_args()
    if a.part in ("annual", "all"):
        annual(a.n)
    if a.part in ("r", "all"):
        versus_r()
    if a.part in ("cli", "all"):
        cli(a.n)


if __name__ == "__main__":
    main()
