"""The satisfaction index of every unit, parent and the root in one call.

:func:`compute_index` runs METHODOLOGY §2–§6 (rates, weights, variance,
intervals, adequacy, flags, targets, roll-up) over a response frame and
returns an :class:`IndexResult` (``.table`` one row per unit/parent/root,
``.meta`` the method version, parameters and counts).

Response rows may carry an integer ``count``: the row stands for ``count``
identical responses (same unit, stratum, answers and weight). Results are
exactly those of the uncompressed frame, so the web app can aggregate in SQL
(``GROUP BY unit_code, stratum, <item columns>``) and pass the groups.
Without ``submitted_at`` the rows are taken as already inside the period; the
period still selects the volumes.

Element keys: access, procedure, staff, result, feedback; ``overall`` is the
overall item. ``element_mode="criteria"`` (or a dict per element) rates an
element as the mean of its criteria rates, criteria columns being
``<element>_c1``, ``<element>_c2``, ... with 1 = yes, 0 = no, empty = don't
know; an element without criteria columns falls back to its direct item.

The mean score is ``Σ α_e m_e`` over the elements' direct 1–5 items (``m_e``
the weighted mean of answered values, weights renormalised like the index),
``score_100 = (mean_score - 1)/4·100``; ``deff`` is Kish's weighting design
effect ``n / n_kish``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import adequacy as adq
from . import intervals as ci
from .errors import InputError, Problem
from .hierarchy import Tree, successor_map, tree_as_of, without_counters
from .io import criteria_columns, prepare_responses, prepare_units, prepare_volumes, check_known_units
from .periods import Period, parse_period
from .schema import (CI_METHODS, DEFAULT_LEVEL, ELEMENTS, METHOD_VERSION, METHOD_VERSION_UNCAPPED, OVERALL,
                     ROLLUPS, ROOT_CODE, ROOT_LEVEL, SATISFIED_MIN, SE_ZERO, UNIT_LEVEL, WEIGHT_SOURCES)
from .targets import resolve_targets, target_status
from .variance import Design, cell_moments, domain_variance, lincomb_influence, moment_variance
from .weights import SEP, cells_for, volumes_in_period

__all__ = ["METHOD_VERSION", "method_label", "IndexOptions", "IndexResult", "compute_index", "compute_pair",
           "weighted_responses", "tree_date", "INDEX_COLUMNS"]



def method_label(cap_n_eff: bool = True) -> str:
    """The method version an output names: :data:`METHOD_VERSION`, or its uncapped (R-exact) variant."""
    return METHOD_VERSION if cap_n_eff else METHOD_VERSION_UNCAPPED


INDEX_COLUMNS = [
    "unit_code", "level", "period", "n", "n_kish", "deff", "N", "response_rate", "overall_rate",
    "index", "index_se", "index_ci_low", "index_ci_high", "moe", "required_n", "adequacy", "flags",
    "target", "target_status",
]


@dataclass
class IndexOptions:
    """Parameters of :func:`compute_index` (all written into ``meta``)."""

    ci: str = "wilson"                      # wilson | beta | logit (element and overall rates)
    level: float = DEFAULT_LEVEL
    weights_from: str = "auto"              # auto | volumes | none | column
    adequacy: str = "yamane"                # yamane | cochran | quota
    margin: float = 0.05                    # e of Yamane / Cochran
    quotas: dict | None = None              # quota rule: kind -> required n
    min_transactions: float = 30
    target: Any = None                      # number, or dict (see analysis.targets)
    as_of: dt.date | None = None            # tree date; default: the period's last day
    rollup: str = "pooled"                  # pooled | mean_of_units
    map_successors: bool = False
    element_weights: dict | None = None     # element -> α (normalised); default equal
    element_mode: Any = "direct"            # direct | criteria | {element: mode}
    elements: tuple = ELEMENTS
    include_excluded: bool = False
    include_under_18: bool = False
    level_filter: str | None = None         # None | unit | parent | root
    calendar: bool = False                  # read "2025" etc. as calendar periods
    low_n: float = 30
    wide_ci: float = 0.30
    cap_n_eff: bool = True                  # n_eff := min(p(1-p)/Var, n_kish/(1-f)) (wilson, beta; method 2);
                                            # False: the R-exact svyciprop intervals. logit is never capped.

    def validate(self):
        checks = [
            (self.ci in CI_METHODS, f"ci must be one of {CI_METHODS}"),
            (self.weights_from in WEIGHT_SOURCES, f"weights_from must be one of {WEIGHT_SOURCES}"),
            (self.adequacy in adq.RULES, f"adequacy must be one of {adq.RULES}"),
            (self.rollup in ROLLUPS, f"rollup must be one of {ROLLUPS}"),
            (self.level_filter in (None, "unit", "parent", "root"), "level must be unit, parent or root"),
            (0 < self.level < 1, "level must be in (0, 1)"),
        ]
        bad = [msg for ok, msg in checks if not ok]
        if bad:
            raise InputError([Problem("options", None, None, m) for m in bad])


@dataclass
class IndexResult:
    """``table``: one row per unit / parent / root; ``meta``: method and counts; ``cells``: the design cells."""

    table: pd.DataFrame
    meta: dict
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)


# ----------------------------------------------------------------------------- helpers

@dataclass
class _Vars:
    """Ratio variables (y_j, x_j) per row and their grouping into elements."""

    ys: list
    xs: list
    groups: dict        # element -> list of j
    overall: int | None
    direct: dict        # element -> (values, answered) of the direct 1-5 item, for mean scores
    overall_direct: tuple | None
    modes: dict


def _build_vars(frame: pd.DataFrame, elements, element_mode) -> _Vars:
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
    return _Vars(ys, xs, groups, overall, direct, overall_direct, modes)


#: the variance uses per-cell second moments (a Gram matrix of the 2J ratio
#: variables) when there are at most this many ratio variables, else one pass
#: over the rows per level; both give survey's linearisation (tested against R).
GRAM_MAX_RATIOS = 8


@dataclass
class _CellStats:
    """Level-independent per-cell sums: everything a level needs except the variance rows."""

    Yc: np.ndarray          # (J, ncell) Σ c·w·y_j
    Xc: np.ndarray          # (J, ncell) Σ c·w·x_j
    sizes: dict             # quantity -> (n, Σ c·w, Σ c·w²) per cell of its sub-domain
    means: dict             # element -> (Σ c·w·v·a, Σ c·w·a) per cell of the direct item
    moments: tuple | None   # (g, G) from variance.cell_moments, or None (row path)
    constant: np.ndarray | None = None  # (J, ncell): variable j takes one state in the cell
    w_constant: np.ndarray | None = None  # (ncell,): one weight in the cell


def _cell_stats(design: Design, V: _Vars) -> _CellStats:
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
    return _CellStats(Yc, Xc, sizes, means, moments, constant, _constant_weight(design))


def _constant_weight(design: Design) -> np.ndarray:
    """Per cell: every row has the same weight (always true for volume or no weights)."""
    lo = np.full(design.ncell, np.inf)
    hi = np.full(design.ncell, -np.inf)
    np.minimum.at(lo, design.cell, design.w)
    np.maximum.at(hi, design.cell, design.w)
    return lo == hi


def _by_domain(values: np.ndarray, cell_dom: np.ndarray, ndom: int) -> np.ndarray:
    """Sum per-cell values (…, ncell) into domains (…, ndom); cells with cell_dom < 0 are dropped."""
    ok = cell_dom >= 0
    if values.ndim == 1:
        return np.bincount(cell_dom[ok], weights=values[ok], minlength=ndom)
    return np.vstack([np.bincount(cell_dom[ok], weights=v[ok], minlength=ndom) for v in values]) \
        if len(values) else np.zeros((0, ndom))


def _subdomain_sizes(design: Design, cell_dom, ndom, cell_sizes):
    """n, n_kish, cells, f of a sub-domain from its per-cell (n, Σ c·w, Σ c·w²)."""
    ncnt, sw_c, sw2_c = cell_sizes
    n = _by_domain(ncnt, cell_dom, ndom)
    sw = _by_domain(sw_c, cell_dom, ndom)
    sw2 = _by_domain(sw2_c, cell_dom, ndom)
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


def _estimate_level(design: Design, V: _Vars, stats: _CellStats, dom, ndom, cell_dom, alpha: dict,
                    opts: IndexOptions) -> dict:
    """All estimates for every domain of one level (arrays of length ndom).

    ``dom``: domain of each row (only read on the row path), ``cell_dom``:
    domain of each cell (-1 = none). Point estimates and sizes come from the
    per-cell sums in ``stats``.
    """
    J = len(V.ys)
    Y = _by_domain(stats.Yc, cell_dom, ndom)
    X = _by_domain(stats.Xc, cell_dom, ndom)
    with np.errstate(divide="ignore", invalid="ignore"):
        R = np.where(X > 0, Y / X, np.nan)
    avail = X > 0
    out: dict = {}
    n_all, kish_all, cells_all, f_all = _subdomain_sizes(design, cell_dom, ndom, stats.sizes["index"])
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
        n, kish, cells, f = _subdomain_sizes(design, cell_dom, ndom, stats.sizes[e])
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
        num = _by_domain(stats.means[e][0], cell_dom, ndom)
        den = _by_domain(stats.means[e][1], cell_dom, ndom)
        have = den > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            means += np.where(have, alpha.get(e, 0.0) * num / den, 0.0)
        wts += np.where(have, alpha.get(e, 0.0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["mean_score"] = np.where(wts > 0, means / wts, np.nan)
    return out


def _normalise_alpha(elements, weights: dict | None) -> dict:
    if not weights:
        return {e: 1.0 / len(elements) for e in elements}
    bad = [k for k, v in weights.items() if k not in elements or float(v) < 0]
    if bad or sum(float(weights.get(e, 0)) for e in elements) <= 0:
        raise InputError([Problem("options", None, "element_weights",
                                  f"element weights must be >= 0 over {list(elements)} with a positive sum")])
    s = sum(float(weights.get(e, 0)) for e in elements)
    return {e: float(weights.get(e, 0)) / s for e in elements}


def _distinct(codes: pd.Series) -> list:
    """Distinct values of a code column (categoricals: the used categories, no string hashing)."""
    if isinstance(codes.dtype, pd.CategoricalDtype):
        used = np.unique(codes.cat.codes.to_numpy())
        return list(np.asarray(codes.cat.categories, dtype=object)[used[used >= 0]])
    return list(pd.unique(codes.to_numpy(object)))


def _map_codes(codes: np.ndarray, mapping: dict) -> np.ndarray:
    """Replace codes through ``mapping`` (distinct values only)."""
    k, uniq = pd.factorize(codes)
    new = np.array([mapping.get(c, c) for c in uniq] + [""], dtype=object)
    return new[k]


def _domain_codes(codes, smap: dict) -> np.ndarray:
    """The unit whose domain a collecting unit's data belong to: itself, or its successor
    when ``--map-successors`` maps it (METHODOLOGY §6)."""
    codes = np.asarray(codes, dtype=object)
    return _map_codes(codes, smap) if smap and len(codes) else codes


def _looks_prepared(frame, source) -> bool:
    """The normalised columns a prepare_* function adds are there (attrs survive slicing)."""
    need = {"responses": {"count": "i", "excluded": "b", "under_18": "b"},
            "volumes": {"line": "i", "transactions": "f"}, "units": {"line": "i"}}[source]
    return all(c in frame.columns and frame[c].dtype.kind == k for c, k in need.items())


def _prepared(frame, fn, source, **kw):
    if frame is None:
        return None
    if frame.attrs.get("analysis_prepared") and _looks_prepared(frame, source):
        return frame
    out = fn(frame, source=source, **kw)
    out.attrs["analysis_prepared"] = True
    return out


# ----------------------------------------------------------------------------- main

def _validated_inputs(responses, volumes, units):
    """Prepared frames; unknown unit codes in responses or volumes are one InputError."""
    units_f = _prepared(units, prepare_units, "units")
    resp = _prepared(responses, lambda f, source: prepare_responses(f, source=source), "responses")
    vols = _prepared(volumes, prepare_volumes, "volumes")
    if units_f is not None:
        known = set(units_f["code"])
        counters = known - set(without_counters(units_f)["code"])
        problems = []
        for frame, src in ((resp, "responses"), (vols, "volumes")):
            if frame is None:
                continue
            try:
                check_known_units(frame["unit_code"], known, src, "unit_code")
            except InputError as exc:
                problems += exc.problems
            problems += _counter_codes(frame, counters, src)
        if problems:
            raise InputError(problems)
    return resp, vols, units_f


def _counter_codes(frame: pd.DataFrame, counters: set, source: str) -> list:
    """A problem per counter code used as a unit code (counters are not units of the index)."""
    if not counters:
        return []
    codes = frame["unit_code"].astype(object).to_numpy()
    bad = pd.Series(codes).isin(counters).to_numpy()
    lines = frame["line"].to_numpy() if "line" in frame.columns else np.arange(len(frame)) + 2
    return [Problem(source, int(lines[np.flatnonzero(codes == c)[0]]), "unit_code",
                    f"{c!r} is a counter (kind = counter) in the unit file, not a unit; use its unit's code")
            for c in sorted(set(codes[bad]))]


def _eligibility(resp: pd.DataFrame, period, opts: IndexOptions):
    """(eligible mask, counts, n_read, left_out by reason). Reasons are counted in the
    order outside the period, excluded, under 18 (a row counts once)."""
    count = resp["count"].to_numpy(np.int64)
    in_period = np.ones(len(resp), dtype=bool)
    if period is not None and "submitted_at" in resp.columns:
        ts = resp["submitted_at"]
        in_period = ((ts >= pd.Timestamp(period.start)) & (ts < pd.Timestamp(period.end))).to_numpy()
    excl = resp["excluded"].to_numpy(bool) & (not opts.include_excluded)
    minor = resp["under_18"].to_numpy(bool) & (not opts.include_under_18)
    left_out = {
        "outside_period": int(count[~in_period].sum()),
        "excluded": int(count[in_period & excl].sum()),
        "under_18": int(count[in_period & ~excl & minor].sum()),
    }
    eligible = in_period & ~excl & ~minor & (count > 0)
    return eligible, count, int(count.sum()), left_out


def _weights_mode(R: pd.DataFrame, opts: IndexOptions, lines) -> str:
    """The weights source actually used; ``column`` needs a weight on every eligible row."""
    mode = opts.weights_from
    if mode == "auto":
        mode = "column" if ("weight" in R.columns and R["weight"].notna().any()) else "volumes"
    if mode == "column" and ("weight" not in R.columns or R["weight"].isna().any()):
        bad = np.flatnonzero(R["weight"].isna().to_numpy()) if "weight" in R.columns else []
        raise InputError([Problem("responses", int(lines[i]), "weight", "weight is missing") for i in bad[:50]]
                         or [Problem("responses", 1, "weight", "weights_from=column needs a weight column")])
    return mode


def _prepare(responses, volumes, units, period, options) -> dict:
    """Validated inputs, eligibility, tree, cells and weights (everything before estimation)."""
    opts = options or IndexOptions()
    opts.validate()
    if isinstance(period, str):
        try:
            period = parse_period(period, calendar=opts.calendar)
        except ValueError as exc:
            raise InputError([Problem("period", None, None, str(exc))]) from None
    resp, vols, units_f = _validated_inputs(responses, volumes, units)
    alpha = _normalise_alpha(tuple(opts.elements), opts.element_weights)
    eligible, count, n_read, left_out = _eligibility(resp, period, opts)
    lines = np.flatnonzero(eligible) + 2
    R = resp.loc[eligible].reset_index(drop=True)
    cutoff = R["submitted_at"].max() if "submitted_at" in R.columns and len(R) else None

    # tree as of the date, successor mapping of responses and volumes
    as_of = opts.as_of or (period.last if period is not None else None)
    if isinstance(as_of, str):
        as_of = dt.date.fromisoformat(as_of)
    data_codes = set(_distinct(R["unit_code"]))
    if vols is not None:
        data_codes |= set(_distinct(vols["unit_code"]))
    tree = tree_as_of(units_f, as_of, extra_codes=data_codes if units_f is None else ())
    # successor mapping changes the domains only (METHODOLOGY §6): cells, weights and FPC
    # stay those of the collecting unit; the tree walks use domain codes (see _domain_codes)
    smap = successor_map(tree) if opts.map_successors and units_f is not None else {}

    # volumes, cells, weights
    vol = volumes_in_period(vols, period)
    mode = _weights_mode(R, opts, lines)
    R["unit_code"] = pd.Categorical(R["unit_code"])
    R["stratum"] = pd.Categorical(R["stratum"])
    units_arr = R["unit_code"].array
    rcount = R["count"].to_numpy(float)
    cell_id, cells = cells_for(units_arr, R["stratum"].array, rcount, vol, weights_from=mode, lines=lines)
    if mode == "column":
        w = R["weight"].to_numpy(float)
    else:
        w = cells["w"].to_numpy()[cell_id] if len(cells) else np.zeros(0)
    design = Design(cell=cell_id, w=w, count=rcount, cell_n=cells["n"].to_numpy(float),
                    cell_N=cells["N"].to_numpy(float), fpc=(mode == "volumes"))
    return dict(opts=opts, period=period, R=R, vol=vol, tree=tree, cells=cells, design=design, mode=mode,
                units_arr=units_arr, n_read=n_read, left_out=left_out, eligible=eligible, count=count,
                cutoff=cutoff, as_of=as_of, alpha=alpha, cell_id=cell_id, smap=smap)


def weighted_responses(responses: pd.DataFrame, volumes: pd.DataFrame | None = None,
                       units: pd.DataFrame | None = None, *, period: Period | str | None = None,
                       options: IndexOptions | None = None) -> tuple[pd.DataFrame, dict]:
    """The eligible responses of the period with their design: (frame, meta).

    Frame columns: the normalised response columns plus ``cell`` (cell id),
    ``cell_stratum``, ``weight`` (the design weight w), ``cell_N`` (the cell's
    design N for the FPC, NaN when unknown or without FPC), ``count`` and
    ``parent_code`` (the unit's parent as of the tree date). For drivers and
    other models that need response-level data with the same weights.
    """
    P = _prepare(responses, volumes, units, period, options)
    R = P["R"].copy()
    R["cell"] = P["cell_id"]
    R["cell_stratum"] = P["cells"]["stratum"].to_numpy()[P["cell_id"]] if len(P["cells"]) else ""
    R["weight"] = P["design"].w
    R["cell_N"] = (P["design"].cell_N[P["cell_id"]] if P["design"].fpc and len(P["cells"])
                   else np.full(len(R), np.nan))
    tree = P["tree"]
    ua = P["units_arr"]
    dom_cats = _domain_codes(np.asarray(ua.categories, dtype=object), P["smap"])
    if P["smap"]:
        # the collecting unit keeps the design (its cells); unit_code names the domain
        R["cell_unit"] = R["unit_code"]
        R["unit_code"] = pd.Categorical(dom_cats[ua.codes]) if len(ua) else R["unit_code"]
    ids = tree.ids(dom_cats)[ua.codes] if len(ua) else np.zeros(0, np.int64)
    par = tree.nodes["parent"].to_numpy()[np.maximum(ids, 0)]
    R["parent_code"] = np.where((ids >= 0) & (par >= 0), tree.nodes["code"].to_numpy()[np.maximum(par, 0)], "")
    meta = {"method_version": method_label(P["opts"].cap_n_eff), "n_read": P["n_read"],
            "n_used": int(P["count"][P["eligible"]].sum()),
            "n_left_out": P["left_out"], "weights_from_used": P["mode"],
            "period": None if P["period"] is None else P["period"].label}
    return R, meta


def _level_tables(design: Design, V: _Vars, tree: Tree, cells, vol, units_arr, alpha, opts,
                  smap: dict | None = None) -> pd.DataFrame:
    """Estimates for the unit level, every parent depth of the tree and the root.

    Unit rows: units with eligible responses or with volume in the period.
    Parent rows: nodes with children whose subtree holds such a unit (one
    domain pass per depth: every cell has one ancestor at a given depth).
    """
    smap = smap or {}
    ucodes, uniq = units_arr.codes, np.asarray(units_arr.categories, dtype=object)
    node_of_row = tree.ids(_domain_codes(uniq, smap))[ucodes] if len(units_arr) else np.zeros(0, np.int64)
    node_of_cell = tree.ids(_domain_codes(cells["unit_code"].to_numpy(object), smap))
    M = len(tree.nodes)
    data_node = np.zeros(M, bool)
    data_node[tree.ids(_domain_codes(vol["unit_code"].to_numpy(object), smap))] = True
    data_node[node_of_row] = True
    stats = _cell_stats(design, V)
    est = _estimate_level(design, V, stats, node_of_row, M, node_of_cell, alpha, opts)
    blocks = [_block(est, np.flatnonzero(data_node), UNIT_LEVEL, tree)]
    children = tree.has_children()
    depth_of = tree.nodes["depth"].to_numpy()
    for depth in range(tree.max_depth + 1):
        anc_data = tree.ancestor_at_depth(np.flatnonzero(data_node), depth)
        sub = np.zeros(M, bool)
        sub[anc_data[anc_data >= 0]] = True
        nodes = np.flatnonzero(sub & children & (depth_of == depth))
        if len(nodes) == 0:
            continue
        row_dom = tree.ancestor_at_depth(node_of_row, depth) if stats.moments is None else None
        cell_dom = tree.ancestor_at_depth(node_of_cell, depth)
        blocks.append(_block(_estimate_level(design, V, stats, row_dom, M, cell_dom, alpha, opts), nodes, None, tree))
    root_est = _estimate_level(design, V, stats, np.zeros(len(node_of_row), np.int64), 1,
                               np.zeros(len(node_of_cell), np.int64), alpha, opts)
    blocks.append(_block(root_est, np.array([0]), ROOT_LEVEL, tree))
    return pd.concat(blocks, ignore_index=True)


def _filter_level(table: pd.DataFrame, level: str | None) -> pd.DataFrame:
    """``unit``, ``parent`` (every level but unit and root) or ``root`` rows; all when None."""
    if level == UNIT_LEVEL:
        return table[table["level"] == UNIT_LEVEL]
    if level == "parent":
        return table[~table["level"].isin([UNIT_LEVEL, ROOT_LEVEL])]
    if level == ROOT_LEVEL:
        return table[table["level"] == ROOT_LEVEL]
    return table


def compute_index(responses: pd.DataFrame, volumes: pd.DataFrame | None = None,
                  units: pd.DataFrame | None = None, *, period: Period | str | None = None,
                  options: IndexOptions | None = None) -> IndexResult:
    """Indices, intervals, adequacy, targets and roll-up for one period.

    ``responses``: DESIGN response columns (or the app's aggregated rows with a
    ``count`` column); ``volumes``/``units``: DESIGN volume/unit frames or None;
    ``period``: a :class:`~analysis.periods.Period` or a label for
    :func:`~analysis.periods.parse_period`, None = all rows.
    Raises :class:`~analysis.errors.InputError` on invalid input.
    """
    P = _prepare(responses, volumes, units, period, options)
    opts, period, R, vol, tree, cells, design, mode = (P[k] for k in (
        "opts", "period", "R", "vol", "tree", "cells", "design", "mode"))
    units_arr, alpha = P["units_arr"], P["alpha"]
    n_read, left_out, eligible, count, cutoff, as_of = (P[k] for k in (
        "n_read", "left_out", "eligible", "count", "cutoff", "as_of"))
    V = _build_vars(R, tuple(opts.elements), opts.element_mode)

    table = _level_tables(design, V, tree, cells, vol, units_arr, alpha, opts, P["smap"])
    if opts.rollup == "mean_of_units":
        table = _mean_of_units(table, tree, V, opts)

    # -- population, adequacy, flags, targets
    table = _population_and_flags(table, tree, vol, cells, design, opts, P["smap"])
    year = period.year if period is not None else None
    table["target"] = resolve_targets(opts.target, year, table["kind"])
    table["target_status"] = target_status(table["index_ci_low"], table["index_ci_high"], table["target"])
    table["period"] = period.label if period is not None else ""
    table["method"] = method_label(opts.cap_n_eff)
    table["ci_method"] = opts.ci
    table["rollup"] = opts.rollup
    table["weights_from"] = mode
    table = _order_columns(_filter_level(table, opts.level_filter).reset_index(drop=True), V)
    meta = _meta(opts, period, mode, n_read, left_out, eligible, count, cutoff, as_of, V, alpha, cells)
    return IndexResult(table=table, meta=meta, cells=cells)


def tree_date(period: Period | None, options: IndexOptions | None = None) -> dt.date | None:
    """The date of the unit tree an index uses: ``options.as_of``, else the period's last day."""
    as_of = (options or IndexOptions()).as_of
    if isinstance(as_of, str):
        as_of = dt.date.fromisoformat(as_of)
    return as_of or (period.last if period is not None else None)


def compute_pair(responses: pd.DataFrame, volumes: pd.DataFrame | None = None,
                 units: pd.DataFrame | None = None, *, period: Period | str, previous: Period | str,
                 options: IndexOptions | None = None) -> tuple[IndexResult, IndexResult]:
    """The index of ``period`` and of ``previous``, for a trend.

    With ``map_successors`` both periods are put on the same tree, the later
    period's (METHODOLOGY §6), so a unit merged between them is compared with
    the units that were mapped into it. Without it, each period keeps its own
    tree ("as it was then").
    """
    opts = options or IndexOptions()
    if isinstance(period, str):
        period = parse_period(period, calendar=opts.calendar)
    if isinstance(previous, str):
        previous = parse_period(previous, calendar=opts.calendar)
    if opts.map_successors:
        later = period if previous.last <= period.last else previous
        opts = dataclasses.replace(opts, as_of=tree_date(later, opts))
    cur = compute_index(responses, volumes, units, period=period, options=opts)
    old = compute_index(responses, volumes, units, period=previous, options=opts)
    return cur, old


def _block(est: dict, nodes: np.ndarray, level: str | None, tree: Tree) -> pd.DataFrame:
    """Rows of ``nodes`` from the per-domain arrays ``est``."""
    data = {k: v[nodes] for k, v in est.items() if isinstance(v, np.ndarray)}
    frame = pd.DataFrame(data)
    frame["_missing_list"] = _missing_vectorised(est["_missing"], nodes)
    if level == ROOT_LEVEL:
        frame.insert(0, "unit_code", ROOT_CODE)
        frame.insert(1, "level", ROOT_LEVEL)
        for c in ("name_vi", "name_en", "parent_code"):
            frame[c] = ""
        frame["kind"] = ROOT_LEVEL
        frame["_node"] = -1
        return frame
    nd = tree.nodes.iloc[nodes]
    frame.insert(0, "unit_code", nd["code"].to_numpy())
    frame.insert(1, "level", UNIT_LEVEL if level == UNIT_LEVEL else nd["kind"].to_numpy())
    frame["name_vi"] = nd["name_vi"].to_numpy()
    frame["name_en"] = nd["name_en"].to_numpy()
    par = nd["parent"].to_numpy()
    frame["parent_code"] = np.where(par >= 0, tree.nodes["code"].to_numpy()[np.maximum(par, 0)], "")
    frame["kind"] = nd["kind"].to_numpy()
    frame["_node"] = nodes
    return frame


def _missing_vectorised(missing: dict, nodes) -> np.ndarray:
    """Sorted, semicolon-joined names of the elements missing at each of ``nodes``."""
    return _join_flags({e: np.asarray(m)[nodes] for e, m in missing.items()}, len(nodes))


def _mean_of_units(table: pd.DataFrame, tree: Tree, V: _Vars, opts: IndexOptions) -> pd.DataFrame:
    """Replace parent/root estimates by the plain mean of their direct members.

    Members of parent P: its own unit row (if any) and, for each child Q,
    Q's parent row when Q has one, else Q's unit row. Estimate = mean over
    members with a value; Var = Σ Var_w / U² with each member's working variance
    (:func:`_working_var`: its own, or the working SE² where it is reported 0). Bottom-up by depth, so a
    province is the mean of its districts' means.
    """
    if len(tree.nodes) == 0:
        return table  # no unit at all: the root row has nothing to average
    quantities = list(V.groups) + ([OVERALL] if V.overall is not None else [])
    t = table.copy()
    is_unit = t["level"] == UNIT_LEVEL
    is_root = t["level"] == ROOT_LEVEL
    is_parent = ~is_unit & ~is_root
    depth = tree.nodes["depth"].to_numpy()
    parent_of = tree.nodes["parent"].to_numpy()
    node = t["_node"].to_numpy()
    value_cols = {q: (f"{q}_rate", f"_{q}_var") for q in quantities}
    value_cols["index"] = ("index", "_index_var")

    def members_frame(member_mask, group):
        m = t.loc[member_mask]
        g = pd.DataFrame({"group": group[member_mask.to_numpy()]})
        for q, (vc, varc) in value_cols.items():
            v = m[vc].to_numpy(float)
            g[q + "_v"] = v
            g[q + "_var"] = np.where(np.isfinite(v), _working_var(m, q, varc, opts.level), np.nan)
        return g

    order = sorted(set(depth[node[is_parent.to_numpy()]]), reverse=True) if is_parent.any() else []
    has_parent_row = np.zeros(len(tree.nodes), bool)
    has_parent_row[node[is_parent.to_numpy()]] = True
    for d in order + ["root"]:
        if d == "root":
            # top-level members: parent row of depth-0 nodes, or unit rows of depth-0 nodes
            top = np.zeros(len(t), bool)
            nd = np.where(node >= 0, node, 0)
            top |= (is_parent.to_numpy() & (depth[nd] == 0))
            top |= (is_unit.to_numpy() & (depth[nd] == 0) & ~has_parent_row[nd])
            group = np.zeros(len(t), np.int64)
            targets = np.flatnonzero(is_root.to_numpy())
            tgt_key = np.zeros(len(targets), np.int64)
            mask = pd.Series(top, index=t.index)
        else:
            nd = np.where(node >= 0, node, 0)
            par = np.where(node >= 0, parent_of[nd], -1)
            child_parent_row = is_parent.to_numpy() & (depth[nd] == d + 1)
            child_unit_row = is_unit.to_numpy() & (depth[nd] == d + 1) & ~has_parent_row[nd]
            own_unit_row = is_unit.to_numpy() & (depth[nd] == d) & has_parent_row[nd]
            mem = child_parent_row | child_unit_row | own_unit_row
            group = np.where(own_unit_row, nd, par)
            targets = np.flatnonzero(is_parent.to_numpy() & (depth[nd] == d))
            tgt_key = node[targets]
            mask = pd.Series(mem, index=t.index)
        g = members_frame(mask, group)
        agg = g.groupby("group").agg(**{
            **{f"{q}_m": (f"{q}_v", "mean") for q in value_cols},
            **{f"{q}_U": (f"{q}_v", "count") for q in value_cols},
            **{f"{q}_s": (f"{q}_var", "sum") for q in value_cols},
        })
        agg = agg.reindex(tgt_key)
        for q, (vc, varc) in value_cols.items():
            U = agg[f"{q}_U"].to_numpy(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                val = np.where(U > 0, agg[f"{q}_m"].to_numpy(float), np.nan)
                var = np.where(U > 0, agg[f"{q}_s"].to_numpy(float) / (U * U), np.nan)
            t.loc[t.index[targets], vc] = val
            t.loc[t.index[targets], varc] = var
        # recompute intervals for these rows
        sel = t.index[targets]
        for q in quantities:
            p = t.loc[sel, f"{q}_rate"].to_numpy(float)
            se, lo, hi = ci.proportion_interval(
                p, t.loc[sel, f"_{q}_var"].to_numpy(float), t.loc[sel, f"{q}_n"].to_numpy(float),
                t.loc[sel, f"_{q}_df"].to_numpy(float), opts.ci, opts.level,
                t.loc[sel, f"_{q}_kish"].to_numpy(float), t.loc[sel, f"_{q}_f"].to_numpy(float), opts.cap_n_eff)
            t.loc[sel, f"{q}_se"], t.loc[sel, f"{q}_ci_low"], t.loc[sel, f"{q}_ci_high"] = se, lo, hi
        se, lo, hi = ci.index_interval(t.loc[sel, "index"].to_numpy(float), t.loc[sel, "_index_var"].to_numpy(float),
                                       t.loc[sel, "index_df"].to_numpy(float), opts.level,
                                       t.loc[sel, "n_kish"].to_numpy(float), t.loc[sel, "f"].to_numpy(float))
        t.loc[sel, "index_se"], t.loc[sel, "index_ci_low"], t.loc[sel, "index_ci_high"] = se, lo, hi
        masks = {e: ~np.isfinite(t.loc[sel, f"{e}_rate"].to_numpy(float)) for e in V.groups}
        t.loc[sel, "_missing_list"] = _missing_vectorised(masks, np.arange(len(sel)))
    return t


def _working_var(rows: pd.DataFrame, q: str, var_col: str, level: float) -> np.ndarray:
    """A member's variance for ``mean_of_units``: its own where its SE is positive, else the
    square of the working SE (METHODOLOGY §4): a child reported exact under the Var = 0 rule
    still carries the uncertainty of its published interval."""
    se_col = "index_se" if q == "index" else f"{q}_se"
    lo_col = "index_ci_low" if q == "index" else f"{q}_ci_low"
    hi_col = "index_ci_high" if q == "index" else f"{q}_ci_high"
    se = rows[se_col].to_numpy(float)
    sw = ci.working_se(se, rows[lo_col].to_numpy(float), rows[hi_col].to_numpy(float), level)
    return np.where(se > SE_ZERO, rows[var_col].to_numpy(float), sw * sw)


def _population_and_flags(table, tree: Tree, vol, cells, design: Design, opts: IndexOptions, smap=None):
    """N, response rate, required_n, adequacy and the flags column.

    A unit's N is the volume of the units whose domain it is (itself, plus the
    units mapped into it under ``--map-successors``); volume rows are matched
    to cells on the collecting unit.
    """
    M = max(len(tree.nodes), 1)  # an empty tree still has the root row
    depth = tree.nodes["depth"].to_numpy()
    # per-node (unit) recorded volume and flags
    vnode = tree.ids(_domain_codes(vol["unit_code"].to_numpy(object), smap or {}))
    N_unit = np.bincount(vnode, weights=vol["N"].to_numpy(float), minlength=M)
    has_vol = np.bincount(vnode, minlength=M) > 0
    prorated = np.bincount(vnode, weights=vol["prorated"].to_numpy(float), minlength=M) > 0
    cell_keys = set((cells["unit_code"] + SEP + cells["stratum"]).tolist()) if len(cells) else set()
    vkeys = (vol["unit_code"] + SEP + vol["stratum"]).to_numpy(object) if len(vol) else np.zeros(0, object)
    unused = ~pd.Series(vkeys).isin(cell_keys).to_numpy() if len(vol) else np.zeros(0, bool)
    strata_empty = np.bincount(vnode, weights=unused.astype(float), minlength=M) > 0
    cnode = tree.ids(_domain_codes(cells["unit_code"].to_numpy(object), smap or {}))
    over = np.bincount(cnode, weights=cells["over_population"].to_numpy(float), minlength=M) > 0

    def subtree(values):
        """Sum per-node values over each node's subtree (ancestor-or-self)."""
        out = np.zeros(M)
        if len(tree.nodes) == 0:
            return out
        ids = np.arange(M)
        for d in range(tree.max_depth + 1):
            anc = tree.ancestor_at_depth(ids, d)
            ok = anc >= 0
            agg = np.bincount(anc[ok], weights=values[ok].astype(float), minlength=M)
            sel = depth == d
            out[sel] = agg[sel]
        return out

    N_sub = subtree(N_unit)
    vol_sub = subtree(has_vol.astype(float)) > 0
    flag_sub = {name: subtree(arr.astype(float)) > 0
                for name, arr in (("prorated_volume", prorated), ("strata_without_responses", strata_empty),
                                  ("over_population", over))}
    level = table["level"].to_numpy(object)
    node = table["_node"].to_numpy()
    nd = np.maximum(node, 0)
    is_unit = level == UNIT_LEVEL
    is_root = level == ROOT_LEVEL
    N = np.where(is_unit, np.where(has_vol[nd], N_unit[nd], np.nan),
                 np.where(vol_sub[nd], N_sub[nd], np.nan))
    if has_vol.any():
        N = np.where(is_root, N_unit.sum(), N)
    else:
        N = np.where(is_root, np.nan, N)
    table["N"] = N
    n = table["n"].to_numpy(float)
    table["response_rate"] = adq.response_rate(n, N)
    req = adq.required_n(N, table["kind"].to_numpy(object), opts.adequacy, e=opts.margin,
                         level=opts.level, quotas=opts.quotas)
    table["required_n"] = req
    table["adequacy"] = adq.adequacy_status(N, n, req, opts.min_transactions)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["deff"] = np.where(table["n_kish"] > 0, n / table["n_kish"], np.nan)
    table["moe"] = (table["index_ci_high"] - table["index_ci_low"]) / 2.0
    flags = {}
    for name, per_node in flag_sub.items():
        unit_val = {"prorated_volume": prorated, "strata_without_responses": strata_empty,
                    "over_population": over}[name]
        root_val = bool(unit_val.any())
        flags[name] = np.where(is_root, root_val, np.where(is_unit, unit_val[nd], per_node[nd]))
    flags["low_n"] = table["n_kish"].to_numpy(float) < opts.low_n
    width = (table["index_ci_high"] - table["index_ci_low"]).to_numpy(float)
    flags["wide_ci"] = np.nan_to_num(width) > opts.wide_ci
    missing = table["_missing_list"].fillna("").to_numpy(object)
    for e in V_elements(table):
        flags[f"missing:{e}"] = ~np.isfinite(table[f"{e}_rate"].to_numpy(float))
    table["flags"] = _join_flags(flags, len(table))
    table["missing_elements"] = missing
    return table


def V_elements(table: pd.DataFrame) -> list[str]:
    """Elements present in the table (columns ``<e>_rate`` other than overall)."""
    return [c[:-5] for c in table.columns if c.endswith("_rate") and c not in ("overall_rate", "response_rate")]


def _join_flags(flags: dict, n: int) -> np.ndarray:
    """Semicolon-separated, sorted flag names per row (vectorised over rows)."""
    out = np.full(n, "", dtype=object)
    for name in sorted(flags):
        mask = np.asarray(flags[name], dtype=bool)
        out = np.where(mask, np.where(out == "", name, out + ";" + name), out)
    return out


def _order_columns(table: pd.DataFrame, V: _Vars) -> pd.DataFrame:
    table = table.copy()
    table["score_100"] = (table["mean_score"] - 1.0) / 4.0 * 100.0
    first = ["unit_code", "name_vi", "name_en", "kind", "level", "parent_code", "period", "n", "n_kish", "deff",
             "N", "response_rate", "overall_rate", "overall_se", "overall_ci_low", "overall_ci_high", "overall_n",
             "index", "index_se", "index_ci_low", "index_ci_high", "index_df", "moe", "mean_score", "score_100"]
    elem = [f"{e}_{s}" for e in V.groups for s in ("rate", "se", "ci_low", "ci_high", "n")]
    last = ["missing_elements", "required_n", "adequacy", "flags", "target", "target_status", "cells",
            "method", "ci_method", "rollup", "weights_from"]
    cols = first + elem + last
    for c in ("n", "overall_n", "cells") + tuple(f"{e}_n" for e in V.groups):
        if c in table.columns:
            table[c] = table[c].fillna(0).round().astype(np.int64)
    return table[[c for c in cols if c in table.columns]]


def _cap_note(opts: IndexOptions) -> str:
    """One sentence on the n_eff cap, for method notes."""
    if opts.ci == "logit":
        return "not applicable: logit intervals use the SE directly (never capped)"
    if opts.cap_n_eff:
        return "n_eff = min(p(1-p)/Var, n_kish/(1-f)) (METHODOLOGY §4, method version 2)"
    return "off: n_eff = p(1-p)/Var, the R-exact svyciprop interval"


def _meta(opts, period, mode, n_read, left_out, eligible, count, cutoff, as_of, V, alpha, cells) -> dict:
    params = asdict(opts)
    params["elements"] = list(opts.elements)
    if isinstance(params.get("target"), dict):
        params["target"] = {str(k): v for k, v in params["target"].items()}
    params["as_of"] = as_of.isoformat() if as_of else None
    params["weights_from_used"] = mode
    params["element_weights_normalised"] = alpha
    params["element_modes"] = V.modes
    return {
        "method_version": method_label(opts.cap_n_eff),
        "n_eff_cap": _cap_note(opts),
        "parameters": params,
        "period": None if period is None else {
            "label": period.label, "first": period.first.isoformat(), "last": period.last.isoformat(),
            "start_utc": period.start.isoformat(), "end_utc": period.end.isoformat(), "tz": period.tz},
        "n_read": n_read,
        "n_used": int(count[eligible].sum()),
        "n_left_out": left_out,
        "data_cutoff": None if cutoff is None or pd.isna(cutoff) else pd.Timestamp(cutoff).isoformat(),
        "cells": int(len(cells)),
        "over_population_cells": int(cells["over_population"].sum()) if len(cells) else 0,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
