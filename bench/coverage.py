"""Coverage study of the interval methods (prints a table, asserts nothing).

Usage (from the repository root)::

    python bench/coverage.py [--reps 1000] [--methods wilson,beta,logit] [--seed 2025]
                             [--designs equal,one_cell_two_w,two_strata,lognormal5]
                             [--caps capped,uncapped]

For p in {0.80, 0.90, 0.95, 0.98} and n in {20, 50, 150, 400}, draws ``reps``
samples of n Bernoulli(p) answers and computes the 95% interval of the rate
with :func:`analysis.compute_index` — every replicate is one unit, so a whole
configuration is a single vectorised call. Weight designs:

- ``equal``: w = 1, one cell (no volumes, no FPC);
- ``one_cell_two_w``: ONE cell whose responses carry two explicit weights,
  3 for the first n/2 and 1 for the others (``weight`` column, no FPC; Kish
  deff 1.25). This was the "unequal weights" design of the first study: the
  variance is that of one stratum with unequal weights, not of two strata;
- ``two_strata``: a real two-stratum design from volumes: two cells of n/2
  responses with N_a / N_b = 3 (design weights 3:1, Kish deff 1.25), N large
  enough (1,000 transactions per response) that the FPC is negligible;
- ``lognormal5``: five strata of n/5 responses whose design weights are
  lognormal quantiles exp(σ·Φ⁻¹((j − ½)/5)), σ set so that the five weights
  have CV exactly 0.5 (Kish deff 1.25), from volumes, FPC negligible as above.

Each configuration is computed with the capped effective sample size
(``cap_n_eff=True``, method version 2, the default) and uncapped
(``cap_n_eff=False``, R's ``svyciprop``). Coverage = share of replicates whose
interval contains p (including the zero-width cases of the Var = 0 rule).
Goal: every cell ≥ 93%; cells above 97.5% are reported as over-conservative.
Monte Carlo SE ≈ sqrt(c(1−c)/reps) (0.7 points at 95% with 1,000 reps).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import IndexOptions, compute_index  # noqa: E402

PS = (0.80, 0.90, 0.95, 0.98)
NS = (20, 50, 150, 400)
DESIGNS = ("equal", "one_cell_two_w", "two_strata", "lognormal5")
#: transactions per response in the volume designs (FPC f = 0.001, negligible)
N_PER_RESPONSE = 1000.0


def lognormal_weights(k: int = 5, cv: float = 0.5) -> np.ndarray:
    """k deterministic lognormal weights exp(σ·Φ⁻¹((j − ½)/k)), σ chosen so that their CV is exactly ``cv``."""
    q = stats.norm.ppf((np.arange(k) + 0.5) / k)

    def cv_of(sigma):
        w = np.exp(sigma * q)
        return np.std(w) / np.mean(w) - cv

    sigma = optimize.brentq(cv_of, 1e-6, 5.0)
    w = np.exp(sigma * q)
    return w / w.mean()


def stratum_weights(design: str) -> np.ndarray | None:
    if design == "two_strata":
        return np.array([3.0, 1.0])
    if design == "lognormal5":
        return lognormal_weights()
    return None


def replicate_data(rng, p, n, reps, design):
    """(responses, volumes or None, weights_from) for one configuration."""
    unit = np.repeat(np.arange(reps), n)
    sat = rng.random(reps * n) < p
    frame = pd.DataFrame({"unit_code": pd.Categorical(unit), "overall": np.where(sat, 5.0, 2.0)})
    if design == "equal":
        return frame, None, "none"
    if design == "one_cell_two_w":
        half = np.tile(np.arange(n) < n // 2, reps)
        frame["stratum"] = ""
        frame["weight"] = np.where(half, 3.0, 1.0)
        return frame, None, "column"
    wh = stratum_weights(design)
    k = len(wh)
    h = np.tile(np.arange(n) * k // n, reps)  # n/k responses per stratum
    names = np.array([f"s{j}" for j in range(k)])
    frame["stratum"] = names[h]
    n_h = np.bincount(np.arange(n) * k // n, minlength=k).astype(float)
    vols = pd.DataFrame({
        "unit_code": np.repeat(np.arange(reps), k),
        "period_start": "2024-12-15", "period_end": "2025-12-14",
        "stratum": np.tile(names, reps),
        "transactions": np.tile(wh * n_h * N_PER_RESPONSE, reps),
    })
    return frame, vols, "volumes"


def coverage_cells(p, n, reps, design, methods, caps, seed):
    """{(method, cap): (coverage, mean width)} for one (p, n, design)."""
    rng = np.random.default_rng([seed, int(p * 1000), n, DESIGNS.index(design)])
    frame, vols, wfrom = replicate_data(rng, p, n, reps, design)
    out = {}
    for method in methods:
        for cap in caps:
            opts = IndexOptions(ci=method, weights_from=wfrom, elements=(), cap_n_eff=(cap == "capped"))
            t = compute_index(frame, vols, period=None, options=opts).table
            t = t[t["level"] == "unit"]
            lo, hi = t["overall_ci_low"].to_numpy(), t["overall_ci_high"].to_numpy()
            ok = (lo <= p + 1e-12) & (p - 1e-12 <= hi)
            out[(method, cap)] = (float(ok.mean()), float(np.mean(hi - lo)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--methods", default="wilson")
    ap.add_argument("--designs", default=",".join(DESIGNS))
    ap.add_argument("--caps", default="capped,uncapped")
    ap.add_argument("--seed", type=int, default=2025)
    a = ap.parse_args()
    methods, designs, caps = a.methods.split(","), a.designs.split(","), a.caps.split(",")
    t0 = time.perf_counter()
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = ["?"]
    print(f"reps={a.reps} per cell (MC SE about {100 * np.sqrt(0.95 * 0.05 / a.reps):.1f} points at 95%); "
          f"seed={a.seed}; load average at start {' '.join(load)}; {os.cpu_count()} cpus")
    for d in designs:
        wh = stratum_weights(d)
        if wh is not None:
            cv = np.std(wh) / np.mean(wh)
            print(f"  {d}: stratum weights {np.round(wh / wh.min(), 3).tolist()} (relative; CV {cv:.3f}, "
                  f"Kish deff {1 + cv * cv:.3f})")
    results = {}
    for p in PS:
        for n in NS:
            for d in designs:
                results[(p, n, d)] = coverage_cells(p, n, a.reps, d, methods, caps, a.seed)
    low, high = [], []
    for method in methods:
        for cap in caps:
            print(f"\ninterval: {method}, {cap}  (coverage % / mean width)")
            print(f"{'p':>5s} {'n':>4s} | " + " | ".join(f"{d:>18s}" for d in designs))
            for p in PS:
                for n in NS:
                    cells = []
                    for d in designs:
                        c, w = results[(p, n, d)][(method, cap)]
                        mark = "*" if c < 0.93 else ("+" if c > 0.975 else " ")
                        tag = f"{method} {cap} p={p} n={n} {d}"
                        if c < 0.93:
                            low.append((tag, c))
                        elif c > 0.975:
                            high.append((tag, c))
                        cells.append(f"{100 * c:6.1f}%{mark} {w:6.3f}   ")
                    print(f"{p:5.2f} {n:4d} | " + " | ".join(cells))
    print("\n* below 93% (goal missed), + above 97.5% (over-conservative)")
    print(f"cells below 93%: {len(low)}" + ("" if not low else " -> " + "; ".join(f"{t} {100 * c:.1f}%"
                                                                                 for t, c in low)))
    print(f"cells above 97.5%: {len(high)}" + ("" if not high else " -> " + "; ".join(f"{t} {100 * c:.1f}%"
                                                                                     for t, c in high)))
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = ["?"]
    print(f"elapsed {time.perf_counter() - t0:.1f} s; load average at end {' '.join(load)}")


if __name__ == "__main__":
    main()
