"""Confidence intervals for proportions from a design variance (METHODOLOGY §4).

All functions take NumPy arrays (one value per domain) and are vectorised.
``df`` is the design degrees of freedom, already floored at 1 by the caller
(:func:`design_df`); ``tq`` = t quantile ``t_{1-α/2, df}``.

- ``wilson``: Wilson score interval with ``n_eff = p(1-p)/Var`` and ``z`` the t
  quantile on the design df:
  ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``.
  (survey ≥ 4.5's ``svyciprop(method="wilson")``; Debian ships survey 4.1.1,
  which lacks it, so this formula is tested against a hand computation.)
- ``beta``: Korn–Graubard, as ``svyciprop(method="beta")``:
  ``n_eff = p(1-p)/Var · (t_{α/2,n-1}/t_{α/2,df})²``,
  ``[qbeta(α/2, n_eff·p, n_eff(1-p)+1), qbeta(1-α/2, n_eff·p+1, n_eff(1-p))]``.
- ``logit``: ``svyciprop(method="xlogit")``: ``expit(logit p ± t·SE/(p(1-p)))``.
- Var = 0 rule (SE ≤ 1e-9; p = 0 or 1, one response, identical answers): every
  method uses the Wilson formula with ``n_eff = n_kish / (1 - f)`` (f = the
  sampling fraction of the domain's cells, 0 if unknown; f = 1 gives a
  zero-width interval) and the reported SE is 0.
- Working SE (for statistics fed by a domain's uncertainty: ranking, trend,
  shrinkage, ``mean_of_units``): :func:`working_se` = SE where SE > 1e-9, else
  the SE of a normal interval as wide as the published one,
  ``(ci_high - ci_low) / (2·z_{α/2})``; :func:`working_logit` puts it on the
  logit scale, with the interval's midpoint in place of p = 0 or 1.
"""
from __future__ import annotations

import numpy as np
from scipy import special, stats

from .schema import CI_METHODS, DEFAULT_LEVEL, SE_ZERO

__all__ = [
    "SE_ZERO",
    "METHODS",
    "design_df",
    "t_quantile",
    "wilson",
    "korn_graubard",
    "logit_wald",
    "proportion_interval",
    "index_interval",
    "working_se",
    "working_point",
    "working_logit",
]

METHODS = CI_METHODS


def design_df(n, cells) -> np.ndarray:
    """Design degrees of freedom ``max(n - cells, 1)``."""
    return np.maximum(np.asarray(n, dtype=float) - np.asarray(cells, dtype=float), 1.0)


def t_quantile(df, level: float = DEFAULT_LEVEL) -> np.ndarray:
    """Upper ``(1+level)/2`` quantile of Student's t on ``df``."""
    return stats.t.ppf(0.5 + level / 2.0, np.asarray(df, dtype=float))


def wilson(p, n_eff, tq):
    """Wilson score interval for estimate ``p``, effective size ``n_eff``, quantile ``tq``.

    ``n_eff = inf`` gives ``[p, p]``; ``n_eff <= 0`` or NaN gives NaN.
    """
    p = np.asarray(p, dtype=float)
    n = np.asarray(n_eff, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(np.isinf(n), 0.0, tq * tq / n)  # z²/n
        denom = 1.0 + a
        centre = (p + a / 2.0) / denom
        half = np.sqrt(np.maximum(a * p * (1.0 - p) + a * a / 4.0, 0.0)) / denom
    lo = np.clip(centre - half, 0.0, 1.0)
    hi = np.clip(centre + half, 0.0, 1.0)
    bad = ~(n > 0)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def korn_graubard(p, var, n, df, level: float = DEFAULT_LEVEL):
    """Korn–Graubard (beta) interval as ``svyciprop(method="beta")``; ``n`` = responses."""
    p = np.asarray(p, dtype=float)
    alpha = 1.0 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = p * (1.0 - p) / np.asarray(var, dtype=float)
        ratio = (stats.t.ppf(alpha / 2, np.asarray(n, dtype=float) - 1.0)
                 / stats.t.ppf(alpha / 2, np.asarray(df, dtype=float))) ** 2
        n_eff = n_eff * ratio
        lo = special.betaincinv(n_eff * p, n_eff * (1.0 - p) + 1.0, alpha / 2)
        hi = special.betaincinv(n_eff * p + 1.0, n_eff * (1.0 - p), 1.0 - alpha / 2)
    return lo, hi


def logit_wald(p, se, tq):
    """``expit(logit(p) ± tq·se / (p(1-p)))`` (svycontrast of the logit, as xlogit)."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log(p / (1.0 - p))
        h = tq * np.asarray(se, dtype=float) / (p * (1.0 - p))
        return special.expit(lg - h), special.expit(lg + h)


def _zero_rule(p, var, n_kish, f, tq):
    """Mask of Var = 0 domains and their Wilson bounds with n_eff = n_kish / (1 - f)."""
    se = np.sqrt(np.maximum(np.asarray(var, dtype=float), 0.0))
    zero = np.isfinite(p) & (se <= SE_ZERO)
    f = np.asarray(f, dtype=float)
    with np.errstate(divide="ignore"):
        n_eff0 = np.where(f >= 1.0, np.inf, np.asarray(n_kish, dtype=float) / (1.0 - np.minimum(f, 1.0)))
    lo0, hi0 = wilson(p, n_eff0, tq)
    return zero, se, lo0, hi0


def proportion_interval(p, var, n, df, method: str = "wilson", level: float = DEFAULT_LEVEL,
                        n_kish=None, f=None, cap_n_eff: bool = False):
    """Interval for proportions; returns (se, lo, hi) with the Var = 0 rule applied.

    ``n`` = responses in each domain (for Korn–Graubard), ``df`` = design df
    (floored), ``n_kish`` and ``f`` feed the Var = 0 rule. NaN ``p`` gives NaN.
    ``cap_n_eff`` (off here; on by default in :class:`analysis.index.IndexOptions`,
    method version 2; not part of survey's methods) truncates the
    design effective size ``p(1-p)/Var`` of wilson and beta at ``n_kish/(1-f)``,
    so a variance estimate that is too small by chance cannot make the interval
    narrower than the weighting alone allows.
    """
    if method not in METHODS:
        raise ValueError(f"unknown interval method {method!r}; choose from {METHODS}")
    p = np.asarray(p, dtype=float)
    var = np.asarray(var, dtype=float)
    tq = t_quantile(df, level)
    n_kish = np.asarray(n if n_kish is None else n_kish, dtype=float)
    f = np.zeros_like(p) if f is None else np.asarray(f, dtype=float)
    zero, se, lo0, hi0 = _zero_rule(p, var, n_kish, f, tq)
    if cap_n_eff:
        with np.errstate(divide="ignore", invalid="ignore"):
            cap = np.where(f >= 1.0, np.inf, n_kish / (1.0 - np.minimum(f, 1.0)))
            var = np.maximum(var, p * (1.0 - p) / cap)
    if method == "wilson":
        with np.errstate(divide="ignore", invalid="ignore"):
            lo, hi = wilson(p, p * (1.0 - p) / var, tq)
    elif method == "beta":
        lo, hi = korn_graubard(p, var, n, df, level)
    else:
        lo, hi = logit_wald(p, se, tq)
    lo = np.where(zero, lo0, lo)
    hi = np.where(zero, hi0, hi)
    se = np.where(zero, 0.0, se)
    nan = ~np.isfinite(p)
    return (np.where(nan, np.nan, se), np.where(nan, np.nan, lo), np.where(nan, np.nan, hi))


def index_interval(index, var, df, level: float = DEFAULT_LEVEL, n_kish=None, f=None):
    """Index interval ``expit(logit I ± t·SE/(I(1-I)))``; the Var = 0 rule where SE ≤ 1e-9."""
    index = np.asarray(index, dtype=float)
    tq = t_quantile(df, level)
    f = np.zeros_like(index) if f is None else np.asarray(f, dtype=float)
    zero, se, lo0, hi0 = _zero_rule(index, var, n_kish, f, tq)
    lo, hi = logit_wald(index, se, tq)
    lo = np.where(zero, lo0, lo)
    hi = np.where(zero, hi0, hi)
    se = np.where(zero, 0.0, se)
    nan = ~np.isfinite(index)
    return (np.where(nan, np.nan, se), np.where(nan, np.nan, lo), np.where(nan, np.nan, hi))


def _like(template, values):
    """``values`` shaped as ``template``: a Series keeps its index, a scalar stays a float."""
    import pandas as pd

    if isinstance(template, pd.Series):
        return pd.Series(values, index=template.index, name=getattr(template, "name", None))
    if np.ndim(template) == 0:
        return float(values)
    return values


def working_se(se, ci_low, ci_high, level: float = DEFAULT_LEVEL):
    """Working SE for downstream statistics (METHODOLOGY §4 "Working SE").

    ``se`` where it is finite and above :data:`~analysis.schema.SE_ZERO`, else
    ``(ci_high - ci_low) / (2·z)`` with ``z`` the normal (not t) quantile of
    ``level``: the SE of a normal interval as wide as the published one. It is
    0 only for a zero-width interval (a census, f = 1); NaN where neither a
    positive SE nor a finite interval is there (a domain without estimate).
    Vectorised over scalars, NumPy arrays and pandas Series (index kept).
    """
    s = np.asarray(se, dtype=float)
    lo = np.asarray(ci_low, dtype=float)
    hi = np.asarray(ci_high, dtype=float)
    z = stats.norm.ppf(0.5 + level / 2.0)
    width = np.where(np.isfinite(lo) & np.isfinite(hi), np.maximum(hi - lo, 0.0), np.nan)
    positive = np.isfinite(s) & (s > SE_ZERO)
    out = np.where(positive, s, width / (2.0 * z))
    return _like(se, out)


def working_point(p, ci_low, ci_high):
    """The estimate, with the interval's midpoint in place of p = 0 or p = 1 (for logit scales)."""
    p_ = np.asarray(p, dtype=float)
    mid = (np.asarray(ci_low, dtype=float) + np.asarray(ci_high, dtype=float)) / 2.0
    edge = np.isfinite(p_) & ((p_ <= 0.0) | (p_ >= 1.0))
    return _like(p, np.where(edge, mid, p_))


def working_logit(p, se, ci_low, ci_high, level: float = DEFAULT_LEVEL):
    """(logit estimate, its working SE) by the delta method: ``SE_w / (p̃(1-p̃))``.

    ``p̃`` = :func:`working_point` (the midpoint of the interval where p is 0
    or 1), ``SE_w`` = :func:`working_se`. A census at 0 or 1 (zero-width
    interval at the edge) gives an infinite logit and SE 0: it is exact.
    """
    pt = np.asarray(working_point(p, ci_low, ci_high), dtype=float)
    sw = np.asarray(working_se(se, ci_low, ci_high, level), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log(pt / (1.0 - pt))
        lse = np.where(sw == 0.0, 0.0, sw / (pt * (1.0 - pt)))
    return _like(p, lg), _like(p, lse)
