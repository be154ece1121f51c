"""Point estimates, linearised variances and intervals for every domain of one level.

METHODOLOGY §2 (rates, element index, satisfaction index, mean score) and §4
(variance, intervals). A *level* is a partition of the design's cells into
domains (the units, the parents of one depth, the root): every cell lies in
exactly one domain of a level, so each estimate is a few ``np.bincount`` over
per-cell sums (:class:`CellStats`, computed once for all levels).

Quantities: each element's rate (its direct item, or the mean of its criteria
rates), ``overall`` (the overall item), and ``index`` = Σ α_e p_e over the
elements with an answer (weights renormalised). Ratio variables are
(satisfied, answered) pairs per item.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import intervals as ci
from .errors import InputError, Problem
from .io import criteria_columns
from .options import IndexOptions
from .schema import OVERALL, SATISFIED_MIN
from .variance import Design, cell_moments, domain_variance, lincomb_influence, moment_variance

__all__ = ["RatioVars", "build_vars", "CellStats", "cell_stats", "estimate_level", "normalise_alpha",
           "by_domain", "subdomain_sizes", "GRAM_MAX_RATIOS"]


@dataclass
class RatioVars:
    """Ratio variables (y_j, x_j) per row and their grouping into elements."""

    ys: list
    xs: list
    groups: dict        # element -> list of j
    overall: int | None
    direct: dict        # element -> (values, answered) of the direct 1-5 item, for mean scores
    overall_direct: tuple | None
    modes: dict


def build_vars(frame: pd.DataFrame, elements, element_mode) -> RatioVars:
    crit = criteria_columns(frame.columns)
    ys, xs, groups, direct, modes = [], [], {}, {}, {}
    n = len(frame)

    def add(values, sat_threshold):
        v = values
        a = ~np.isnan(v)
        ys.append(np.where(a & (v >= sat_threshold), 1.0, 0.0))
        xs.append(a.astype(float))
        return len(ys) - 1

    for e in elements:
        mode = element_mode.get(e, "direct") if isinstance(element_mode, dict) else element_mode
        v = frame[e].to_numpy(float) if e in frame.columns else np.full(n, np.nan)
        if e in frame.columns:
            direct[e] = (np.nan_to_num(v), (~np.isnan(v)).astype(float))
        if mode == "criteria" and crit.get(e):
            groups[e] = [add(frame[c].to_numpy(float), 1) for c in crit[e]]
            modes[e] = "criteria"
        else:
            groups[e] = [add(v, SATISFIED_MIN)]
            modes[e] = "direct"
    overall = None
    overall_direct = None
    if OVERALL in frame.columns:
        v = frame[OVERALL].to_numpy(float)
        overall = add(v, SATISFIED_MIN)
        overall_direct = (np.nan_to_num(v), (~np.isnan(v)).astype(float))
    return RatioVars(ys, xs, groups, overall, direct, overall_direct, modes)


#: the variance uses per-cell second moments (a Gram matrix of the 2J ratio
#: variables) when there are at most this many ratio variables, else one pass
#: over the rows per level; both give survey's linearisation (tested against R).
GRAM_MAX_RATIOS = 8


@dataclass
class CellStats:
    """Level-independent per-cell sums: everything a level needs except the variance rows."""

    Yc: np.ndarray          # (J, ncell) Σ c·w·y_j
    Xc: np.ndarray          # (J, ncell) Σ c·w·x_j
    sizes: dict             # quantity -> (n, Σ c·w, Σ c·w²) per cell of its sub-domain
    means: dict             # element -> (Σ c·w·v·a, Σ c·w·a) per cell of the direct item
    moments: tuple | None   # (g, G) from variance.cell_moments, or None (row path)
    constant: np.ndarray | None = None  # (J, ncell): variable j takes one state in the cell
    w_constant: np.ndarray | None = None  # (ncell,): one weight in the cell


def cell_stats(design: Design, V: RatioVars) -> CellStats:
    """Per-cell sums of every ratio variable, sub-domain size and direct-item mean.

    Each ratio variable has three states per row (0 not answered, 1 answered
    and not satisfied, 2 satisfied), so one bincount over (cell, state) per
    weight gives Σ c·w·y, Σ c·w·x and the sub-domain sizes at once.
    """
    cell, nc = design.cell, design.ncell
    cw = design.cw
    cww = cw * design.w
    J = len(V.ys)
    base3 = cell * 3
    per_state = []
    for j in range(J):
        st = base3 + (V.xs[j] + V.ys[j]).astype(np.int64)
        per_state.append([np.bincount(st, weights=wt, minlength=nc * 3).reshape(nc, 3)
                          for wt in (design.count, cw, cww)])
    Yc = np.vstack([t[1][:, 2] for t in per_state]) if J else np.zeros((0, nc))
    Xc = np.vstack([t[1][:, 1] + t[1][:, 2] for t in per_state]) if J else np.zeros((0, nc))
    sizes = {}
    quantities = list(V.groups.items()) + ([(OVERALL, [V.overall])] if V.overall is not None else [])
    for q, js in quantities:
        if len(js) == 1:
            sizes[q] = tuple(t[:, 1] + t[:, 2] for t in per_state[js[0]])
        else:
            member = np.max(np.vstack([V.xs[j] for j in js]), axis=0)
            sizes[q] = tuple(np.bincount(cell, weights=wt * member, minlength=nc)
                             for wt in (design.count, cw, cww))
    sizes["index"] = tuple(np.bincount(cell, weights=wt, minlength=nc) for wt in (design.count, cw, cww))
    means = {e: (np.bincount(cell, weights=cw * v * a, minlength=nc), np.bincount(cell, weights=cw * a, minlength=nc))
             for e, (v, a) in V.direct.items()}
    moments = cell_moments(design, V.ys, V.xs) if 0 < J <= GRAM_MAX_RATIOS else None
    constant = np.vstack([t[0].max(axis=1) >= design.cell_n for t in per_state]) if J else np.zeros((0, nc), bool)
    return CellStats(Yc, Xc, sizes, means, moments, constant, _constant_weight(design))


def _constant_weight(design: Design) -> np.ndarray:
    """Per cell: every row has the same weight (always true for volume or no weights)."""
    lo = np.full(design.ncell, np.inf)
    hi = np.full(design.ncell, -np.inf)
    np.minimum.at(lo, design.cell, design.w)
    np.maximum.at(hi, design.cell, design.w)
    return lo == hi


def by_domain(values: np.ndarray, cell_dom: np.ndarray, ndom: int) -> np.ndarray:
    """Sum per-cell values (…, ncell) into domains (…, ndom); cells with cell_dom < 0 are dropped."""
    ok = cell_dom >= 0
    if values.ndim == 1:
        return np.bincount(cell_dom[ok], weights=values[ok], minlength=ndom)
    return np.vstack([np.bincount(cell_dom[ok], weights=v[ok], minlength=ndom) for v in values]) \
        if len(values) else np.zeros((0, ndom))


def subdomain_sizes(design: Design, cell_dom, ndom, cell_sizes):
    """n, n_kish, cells, f of a sub-domain from its per-cell (n, Σ c·w, Σ c·w²)."""
    ncnt, sw_c, sw2_c = cell_sizes
    n = by_domain(ncnt, cell_dom, ndom)
    sw = by_domain(sw_c, cell_dom, ndom)
    sw2 = by_domain(sw2_c, cell_dom, ndom)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_kish = np.where(sw2 > 0, sw * sw / sw2, 0.0)
    inside = (ncnt > 0) & (cell_dom >= 0)
    cd = cell_dom[inside]
    cells = np.bincount(cd, minlength=ndom).astype(float)
    N = design.cell_N if design.fpc else np.full(design.ncell, np.nan)
    unknown = np.bincount(cd, weights=np.isnan(N[inside]).astype(float), minlength=ndom) > 0
    sn = np.bincount(cd, weights=design.cell_n[inside], minlength=ndom)
    sN = np.bincount(cd, weights=np.nan_to_num(N[inside]), minlength=ndom)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(unknown | (sN <= 0), 0.0, sn / sN)
    return n, n_kish, cells, np.minimum(f, 1.0)


def _variance(design, V, stats, dom, ndom, cell_dom, js, R, X, B):
    """Linearised variance per domain of Σ_j B_j R_j over the ratio variables ``js``."""
    if stats.moments is not None:
        # a cell where every row has the same answers to these items and the same weight
        # adds exactly 0 (the moment formula would leave rounding dust there)
        flat = np.all(stats.constant[js], axis=0) & stats.w_constant
        return moment_variance(design, stats.moments, js, R, X, B, cell_dom, ndom, zero_cells=flat)
    u = lincomb_influence(dom, [V.ys[j] for j in js], [V.xs[j] for j in js], R[js], X[js], B[js])
    return domain_variance(design, u, cell_dom, ndom)


def estimate_level(design: Design, V: RatioVars, stats: CellStats, dom, ndom, cell_dom, alpha: dict,
                   opts: IndexOptions) -> dict:
    """All estimates for every domain of one level (arrays of length ndom).

    ``dom``: domain of each row (only read on the row path), ``cell_dom``:
    domain of each cell (-1 = none). Point estimates and sizes come from the
    per-cell sums in ``stats``.
    """
    J = len(V.ys)
    Y = by_domain(stats.Yc, cell_dom, ndom)
    X = by_domain(stats.Xc, cell_dom, ndom)
    with np.errstate(divide="ignore", invalid="ignore"):
        R = np.where(X > 0, Y / X, np.nan)
    avail = X > 0
    out: dict = {}
    n_all, kish_all, cells_all, f_all = subdomain_sizes(design, cell_dom, ndom, stats.sizes["index"])
    out.update(n=n_all, n_kish=kish_all, cells=cells_all, f=f_all)
    B_index = np.zeros((J, ndom))
    alpha_avail = np.zeros((len(V.groups), ndom))
    elem_B = {}
    for k, (e, js) in enumerate(V.groups.items()):
        K = avail[js].sum(axis=0)
        B = np.zeros((J, ndom))
        with np.errstate(divide="ignore", invalid="ignore"):
            B[js] = np.where(K > 0, avail[js] / K, 0.0)
        est = np.where(K > 0, np.sum(np.where(avail[js], R[js], 0.0) * B[js], axis=0), np.nan)
        out[f"{e}_rate"] = est
        elem_B[e] = B
        alpha_avail[k] = alpha.get(e, 0.0) * (K > 0)
    tot = alpha_avail.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha_d = np.where(tot > 0, alpha_avail / tot, 0.0)
    index = np.zeros(ndom)
    for k, e in enumerate(V.groups):
        B_index += alpha_d[k] * elem_B[e]
        index += alpha_d[k] * np.nan_to_num(out[f"{e}_rate"])
    out["index"] = np.where(tot > 0, index, np.nan)
    out["_missing"] = {e: ~np.isfinite(out[f"{e}_rate"]) for e in V.groups}
    targets = [(e, js, elem_B[e]) for e, js in V.groups.items()]
    if V.overall is not None:
        Bo = np.zeros((J, ndom))
        Bo[V.overall] = 1.0
        out["overall_rate"] = R[V.overall]
        targets.append((OVERALL, [V.overall], Bo))
    for e, js, B in targets:
        var = _variance(design, V, stats, dom, ndom, cell_dom, js, R, X, B)
        n, kish, cells, f = subdomain_sizes(design, cell_dom, ndom, stats.sizes[e])
        df = ci.design_df(n, cells)
        p = out[f"{e}_rate"]
        se, lo, hi = ci.proportion_interval(p, var, n, df, opts.ci, opts.level, kish, f, opts.cap_n_eff)
        out[f"{e}_se"], out[f"{e}_ci_low"], out[f"{e}_ci_high"], out[f"{e}_n"] = se, lo, hi, n
        out[f"_{e}_var"], out[f"_{e}_df"], out[f"_{e}_kish"], out[f"_{e}_f"] = var, df, kish, f
    if V.overall is None:
        for s_ in ("rate", "se", "ci_low", "ci_high"):
            out[f"overall_{s_}"] = np.full(ndom, np.nan)
        out["overall_n"] = np.zeros(ndom)
    js_index = [j for js in V.groups.values() for j in js]
    var = _variance(design, V, stats, dom, ndom, cell_dom, js_index, R, X, B_index) if js_index else np.zeros(ndom)
    df = ci.design_df(n_all, cells_all)
    se, lo, hi = ci.index_interval(out["index"], var, df, opts.level, kish_all, f_all)
    out.update(index_se=se, index_ci_low=lo, index_ci_high=hi, index_df=np.where(n_all > 0, df, np.nan),
               _index_var=var)
    means = np.zeros(ndom)
    wts = np.zeros(ndom)
    for e in V.groups:
        if e not in stats.means:
            continue
        num = by_domain(stats.means[e][0], cell_dom, ndom)
        den = by_domain(stats.means[e][1], cell_dom, ndom)
        have = den > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            means += np.where(have, alpha.get(e, 0.0) * num / den, 0.0)
        wts += np.where(have, alpha.get(e, 0.0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["mean_score"] = np.where(wts > 0, means / wts, np.nan)
    return out


def normalise_alpha(elements, weights: dict | None) -> dict:
    if not weights:
        return {e: 1.0 / len(elements) for e in elements}
    bad = [k for k, v in weights.items() if k not in elements or float(v) < 0]
    if bad or sum(float(weights.get(e, 0)) for e in elements) <= 0:
        raise InputError([Problem("options", None, "element_weights",
                                  f"element weights must be >= 0 over {list(elements)} with a positive sum")])
    s = sum(float(weights.get(e, 0)) for e in elements)
    return {e: float(weights.get(e, 0)) / s for e in elements}
