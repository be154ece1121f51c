"""Sample adequacy (METHODOLOGY §5).

- ``yamane``: ``ceil(N / (1 + N·e²))``, e = 0.05 (SIPAS guidance): N = 1000 -> 286.
- ``cochran``: ``n0 = z²·p(1-p)/e²`` with p = 0.5, z = the normal quantile of the
  level; with N: ``ceil(n0 / (1 + (n0-1)/N))``: N = 1000 -> 278; without N -> 385.
- ``quota``: a fixed number per unit kind (``quotas``; kinds without a quota
  fall back to ``yamane``).

``required_n`` never exceeds N (a census). Status, in this order:
``no_population`` (N unknown; required_n = Cochran without FPC),
``not_eligible`` (N < min_transactions), ``adequate`` (n >= required_n),
``inadequate``.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .schema import ADEQUACY_RULES

__all__ = ["RULES", "DEFAULT_QUOTAS", "yamane", "cochran", "required_n", "adequacy_status", "response_rate"]

RULES = ADEQUACY_RULES
DEFAULT_QUOTAS = {"commune": 150, "ward": 200, "district": 500, "department": 500, "province": 600}
_EPS = 1e-9


def _ceil(x):
    return np.ceil(np.asarray(x, dtype=float) - _EPS)


def yamane(N, e: float = 0.05):
    """Yamane's ``ceil(N / (1 + N e²))``."""
    N = np.asarray(N, dtype=float)
    return _ceil(N / (1.0 + N * e * e))


def cochran(N=None, e: float = 0.05, p: float = 0.5, level: float = 0.95):
    """Cochran's n0 = z² p(1-p)/e², finite-population corrected when N is given (NaN = unknown)."""
    z = stats.norm.ppf(0.5 + level / 2.0)
    n0 = z * z * p * (1.0 - p) / (e * e)
    if N is None:
        return float(_ceil(n0))
    N = np.asarray(N, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        fin = n0 / (1.0 + (n0 - 1.0) / N)
    return _ceil(np.where(np.isnan(N), n0, fin))


def required_n(N, kinds=None, rule: str = "yamane", *, e: float = 0.05, level: float = 0.95,
               quotas: dict | None = None) -> np.ndarray:
    """Required sample size per unit; NaN N gives the Cochran size without FPC; capped at N."""
    if rule not in RULES:
        raise ValueError(f"unknown adequacy rule {rule!r}; choose from {RULES}")
    N = np.atleast_1d(np.asarray(N, dtype=float))
    if rule == "yamane":
        req = yamane(N, e)
    elif rule == "cochran":
        req = cochran(N, e, level=level)
    else:
        q = {**DEFAULT_QUOTAS, **(quotas or {})}
        kinds = np.asarray(kinds if kinds is not None else [None] * len(N), dtype=object)
        quota = np.array([q.get(k, np.nan) for k in kinds], dtype=float)
        req = np.where(np.isnan(quota), yamane(N, e), quota)
    unknown = np.isnan(N)
    req = np.where(unknown, cochran(None, e, level=level), np.minimum(req, np.where(unknown, np.inf, N)))
    return req


def adequacy_status(N, n, req, min_transactions: float = 30) -> np.ndarray:
    """no_population / not_eligible / adequate / inadequate (checked in that order)."""
    N = np.asarray(N, dtype=float)
    n = np.asarray(n, dtype=float)
    return np.select(
        [np.isnan(N), N < min_transactions, n >= np.asarray(req, dtype=float)],
        ["no_population", "not_eligible", "adequate"],
        "inadequate",
    ).astype(object)


def response_rate(n, N):
    """n / N (NaN when N is unknown or 0)."""
    N = np.asarray(N, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(N > 0, np.asarray(n, dtype=float) / N, np.nan)
