"""Population, adequacy and the ``flags`` column of every row (METHODOLOGY §5).

:func:`population_and_flags` adds N (the recorded volume of the row's
units: a unit's own, plus those mapped into it; a parent's subtree; the
root's total), the response rate, required_n, adequacy, deff, moe,
``missing_elements`` and ``flags`` (semicolon-separated, sorted):
``over_population``, ``low_n``, ``wide_ci``, ``missing:<element>``,
``strata_without_responses``, ``prorated_volume``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import adequacy as adq
from .design import SurveyDesign
from .options import IndexOptions
from .schema import ROOT_LEVEL, UNIT_LEVEL
from .weights import SEP

__all__ = ["population_and_flags", "element_names", "join_flags"]


def population_and_flags(table: pd.DataFrame, design: SurveyDesign, opts: IndexOptions) -> pd.DataFrame:
    """N, response rate, required_n, adequacy and the flags column.

    A unit's N is the volume of the units whose domain it is (itself, plus the
    units mapped into it under ``--map-successors``); volume rows are matched
    to cells on the collecting unit.
    """
    tree, vol, cells = design.tree, design.volumes, design.cells
    M = max(len(tree.nodes), 1)  # an empty tree still has the root row
    depth = tree.nodes["depth"].to_numpy()
    # per-node (unit) recorded volume and flags
    vnode = design.volume_nodes()
    N_unit = np.bincount(vnode, weights=vol["N"].to_numpy(float), minlength=M)
    has_vol = np.bincount(vnode, minlength=M) > 0
    prorated = np.bincount(vnode, weights=vol["prorated"].to_numpy(float), minlength=M) > 0
    cell_keys = set((cells["unit_code"] + SEP + cells["stratum"]).tolist()) if len(cells) else set()
    vkeys = (vol["unit_code"] + SEP + vol["stratum"]).to_numpy(object) if len(vol) else np.zeros(0, object)
    unused = ~pd.Series(vkeys).isin(cell_keys).to_numpy() if len(vol) else np.zeros(0, bool)
    strata_empty = np.bincount(vnode, weights=unused.astype(float), minlength=M) > 0
    cnode = design.cell_nodes()
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
    missing = {e: ~np.isfinite(table[f"{e}_rate"].to_numpy(float)) for e in element_names(table)}
    for e, mask in missing.items():
        flags[f"missing:{e}"] = mask
    table["flags"] = join_flags(flags, len(table))
    table["missing_elements"] = join_flags(missing, len(table))
    return table


def element_names(table: pd.DataFrame) -> list[str]:
    """Elements present in the table (columns ``<e>_rate`` other than overall)."""
    return [c[:-5] for c in table.columns if c.endswith("_rate") and c not in ("overall_rate", "response_rate")]


def join_flags(flags: dict, n: int) -> np.ndarray:
    """Semicolon-separated, sorted flag names per row (vectorised over rows)."""
    out = np.full(n, "", dtype=object)
    for name in sorted(flags):
        mask = np.asarray(flags[name], dtype=bool)
        out = np.where(mask, np.where(out == "", name, out + ";" + name), out)
    return out
