"""Roll-up over the unit tree: the domains of every level, pooled or mean of units (METHODOLOGY §6).

:func:`level_estimates` estimates every domain of the tree from one design:
the units (collecting units' data in their domain unit), every parent depth
and the root (``pooled``: a parent is a domain of the weighted design, so
units count by transaction volume). :func:`mean_of_units` then replaces the
parents' and the root's estimates by the plain mean of their direct members,
Var = Σ Var_w / U², where Var_w is each member's working variance
(METHODOLOGY §4: a member reported exact under the Var = 0 rule still carries
the uncertainty of its published interval).

Both work on the long estimates table (:mod:`analysis.estimates`) and a
domain table: one row per domain (``_dom`` its id) with ``unit_code``,
``level``, names, ``kind``, ``parent_code``, ``_node`` (tree node, -1 for the
root), ``cells`` and ``mean_score``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import estimates as est_table
from . import intervals as ci
from .design import SurveyDesign
from .estimation import RatioVars, cell_stats, estimate_level
from .hierarchy import Tree
from .options import IndexOptions
from .schema import OVERALL, ROOT_CODE, ROOT_LEVEL, SE_ZERO, UNIT_LEVEL

__all__ = ["level_estimates", "mean_of_units", "quantities", "working_var"]

_DOMAIN_VALUES = ("cells", "mean_score")


def quantities(V: RatioVars) -> list[str]:
    """Every quantity of a run, in table order: the index, the elements, the overall item."""
    return [est_table.INDEX, *V.groups, OVERALL]


def level_estimates(design: SurveyDesign, V: RatioVars, alpha: dict,
                    opts: IndexOptions) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(domains, long estimates) for the unit level, every parent depth of the tree and the root.

    Unit rows: units with eligible responses or with volume in the period.
    Parent rows: nodes with children whose subtree holds such a unit (one
    domain pass per depth: every cell has one ancestor at a given depth).
    """
    tree, rows = design.tree, design.rows
    node_of_row = design.row_nodes()
    node_of_cell = design.cell_nodes()
    M = len(tree.nodes)
    data_node = np.zeros(M, bool)
    data_node[design.volume_nodes()] = True
    data_node[node_of_row] = True
    stats = cell_stats(rows, V)
    qs = quantities(V)
    domains, longs = [], []

    def add(est, nodes, level):
        d0 = sum(len(d) for d in domains)
        domains.append(_domain_rows(est, nodes, level, tree))
        longs.append(est_table.from_level(est, nodes, d0, qs))

    add(estimate_level(rows, V, stats, node_of_row, M, node_of_cell, alpha, opts), np.flatnonzero(data_node),
        UNIT_LEVEL)
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
        add(estimate_level(rows, V, stats, row_dom, M, cell_dom, alpha, opts), nodes, None)
    root = estimate_level(rows, V, stats, np.zeros(len(node_of_row), np.int64), 1,
                          np.zeros(len(node_of_cell), np.int64), alpha, opts)
    add(root, np.array([0]), ROOT_LEVEL)
    dom = pd.concat(domains, ignore_index=True)
    dom["_dom"] = np.arange(len(dom))
    return dom, pd.concat(longs, ignore_index=True)


def _domain_rows(est: dict, nodes: np.ndarray, level: str | None, tree: Tree) -> pd.DataFrame:
    """Identity and domain-level values (cells, mean score) of ``nodes`` at one level."""
    frame = pd.DataFrame({k: np.asarray(est[k])[nodes] for k in _DOMAIN_VALUES})
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


def working_var(se, var, ci_low, ci_high, level: float) -> np.ndarray:
    """A member's variance for ``mean_of_units``: its own where its SE is positive, else the
    square of the working SE (:func:`analysis.intervals.working_se`)."""
    se = np.asarray(se, dtype=float)
    sw = ci.working_se(se, ci_low, ci_high, level)
    return np.where(se > SE_ZERO, np.asarray(var, dtype=float), sw * sw)


def mean_of_units(long: pd.DataFrame, domains: pd.DataFrame, tree: Tree, V: RatioVars,
                  opts: IndexOptions) -> pd.DataFrame:
    """Replace parent/root estimates by the plain mean of their direct members (a new long table).

    Members of parent P: its own unit row (if any) and, for each child Q,
    Q's parent row when Q has one, else Q's unit row. Estimate = mean over
    members with a value; Var = Σ Var_w / U² (:func:`working_var`). Bottom-up
    by depth, so a province is the mean of its districts' means; the
    intervals are recomputed on each parent's own df, n_kish and f.
    """
    if len(tree.nodes) == 0:
        return long  # no unit at all: the root row has nothing to average
    qs = [est_table.INDEX, *V.groups] + ([OVERALL] if V.overall is not None else [])
    long = long.copy()
    level = domains["level"].to_numpy(object)
    node = domains["_node"].to_numpy()
    is_unit = level == UNIT_LEVEL
    is_root = level == ROOT_LEVEL
    is_parent = ~is_unit & ~is_root
    depth = tree.nodes["depth"].to_numpy()
    parent_of = tree.nodes["parent"].to_numpy()
    nd = np.where(node >= 0, node, 0)
    has_parent_row = np.zeros(len(tree.nodes), bool)
    has_parent_row[node[is_parent]] = True
    ldom = long["dom"].to_numpy()
    lq = long["quantity"].to_numpy(object)
    in_q = pd.Series(lq).isin(qs).to_numpy()
    order = sorted(set(depth[node[is_parent]]), reverse=True) if is_parent.any() else []
    for d in order + [None]:
        if d is None:  # the root: parent rows of depth-0 nodes, or unit rows of depth-0 nodes
            mem = (is_parent & (depth[nd] == 0)) | (is_unit & (depth[nd] == 0) & ~has_parent_row[nd])
            group = np.zeros(len(domains), np.int64)
            targets = is_root
            key = np.zeros(len(domains), np.int64)
        else:
            par = np.where(node >= 0, parent_of[nd], -1)
            own_unit_row = is_unit & (depth[nd] == d) & has_parent_row[nd]
            mem = ((is_parent & (depth[nd] == d + 1)) | (is_unit & (depth[nd] == d + 1) & ~has_parent_row[nd])
                   | own_unit_row)
            group = np.where(own_unit_row, nd, par)
            targets = is_parent & (depth[nd] == d)
            key = node
        m = np.flatnonzero(in_q & mem[ldom])
        v = long["estimate"].to_numpy(float)[m]
        vw = working_var(long["se"].to_numpy(float)[m], long["var"].to_numpy(float)[m],
                         long["ci_low"].to_numpy(float)[m], long["ci_high"].to_numpy(float)[m], opts.level)
        g = pd.DataFrame({"group": group[ldom[m]], "v": v, "w": np.where(np.isfinite(v), vw, np.nan)})
        mq = lq[m]
        t = np.flatnonzero(in_q & targets[ldom])
        for q in qs:  # one groupby per quantity (the summation order of pandas' single-key groupby)
            tq = t[lq[t] == q]
            agg = g[mq == q].groupby("group").agg(mean=("v", "mean"), U=("v", "count"), s=("w", "sum"))
            a = agg.reindex(key[ldom[tq]])
            U = np.nan_to_num(a["U"].to_numpy(float))
            with np.errstate(divide="ignore", invalid="ignore"):
                long.loc[tq, "estimate"] = np.where(U > 0, a["mean"].to_numpy(float), np.nan)
                long.loc[tq, "var"] = np.where(U > 0, a["s"].to_numpy(float) / (U * U), np.nan)
        _recompute_intervals(long, t, lq[t] == est_table.INDEX, opts)
    return long


def _recompute_intervals(long: pd.DataFrame, rows: np.ndarray, is_index: np.ndarray, opts: IndexOptions) -> None:
    """Intervals of ``rows`` from their estimate and variance (rates: ``opts.ci``; the index: logit)."""
    col = {c: long[c].to_numpy(float) for c in ("estimate", "var", "n", "df", "n_kish", "f")}
    r, i = rows[~is_index], rows[is_index]
    se, lo, hi = ci.proportion_interval(col["estimate"][r], col["var"][r], col["n"][r], col["df"][r], opts.ci,
                                        opts.level, col["n_kish"][r], col["f"][r], opts.cap_n_eff)
    long.loc[r, "se"], long.loc[r, "ci_low"], long.loc[r, "ci_high"] = se, lo, hi
    se, lo, hi = ci.index_interval(col["estimate"][i], col["var"][i], col["df"][i], opts.level,
                                   col["n_kish"][i], col["f"][i])
    long.loc[i, "se"], long.loc[i, "ci_low"], long.loc[i, "ci_high"] = se, lo, hi
