"""Trend: change of an estimate against the previous period.

METHODOLOGY.md section 6: change against the previous period with its SE and a
flag when significant.

Method
------
* ``change = current - previous``.
* ``change_se = sqrt(sw_current^2 + sw_previous^2)`` with ``sw`` each period's
  **working SE** (METHODOLOGY 4, :func:`analysis.intervals.working_se`): the SE
  where it is above 1e-9, else the SE of a normal interval as wide as the
  published one, so a period whose SE is reported 0 under the Var = 0 rule
  (10 of 10 satisfied, say) is not taken as exact.  The two periods are
  treated as independent samples (different respondents, weights computed
  per period), so the covariance term is 0; if the periods overlap (rolling
  windows) the SE is overstated and the test conservative.
* ``z = change / change_se``, two-sided p-value from the standard normal,
  ``change_ci = change -/+ z_{(1+level)/2} * change_se``,
  ``significant = p_value < 1 - level`` (equivalently |z| > z_crit).
* ``direction``: ``up`` / ``down`` when significant, ``flat`` when not;
  ``new`` when the unit has an estimate only in the current period, ``gone``
  when only in the previous one (change NaN, significant False),
  ``no_data`` when it has an estimate in neither.
* A working SE is 0 only for a census (f = 1: the figure is the population
  value): a change between two census figures is exact (``change_se`` 0,
  ``trend_flag = "census"``; significant when the change is not 0).  When a
  period's uncertainty is unknown (SE reported 0 and no interval given) no
  test is made: z and p-value NaN, significant False, direction ``flat``,
  ``trend_flag = "unknown_se"``.

Pure function; imports only numpy, pandas and scipy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .intervals import working_se
from .ranking import interval_columns, numeric_column
from .schema import DEFAULT_LEVEL

__all__ = ["trend"]


def trend(
    current: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    key: str | Sequence[str] = "unit_code",
    estimate: str = "index",
    se: str = "index_se",
    low: str | None = None,
    high: str | None = None,
    ci_level: float = DEFAULT_LEVEL,
    level: float = 0.95,
    carry: Sequence[str] = ("level", "parent_code"),
) -> pd.DataFrame:
    """Compare ``estimate`` between two periods, unit by unit.

    Parameters
    ----------
    current, previous:
        Tables with one row per ``key`` (e.g. two index tables).
    key:
        Column name(s) identifying a unit in both tables.
    estimate, se:
        Estimate and standard error columns (same names in both tables).
    low, high, ci_level:
        The published interval of the estimate and its level (default
        ``<se without _se>_ci_low`` / ``_ci_high``, e.g. ``index_ci_low``, at
        95%): the working SE of a period whose SE is reported 0 comes from it.
    level:
        Confidence level of ``change_ci_low/high`` and of ``significant``.
    carry:
        Descriptive columns copied to the output when present (taken from the
        current table, else from the previous one).

    Returns
    -------
    One row per unit present in either table (outer join, sorted by key):
    the key column(s), carried columns, ``<estimate>_current``,
    ``<estimate>_previous``, ``<se>_current``, ``<se>_previous``
    (plus ``n_current`` / ``n_previous`` and ``period_current`` /
    ``period_previous`` when the tables have ``n`` / ``period``), ``change``,
    ``change_se``, ``z``, ``p_value``, ``change_ci_low``, ``change_ci_high``,
    ``significant`` (bool), ``direction`` (up/down/flat/new/gone/no_data),
    ``trend_flag`` (``census``, ``unknown_se`` or empty) and ``trend_method``; the parameters
    are also in ``attrs["trend"]``.
    """
    keys = [key] if isinstance(key, str) else list(key)
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    for name, t in (("current", current), ("previous", previous)):
        miss = [c for c in [*keys, estimate, se] if c not in t.columns]
        if miss:
            raise KeyError(f"{name} table lacks columns {miss}")
        if t.duplicated(keys).any():
            raise ValueError(f"{name} table has duplicate keys {keys}")

    low, high = interval_columns(se, low, high)

    def part(t: pd.DataFrame, suffix: str) -> pd.DataFrame:
        t = t.assign(_sw=working_se(*(numeric_column(t, c) for c in (se, low, high)), ci_level))
        cols = {estimate: f"{estimate}_{suffix}", se: f"{se}_{suffix}", "_sw": f"_sw_{suffix}"}
        for extra in ("n", "period"):
            if extra in t.columns and extra not in keys:
                cols[extra] = f"{extra}_{suffix}"
        for c in carry:
            if c in t.columns and c not in keys:
                cols[c] = f"_carry_{c}_{suffix}"
        sub = t[keys + list(cols)].rename(columns=cols).copy()
        sub[f"_in_{suffix}"] = True
        return sub

    cur = part(current, "current")
    prev = part(previous, "previous")
    for k in keys:  # join codes read as int in one file and str in the other
        if cur[k].dtype != prev[k].dtype:
            cur[k] = cur[k].astype(str)
            prev[k] = prev[k].astype(str)
    out = cur.merge(prev, on=keys, how="outer", sort=True)

    carried = []
    for c in carry:
        a, b = f"_carry_{c}_current", f"_carry_{c}_previous"
        if a in out.columns or b in out.columns:
            va = out[a] if a in out.columns else pd.Series(np.nan, index=out.index)
            vb = out[b] if b in out.columns else pd.Series(np.nan, index=out.index)
            out[c] = va.where(va.notna(), vb)
            out = out.drop(columns=[x for x in (a, b) if x in out.columns])
            carried.append(c)

    e_c = pd.to_numeric(out[f"{estimate}_current"], errors="coerce").to_numpy(float)
    e_p = pd.to_numeric(out[f"{estimate}_previous"], errors="coerce").to_numpy(float)
    s_c = pd.to_numeric(out["_sw_current"], errors="coerce").to_numpy(float)
    s_p = pd.to_numeric(out["_sw_previous"], errors="coerce").to_numpy(float)

    both = np.isfinite(e_c) & np.isfinite(e_p)
    change = np.where(both, e_c - e_p, np.nan)
    change_se = np.where(both, np.sqrt(s_c**2 + s_p**2), np.nan)
    testable = both & np.isfinite(change_se) & (change_se > 0)
    census = both & (change_se == 0)
    unknown = both & ~np.isfinite(change_se)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(testable, change / change_se, np.nan)
    p_value = np.where(testable, 2.0 * stats.norm.sf(np.abs(z)), np.nan)
    # Two census figures: the change is exact.
    z = np.where(census, np.where(change > 0, np.inf, np.where(change < 0, -np.inf, 0.0)), z)
    p_value = np.where(census, np.where(change == 0, 1.0, 0.0), p_value)
    testable = testable | census
    zcrit = stats.norm.ppf(0.5 + level / 2.0)
    ci_low = change - zcrit * change_se
    ci_high = change + zcrit * change_se
    significant = testable & (p_value < 1.0 - level)

    direction = np.full(len(out), "no_data", dtype=object)
    direction[both] = "flat"
    direction[significant & (change > 0)] = "up"
    direction[significant & (change < 0)] = "down"
    direction[np.isfinite(e_c) & ~np.isfinite(e_p)] = "new"
    direction[~np.isfinite(e_c) & np.isfinite(e_p)] = "gone"

    out["change"] = change
    out["change_se"] = change_se
    out["z"] = z
    out["p_value"] = p_value
    out["change_ci_low"] = ci_low
    out["change_ci_high"] = ci_high
    out["significant"] = significant.astype(bool)
    out["direction"] = direction
    out["trend_flag"] = np.where(census, "census", np.where(unknown, "unknown_se", ""))
    out["trend_method"] = (
        f"difference(independent samples: se=sqrt(sw_c^2+sw_p^2), sw = working SE from {se} and "
        f"[{low}, {high}] at {ci_level}; two-sided z test; level={level})"
    )
    out = out.drop(columns=["_in_current", "_in_previous", "_sw_current", "_sw_previous"])
    front = keys + carried
    out = out[front + [c for c in out.columns if c not in front]]
    out.attrs["trend"] = {
        "method": "difference_z_test",
        "variance": "independent samples, working SE (METHODOLOGY 4)",
        "low": low,
        "high": high,
        "ci_level": ci_level,
        "estimate": estimate,
        "se": se,
        "key": keys,
        "level": level,
    }
    return out.reset_index(drop=True)
