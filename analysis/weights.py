"""Volumes, cells and weights (METHODOLOGY §3).

- :func:`volumes_in_period`: transactions per (unit, stratum) in a period,
  pro rata ``transactions × overlap days / row days`` for rows that overlap the
  period only in part (flag ``prorated``).
- :func:`assign_cells`: each eligible response's cell = (unit, stratum) when the
  volume table has that stratum for the unit, else the unit's ``_all`` cell; a
  unit with no volume at all is one ``_all`` cell with N unknown.
- :func:`cell_table`: n (eligible responses), recorded N, design N
  (``max(N, n)``: a cell with more responses than transactions is a census,
  flagged ``over_population``) and the weight ``w = N_design / n``.
- :func:`kish_n`: Kish's effective sample size ``(Σw)² / Σw²``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError, Problem
from .schema import ALL_STRATUM

__all__ = ["volumes_in_period", "assign_cells", "cell_table", "cells_for", "kish_n", "SEP"]

SEP = "\x1f"


def volumes_in_period(volumes: pd.DataFrame | None, period=None) -> pd.DataFrame:
    """Transactions per (unit_code, stratum) in ``period`` (all rows when None).

    Overlap of a row [start, end] (inclusive days) with the period's local days
    [first, last]: ``max(0, min(end, last) - max(start, first) + 1)`` days; the
    row contributes ``transactions * overlap / row_days`` (unrounded). Rows
    with no overlap are dropped. Columns: unit_code, stratum, N, prorated, rows.
    """
    cols = ["unit_code", "stratum", "N", "prorated", "rows"]
    if volumes is None or len(volumes) == 0:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(cols, [object, object, float, bool, np.int64])})
    v = volumes
    start = v["period_start"].to_numpy("datetime64[D]")
    end = v["period_end"].to_numpy("datetime64[D]")
    row_days = (end - start).astype(np.int64) + 1
    trans = v["transactions"].to_numpy(dtype=float)
    if period is None:
        overlap = row_days
    else:
        first = np.datetime64(period.first, "D")
        last = np.datetime64(period.last, "D")
        overlap = np.maximum(0, (np.minimum(end, last) - np.maximum(start, first)).astype(np.int64) + 1)
    keep = overlap > 0
    frame = pd.DataFrame({
        "unit_code": v["unit_code"].to_numpy()[keep],
        "stratum": v["stratum"].to_numpy()[keep],
        "N": trans[keep] * overlap[keep] / row_days[keep],
        "prorated": overlap[keep] < row_days[keep],
        "rows": 1,
    })
    out = frame.groupby(["unit_code", "stratum"], sort=True, as_index=False).agg(
        N=("N", "sum"), prorated=("prorated", "any"), rows=("rows", "sum"))
    return out[cols]


def _key(unit, stratum) -> np.ndarray:
    return (pd.Series(np.asarray(unit, dtype=object)).astype(str) + SEP
            + pd.Series(np.asarray(stratum, dtype=object)).astype(str)).to_numpy(object)


def _factorize(values):
    """(codes, uniques) of an array, Series or Categorical (categoricals are free)."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, pd.Categorical):
        return np.asarray(values.codes, dtype=np.int64), np.asarray(values.categories, dtype=object)
    codes, uniq = pd.factorize(np.asarray(values, dtype=object))
    return codes, np.asarray(uniq, dtype=object)


def _pairs(units: np.ndarray, strata: np.ndarray):
    """Distinct (unit, stratum) pairs: (pair id per row, unit per pair, stratum per pair).

    Hash-factorises the two columns and works on the few thousand pairs, never
    on a million joined strings.
    """
    uc, uu = _factorize(units)
    sc, su = _factorize(strata)
    combo = uc.astype(np.int64) * max(len(su), 1) + sc
    pid, pairs = pd.factorize(combo)
    pu = np.asarray(uu, dtype=object)[pairs // max(len(su), 1)]
    ps = np.asarray(su, dtype=object)[pairs % max(len(su), 1)]
    return pid.astype(np.int64), pu, ps


def assign_cells(units: np.ndarray, strata: np.ndarray, vol: pd.DataFrame, *,
                 weights_from: str = "volumes", source: str = "responses",
                 lines: np.ndarray | None = None, counts: np.ndarray | None = None) -> np.ndarray:
    """Cell stratum of each response (the unit is the response's own).

    ``stratum`` if (unit, stratum) has a volume row in the period, else
    ``_all``. A unit with volume but neither that stratum nor an ``_all`` row
    is an error naming unit and stratum, unless ``weights_from`` is not
    ``volumes`` (then the response keeps its own stratum as its cell).
    """
    pid, pu, ps = _pairs(units, strata)
    cell_ps = _assign_pairs(pu, ps, vol, weights_from, source, pid, lines)
    return cell_ps[pid]


def _assign_pairs(pu, ps, vol, weights_from, source, pid, lines):
    vol_keys = set(_key(vol["unit_code"], vol["stratum"]))
    vol_units = set(vol["unit_code"])
    has_cell = pd.Series(_key(pu, ps)).isin(vol_keys).to_numpy()
    has_all = pd.Series(_key(pu, np.full(len(pu), ALL_STRATUM, dtype=object))).isin(vol_keys).to_numpy()
    unit_has_vol = pd.Series(pu).isin(vol_units).to_numpy()
    out = np.where(has_cell, ps, ALL_STRATUM).astype(object)
    bad = unit_has_vol & ~has_cell & ~has_all
    if bad.any():
        if weights_from == "volumes":
            problems = []
            row_lines = lines if lines is not None else np.arange(len(pid)) + 2
            first_line = pd.Series(row_lines).groupby(pid).min()
            n_rows = pd.Series(np.ones(len(pid))).groupby(pid).sum()
            for k in np.flatnonzero(bad):
                problems.append(Problem(
                    source, int(first_line[k]), "stratum",
                    f"unit {pu[k]!r} has volumes in the period but none for stratum {ps[k]!r} and no "
                    f"'_all' row ({int(n_rows[k])} row(s)); add the volume or use --weights-from none"))
            raise InputError(problems)
        out[bad] = ps[bad]
    return out


def cells_for(units: np.ndarray, strata: np.ndarray, counts: np.ndarray, vol: pd.DataFrame, *,
              weights_from: str = "volumes", source: str = "responses",
              lines: np.ndarray | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """:func:`assign_cells` then :func:`cell_table` in one pass over distinct pairs."""
    pid, pu, ps = _pairs(units, strata)
    cell_ps = _assign_pairs(pu, ps, vol, weights_from, source, pid, lines)
    pair_cell, table = _cell_table_pairs(pu, cell_ps, np.bincount(pid, weights=counts, minlength=len(pu)), vol,
                                         use_volumes=(weights_from == "volumes"))
    return pair_cell[pid], table


def cell_table(units: np.ndarray, cell_strata: np.ndarray, counts: np.ndarray, vol: pd.DataFrame,
               *, use_volumes: bool = True) -> tuple[np.ndarray, pd.DataFrame]:
    """Cells of the eligible responses: (row -> cell id, table of cells).

    Table columns: unit_code, stratum, n (responses), N_recorded (NaN when the
    cell has no volume), N (design N = max(N_recorded, n), NaN unknown),
    over_population (n > N_recorded), w (N / n, or 1 when N is unknown or
    ``use_volumes`` is False). Only cells holding responses are listed.
    """
    pid, pu, ps = _pairs(units, cell_strata)
    pair_cell, table = _cell_table_pairs(pu, ps, np.bincount(pid, weights=counts, minlength=len(pu)), vol,
                                         use_volumes=use_volumes)
    return pair_cell[pid], table


def _cell_table_pairs(pu, cell_ps, pair_n, vol, use_volumes):
    """Cells from (unit, cell stratum) pairs with their response counts."""
    key = _key(pu, cell_ps)
    codes, inverse = np.unique(key, return_inverse=True)
    n = np.bincount(inverse, weights=pair_n, minlength=len(codes))
    first = np.zeros(len(codes), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(inverse))[::-1]
    table = pd.DataFrame({"unit_code": np.asarray(pu, dtype=object)[first],
                          "stratum": np.asarray(cell_ps, dtype=object)[first], "n": n})
    if use_volumes and len(vol):
        vmap = pd.Series(vol["N"].to_numpy(), index=_key(vol["unit_code"], vol["stratum"]))
        rec = vmap.reindex(codes).to_numpy(dtype=float)
    else:
        rec = np.full(len(codes), np.nan)
    table["N_recorded"] = rec
    over = ~np.isnan(rec) & (n > rec)
    table["over_population"] = over
    table["N"] = np.where(over, n, rec)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["w"] = np.where(np.isnan(rec), 1.0, table["N"].to_numpy() / np.where(n > 0, n, 1))
    return inverse.astype(np.int64), table


def kish_n(w: np.ndarray, counts: np.ndarray | None = None) -> float:
    """Kish's effective sample size ``(Σ c·w)² / Σ c·w²`` (c = row multiplicity)."""
    c = np.ones_like(w) if counts is None else counts
    s2 = float(np.sum(c * w * w))
    return float(np.sum(c * w)) ** 2 / s2 if s2 > 0 else 0.0
