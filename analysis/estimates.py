"""The tidy long table of estimates, and the wide index table as its pivot.

One row per (domain, quantity): ``domain`` (``<level>:<unit_code>``, e.g.
``unit:X1``, ``district:H``, ``root:_root``), ``unit_code``, ``level``,
``quantity`` (``index``, ``overall`` or an element), ``estimate``, ``se``,
``ci_low``, ``ci_high``, ``n`` (responses in the quantity's domain), ``df``
(design df). The engine carries three more columns for roll-up and
intervals (``var``, ``n_kish``, ``f``); :func:`tidy` drops them.

The wide table (``IndexResult.table``) names these values
``index``/``index_se``/... and ``<q>_rate``/``<q>_se``/``<q>_ci_low``/
``<q>_ci_high``/``<q>_n``; :func:`pivot` builds its columns from the long
table, :func:`WIDE_NAMES` says which is which.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import OVERALL

__all__ = ["ESTIMATE_COLUMNS", "INDEX", "wide_names", "from_level", "pivot", "tidy"]

#: The columns of the tidy estimates table.
ESTIMATE_COLUMNS = ["domain", "unit_code", "level", "quantity", "estimate", "se", "ci_low", "ci_high", "n", "df"]
#: The quantity name of the satisfaction index.
INDEX = "index"
_VALUES = ("estimate", "se", "ci_low", "ci_high", "n", "df", "var", "n_kish", "f")


def wide_names(quantity: str) -> dict:
    """Long value name -> wide column name for ``quantity``.

    The index's n, n_kish and f are the domain's own (all its eligible
    responses): ``n``, ``n_kish``, ``f``; its df is ``index_df``. Leading
    underscores mark working columns the published table leaves out.
    """
    if quantity == INDEX:
        return {"estimate": "index", "se": "index_se", "ci_low": "index_ci_low", "ci_high": "index_ci_high",
                "n": "n", "df": "index_df", "var": "_index_var", "n_kish": "n_kish", "f": "f"}
    q = quantity
    return {"estimate": f"{q}_rate", "se": f"{q}_se", "ci_low": f"{q}_ci_low", "ci_high": f"{q}_ci_high",
            "n": f"{q}_n", "df": f"_{q}_df", "var": f"_{q}_var", "n_kish": f"_{q}_kish", "f": f"_{q}_f"}


def from_level(est: dict, nodes: np.ndarray, dom0: int, quantities) -> pd.DataFrame:
    """Long rows of one level's estimates (arrays per domain in ``est``) for ``nodes``.

    ``dom0``: the id of the first of these domains in the run's domain table.
    Quantities whose arrays ``est`` lacks (no overall item) get NaN values.
    """
    k = len(nodes)
    parts = []
    for q in quantities:
        names = wide_names(q)
        data = {"dom": np.arange(dom0, dom0 + k), "quantity": np.full(k, q, dtype=object)}
        for v in _VALUES:
            arr = est.get(names[v])
            data[v] = np.asarray(arr, dtype=float)[nodes] if arr is not None else np.full(k, np.nan)
        parts.append(pd.DataFrame(data))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["dom", "quantity", *_VALUES])


def pivot(long: pd.DataFrame, domains: pd.DataFrame) -> pd.DataFrame:
    """The wide table: ``domains`` (one row per domain, in order) with each quantity's values as columns."""
    wide = domains.copy()
    ndom = len(domains)
    for q, g in long.groupby("quantity", sort=False):
        dom = g["dom"].to_numpy()
        for v, col in wide_names(q).items():
            out = np.full(ndom, np.nan)
            out[dom] = g[v].to_numpy(float)
            wide[col] = out
    return wide


def tidy(long: pd.DataFrame, domains: pd.DataFrame, keep=None) -> pd.DataFrame:
    """The published long table (:data:`ESTIMATE_COLUMNS`), rows of the domains in ``keep`` (all if None).

    Quantities in order: index, overall, then the elements; ``n`` is an integer.
    """
    d = domains.iloc[long["dom"].to_numpy()]
    out = pd.DataFrame({
        "domain": (d["level"].astype(str) + ":" + d["unit_code"].astype(str)).to_numpy(),
        "unit_code": d["unit_code"].to_numpy(), "level": d["level"].to_numpy(),
        "quantity": long["quantity"].to_numpy(),
    })
    for v in ("estimate", "se", "ci_low", "ci_high", "n", "df"):
        out[v] = long[v].to_numpy(float)
    out["n"] = np.nan_to_num(out["n"]).round().astype(np.int64)
    out["_dom"] = long["dom"].to_numpy()
    if keep is not None:
        out = out[pd.Series(out["_dom"]).isin(set(keep)).to_numpy()]
    qs = list(dict.fromkeys([INDEX, OVERALL, *long["quantity"]]))
    out["_q"] = out["quantity"].map({q: i for i, q in enumerate(qs)})
    out = out.sort_values(["_dom", "_q"], kind="stable").drop(columns=["_dom", "_q"])
    return out[ESTIMATE_COLUMNS].reset_index(drop=True)
