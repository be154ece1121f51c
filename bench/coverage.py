"""Coverage study of the interval methods (prints a table, asserts nothing).

Usage (from the repository root)::

    python bench/coverage.py [--reps 2000] [--methods wilson,beta,logit] [--seed 2025]

For p in {0.80, 0.90, 0.95, 0.98} and n in {20, 50, 150, 400}, draws ``reps``
samples of n Bernoulli(p) answers (infinite population, no FPC) and computes the
95% interval of the rate with :func:`analysis.compute_index` — every replicate
is one unit, so a whole configuration is a single vectorised call:

- equal weights: w = 1, one cell;
- unequal weights: two cells (strata) of n/2 responses each, weights 3 and 1
  (Kish deff 1.25), explicit ``weight`` column (no FPC).

Coverage = share of replicates whose interval contains p (including the
zero-width cases of the Var = 0 rule). Goal: every cell ≥ 93%; cells above
97.5% are reported as over-conservative. Monte Carlo SE ≈ sqrt(c(1-c)/reps).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import IndexOptions, compute_index  # noqa: E402

PS = (0.80, 0.90, 0.95, 0.98)
NS = (20, 50, 150, 400)


def replicate_frame(rng, p, n, reps, unequal):
    """One row per response: unit = replicate id, stratum / weight for the unequal design."""
    unit = np.repeat(np.arange(reps), n)
    sat = rng.random(reps * n) < p
    frame = pd.DataFrame({
        "unit_code": pd.Categorical(unit),
        "overall": np.where(sat, 5.0, 2.0),
    })
    if unequal:
        half = np.tile(np.arange(n) < n // 2, reps)
        frame["stratum"] = np.where(half, "a", "b")
        frame["weight"] = np.where(half, 3.0, 1.0)
    return frame


def coverage(p, n, reps, unequal, method, seed, cap=False):
    rng = np.random.default_rng([seed, int(p * 1000), n, int(unequal)])
    frame = replicate_frame(rng, p, n, reps, unequal)
    opts = IndexOptions(ci=method, weights_from="column" if unequal else "none", elements=(), cap_n_eff=cap)
    t = compute_index(frame, options=opts).table
    t = t[t["level"] == "unit"]
    lo, hi = t["overall_ci_low"].to_numpy(), t["overall_ci_high"].to_numpy()
    ok = (lo <= p + 1e-12) & (p - 1e-12 <= hi)
    return float(ok.mean()), float(np.mean(hi - lo))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--methods", default="wilson")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--cap-n-eff", action="store_true", help="IndexOptions(cap_n_eff=True)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    low, high = [], []
    for method in a.methods.split(","):
        print(f"\ninterval: {method}{' (cap_n_eff)' if a.cap_n_eff else ''}   ({a.reps} replicates per cell; MC SE about "
              f"{100 * np.sqrt(0.95 * 0.05 / a.reps):.1f} points at 95%)")
        print(f"{'p':>5s} {'n':>4s} | {'equal w':>8s} {'width':>6s} | {'unequal w':>9s} {'width':>6s}")
        for p in PS:
            for n in NS:
                cells = []
                for unequal in (False, True):
                    c, w = coverage(p, n, a.reps, unequal, method, a.seed, a.cap_n_eff)
                    cells.append((c, w))
                    tag = f"{method} p={p} n={n} {'unequal' if unequal else 'equal'}"
                    if c < 0.93:
                        low.append((tag, c))
                    elif c > 0.975:
                        high.append((tag, c))
                mark = lambda c: "*" if c < 0.93 else ("+" if c > 0.975 else " ")  # noqa: E731
                print(f"{p:5.2f} {n:4d} | {100 * cells[0][0]:7.1f}%{mark(cells[0][0])} {cells[0][1]:6.3f} | "
                      f"{100 * cells[1][0]:8.1f}%{mark(cells[1][0])} {cells[1][1]:6.3f}")
    print("\n* below 93% (goal missed), + above 97.5% (over-conservative)")
    print(f"cells below 93%: {len(low)}" + ("" if not low else " -> " + "; ".join(f"{t} {100 * c:.1f}%" for t, c in low)))
    print(f"cells above 97.5%: {len(high)}" + ("" if not high else " -> " + "; ".join(f"{t} {100 * c:.1f}%" for t, c in high)))
    print(f"elapsed {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
