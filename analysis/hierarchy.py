"""The effective-dated unit tree (METHODOLOGY §6 roll-up).

A unit CSV row is one *version* of a unit, valid from ``valid_from``
(inclusive) to ``valid_to`` (exclusive), blank = open. The tree *as of* a date
takes, for every code, the version valid on that date; a code with no version
valid then (retired, or not yet created) keeps its latest version, so data of
a former unit still rolls up "as it was then". With ``map_successors`` the data
of a retired unit follows ``successor_code`` transitively to a unit that is
valid on the date ("mapped to today's units").

All walks are vectorised by pointer jumping over integer ids (one pass per
tree level), never one Python step per unit.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import InputError, Problem
from .schema import COUNTER_KIND

__all__ = ["Tree", "tree_as_of", "successor_map", "flat_tree", "without_counters"]


@dataclass
class Tree:
    """Unit tree as of a date.

    ``nodes``: DataFrame indexed 0..M-1 with code, name_vi, name_en, kind,
    parent (int id or -1), successor_code, active (valid on the date), depth
    (0 = top). ``up``: matrix (max_depth+1, M), ``up[k]`` = k-th ancestor id
    (``up[0]`` = self), -1 past the top. ``index``: code -> id.
    """

    nodes: pd.DataFrame
    up: np.ndarray
    index: dict
    as_of: dt.date | None

    @property
    def max_depth(self) -> int:
        return int(self.nodes["depth"].max()) if len(self.nodes) else 0

    def ids(self, codes) -> np.ndarray:
        """Integer ids of ``codes`` (-1 for unknown)."""
        return pd.Series(np.asarray(codes, dtype=object)).map(self.index).fillna(-1).to_numpy(np.int64)

    def ancestor_at_depth(self, ids: np.ndarray, depth: int) -> np.ndarray:
        """Ancestor-or-self of each id at ``depth`` (-1 when the id is shallower)."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.full(len(ids), -1, dtype=np.int64)
        ok = ids >= 0
        d = np.where(ok, self.nodes["depth"].to_numpy()[np.where(ok, ids, 0)], -1)
        steps = d - depth
        sel = ok & (steps >= 0)
        out[sel] = self.up[steps[sel], ids[sel]]
        return out

    def has_children(self) -> np.ndarray:
        """Boolean per id: some node has it as parent."""
        par = self.nodes["parent"].to_numpy()
        flag = np.zeros(len(self.nodes), dtype=bool)
        flag[par[par >= 0]] = True
        return flag


def _pick_versions(units: pd.DataFrame, as_of: dt.date | None) -> pd.DataFrame:
    """One row per code: the version valid on ``as_of``, else the latest one."""
    u = units.copy()
    vf = u["valid_from"].fillna(pd.Timestamp("1900-01-01"))
    vt = u["valid_to"].fillna(pd.Timestamp("2262-01-01"))
    if as_of is None:
        active = u["valid_to"].isna()
    else:
        ts = pd.Timestamp(as_of)
        active = (vf <= ts) & (ts < vt)
    u["active"] = active.to_numpy()
    u["_vf"] = vf.to_numpy()
    u = u.sort_values(["code", "active", "_vf"], ascending=[True, False, False], kind="stable")
    return u.drop_duplicates("code", keep="first").drop(columns=["_vf"]).reset_index(drop=True)


def tree_as_of(units: pd.DataFrame | None, as_of: dt.date | None, extra_codes=(),
               source: str = "units") -> Tree:
    """Build the tree as of ``as_of`` from a validated unit frame.

    ``extra_codes`` (codes met in the data but absent from ``units``, possible
    only when no unit file is given) become top-level nodes of kind ``unit``.
    Counter rows (kind ``counter``: service points, not units of the index)
    are left out. A parent cycle is an :class:`InputError`.
    """
    if units is not None and len(units):
        units = without_counters(units)
    if units is None or len(units) == 0:
        nodes = pd.DataFrame({"code": pd.Series(sorted(set(extra_codes)), dtype=object)})
        for c in ("name_vi", "name_en", "successor_code"):
            nodes[c] = ""
        nodes["kind"] = "unit"
        nodes["parent_code"] = ""
        nodes["active"] = True
    else:
        nodes = _pick_versions(units, as_of)
        extra = sorted(set(extra_codes) - set(nodes["code"]))
        if extra:
            add = pd.DataFrame({"code": extra, "name_vi": "", "name_en": "", "kind": "unit",
                                "parent_code": "", "successor_code": "", "active": True})
            nodes = pd.concat([nodes, add], ignore_index=True)
    nodes = nodes.reset_index(drop=True)
    index = {c: i for i, c in enumerate(nodes["code"])}
    parent = nodes["parent_code"].map(index).fillna(-1).to_numpy(np.int64)
    nodes["parent"] = parent
    m = len(nodes)
    up = [np.arange(m, dtype=np.int64)]
    cur = up[0]
    for _ in range(m + 1):
        nxt = np.where(cur >= 0, parent[np.where(cur >= 0, cur, 0)], -1)
        if not (nxt >= 0).any():
            break
        up.append(nxt)
        cur = nxt
    else:
        bad = nodes["code"][cur >= 0].tolist()[:5]
        raise InputError([Problem(source, None, "parent_code", f"the parent links form a cycle (units {bad})")])
    up_arr = np.vstack(up)
    nodes["depth"] = (up_arr[1:] >= 0).sum(axis=0) if len(up) > 1 else 0
    return Tree(nodes=nodes, up=up_arr, index=index, as_of=as_of)


def without_counters(units: pd.DataFrame) -> pd.DataFrame:
    """The unit rows that are units of the index (rows of kind ``counter`` dropped)."""
    if "kind" not in units.columns:
        return units
    keep = units["kind"].astype(str).str.strip() != COUNTER_KIND
    return units if keep.all() else units.loc[keep]


def successor_map(tree: Tree, source: str = "units") -> dict:
    """Code -> code it maps to: inactive units follow successor_code transitively.

    The walk stops at the first active unit, or at a unit without successor;
    a successor cycle is an :class:`InputError`. Only changed codes are listed.
    """
    nodes = tree.nodes
    succ = nodes["successor_code"].map(tree.index).fillna(-1).to_numpy(np.int64)
    active = nodes["active"].to_numpy(bool)
    step = np.where(~active & (succ >= 0), succ, np.arange(len(nodes)))
    cur = np.arange(len(nodes))
    for _ in range(len(nodes) + 1):
        nxt = step[cur]
        if np.array_equal(nxt, cur):
            break
        cur = nxt
    else:
        raise InputError([Problem(source, None, "successor_code", "successor links form a cycle")])
    codes = nodes["code"].to_numpy()
    changed = cur != np.arange(len(nodes))
    return dict(zip(codes[changed], codes[cur[changed]]))


def flat_tree(codes) -> Tree:
    """A tree with every code a top-level unit (no unit file)."""
    return tree_as_of(None, None, extra_codes=codes)
