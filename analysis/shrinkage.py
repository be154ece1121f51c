"""Small-area shrinkage: empirical-Bayes Fay-Herriot index on the logit scale.

METHODOLOGY.md section 6, "Small units" (optional, ``--shrink``): a shrunk
index beside the direct one, *for ranking only*; the direct estimates stay the
published figures.  Each unit's sampling variance is its **working SE**
(METHODOLOGY 4, :func:`analysis.intervals.working_logit`), so a unit whose SE
is reported 0 under the Var = 0 rule (p = 0 or 1, one response) enters with
the uncertainty of its published interval, never as exact; only a census
(f = 1, zero-width interval) is exact and is not shrunk.

Pure functions: pandas in, pandas out; imports only numpy, pandas and scipy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special

from .intervals import working_logit
from .ranking import group_codes, group_list, interval_columns, numeric_column
from .schema import DEFAULT_LEVEL

__all__ = ["shrink_index", "fay_herriot"]


def _gls(y: np.ndarray, X: np.ndarray, w: np.ndarray):
    """Weighted least squares with weights w = 1/(A+D): beta, M = X'WX, residuals."""
    Xw = X * w[:, None]
    M = X.T @ Xw
    beta = np.linalg.solve(M, Xw.T @ y)
    resid = y - X @ beta
    return beta, M, resid


def _reml_loglik(A: float, y: np.ndarray, X: np.ndarray, D: np.ndarray) -> float:
    """Restricted log-likelihood of the Fay-Herriot model (up to a constant)."""
    w = 1.0 / (A + D)
    _, M, r = _gls(y, X, w)
    _, logdet_m = np.linalg.slogdet(M)
    return -0.5 * (np.sum(np.log(A + D)) + logdet_m + np.sum(w * r * r))


def _ml_loglik(A: float, y: np.ndarray, X: np.ndarray, D: np.ndarray) -> float:
    """Profile log-likelihood (beta at its GLS value) of the model, up to a constant."""
    w = 1.0 / (A + D)
    _, _, r = _gls(y, X, w)
    return -0.5 * (np.sum(np.log(A + D)) + np.sum(w * r * r))


def _fit_A(
    y: np.ndarray,
    X: np.ndarray,
    D: np.ndarray,
    method: str,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> tuple[float, int, bool]:
    """Estimate the model variance A >= 0; returns (A, iterations, converged)."""
    m, p = X.shape
    if method == "FH":
        # Fay-Herriot (1979) moment equation: sum w r^2 = m - p, w = 1/(A+D),
        # r the GLS residuals at A.  The left side decreases in A.
        def g(a: float) -> float:
            w = 1.0 / (a + D)
            _, _, r = _gls(y, X, w)
            return float(np.sum(w * r * r) - (m - p))

        if g(0.0) <= 0:
            return 0.0, 0, True
        hi = max(float(np.var(y)), 1e-6)
        k = 0
        while g(hi) > 0 and k < 200:
            hi *= 2.0
            k += 1
        a, res = optimize.brentq(g, 0.0, hi, xtol=tol, full_output=True)
        return float(a), int(res.iterations), bool(res.converged)

    # REML / ML by Fisher scoring (Rao & Molina 2015, sec. 6.1.2; the
    # algorithm of R's sae::eblupFH), truncated at 0.
    A = float(np.median(D))
    converged = False
    it = 0
    while it < max_iter:
        it += 1
        w = 1.0 / (A + D)
        beta, M, r = _gls(y, X, w)
        if method == "REML":
            Minv = np.linalg.inv(M)
            X2 = X.T @ (X * (w * w)[:, None])  # X'W^2X
            X3 = X.T @ (X * (w**3)[:, None])  # X'W^3X
            tr_p = np.sum(w) - np.trace(Minv @ X2)
            tr_pp = (
                np.sum(w * w)
                - 2.0 * np.trace(Minv @ X3)
                + np.trace(Minv @ X2 @ Minv @ X2)
            )
            # Py = W r (r the GLS residuals), so y'PPy = sum (w r)^2.
            score = -0.5 * tr_p + 0.5 * np.sum((w * r) ** 2)
            info = 0.5 * tr_pp
        else:  # ML
            score = -0.5 * np.sum(w) + 0.5 * np.sum((w * r) ** 2)
            info = 0.5 * np.sum(w * w)
        step = score / info
        A_new = max(A + step, 0.0)
        if abs(A_new - A) <= tol * max(1.0, A):
            A = A_new
            converged = True
            break
        A = A_new
    if not converged or A == 0.0:
        # Fisher scoring can stall at 0 or oscillate; confirm with a bounded
        # search on the same likelihood and keep the better of the two.
        ll = _reml_loglik if method == "REML" else _ml_loglik
        hi = max(float(np.var(y)) * 4.0, float(np.max(D)), 1e-6)
        res = optimize.minimize_scalar(
            lambda a: -ll(a, y, X, D),
            bounds=(0.0, hi),
            method="bounded",
            options={"xatol": 1e-12},
        )
        cand = float(res.x)
        if ll(0.0, y, X, D) >= ll(cand, y, X, D):
            cand = 0.0
        if ll(cand, y, X, D) > ll(A, y, X, D) or not converged:
            A = cand
            converged = True
    return A, it, converged


def fay_herriot(
    y: np.ndarray,
    D: np.ndarray,
    X: np.ndarray | None = None,
    *,
    method: str = "REML",
) -> dict:
    """Fit the area-level model y_i = x_i'beta + v_i + e_i, v ~ N(0, A), e ~ N(0, D_i).

    ``method``: ``"REML"`` (default, Fisher scoring), ``"ML"`` or ``"FH"``
    (Fay-Herriot moment estimator).  Returns a dict with ``A``, ``beta``,
    ``gamma`` (= A / (A + D)), ``synthetic`` (x'beta), ``eblup``
    (gamma y + (1 - gamma) x'beta), ``iterations``, ``converged``.
    With fewer than ``p + 2`` areas A cannot be estimated: A is NaN, gamma 1 and
    the EBLUP equals y (no shrinkage).
    """
    y = np.asarray(y, dtype=float)
    D = np.asarray(D, dtype=float)
    m = y.size
    if X is None:
        X = np.ones((m, 1))
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if method not in ("REML", "ML", "FH"):
        raise ValueError("method must be 'REML', 'ML' or 'FH'")
    if np.any(D < 0) or not np.all(np.isfinite(D)) or not np.all(np.isfinite(y)):
        raise ValueError("y and D must be finite, D >= 0")
    p = X.shape[1]
    if m < p + 2:
        return {
            "A": np.nan,
            "beta": np.full(p, np.nan),
            "gamma": np.ones(m),
            "synthetic": np.full(m, np.nan),
            "eblup": y.copy(),
            "iterations": 0,
            "converged": False,
        }
    A, it, conv = _fit_A(y, X, D, method)
    w = 1.0 / np.maximum(A + D, 1e-300)
    beta, _, _ = _gls(y, X, w)
    synth = X @ beta
    with np.errstate(invalid="ignore", divide="ignore"):
        gamma = np.where(A + D > 0, A / (A + D), 1.0)
    return {
        "A": A,
        "beta": beta,
        "gamma": gamma,
        "synthetic": synth,
        "eblup": gamma * y + (1.0 - gamma) * synth,
        "iterations": it,
        "converged": conv,
    }


def shrink_index(
    table: pd.DataFrame,
    *,
    estimate: str = "index",
    se: str = "index_se",
    low: str | None = None,
    high: str | None = None,
    ci_level: float = DEFAULT_LEVEL,
    method: str = "REML",
    covariates: Sequence[str] | None = None,
    group: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Empirical-Bayes (Fay-Herriot) shrunk index on the logit scale, for ranking.

    Model, per group (all rows when ``group`` is None; pass ``group="level"``
    when the table mixes units, parents and the root):
    ``y_i = x_i'beta + v_i + e_i``, ``v_i ~ N(0, A)``, ``e_i ~ N(0, D_i)``,
    with ``(y_i, sqrt(D_i))`` = :func:`analysis.intervals.working_logit` of the
    unit's estimate, SE and published interval (columns ``low`` / ``high``,
    by default ``<se without _se>_ci_low`` / ``_ci_high``, e.g.
    ``index_ci_low``; ``ci_level`` is the level of that interval):

    * SE > 1e-9: ``y = logit(p)``, ``D = (se / (p (1 - p)))^2`` (delta method);
    * SE reported 0 (the METHODOLOGY 4 Var = 0 rule: p = 0 or 1, a single
      response, identical answers): the working SE
      ``(ci_high - ci_low) / (2 z)`` with the interval's midpoint in place of
      p = 0 or 1;
    * a census (f = 1: zero-width interval) is exact: not shrunk
      (``index_shrunk`` = direct, ``shrink_gamma`` = 1) and left out of the fit.

    ``x_i`` is an intercept plus the optional ``covariates`` columns.  A is
    estimated by REML (default; Fisher scoring as R's ``sae::eblupFH``,
    truncated at 0), or ``method="ML"`` / ``"FH"`` (Fay-Herriot moments).
    ``gamma_i = A / (A + D_i)``; EBLUP ``= expit(gamma_i y_i + (1 - gamma_i) x_i'beta)``.

    **Limited to the unit's own interval**: the shrunk value is clipped to the
    unit's published ``[low, high]`` (a limited-translation rule, Efron &
    Morris 1972): pooling may move a unit within what its own data allow, never
    outside, so a unit with 50 of 50 satisfied is never shrunk below its own
    lower bound.  ``shrink_limited`` says where the clip acted.

    Rows with a missing estimate, or with neither a positive SE nor a finite
    interval, are left out of the fit and get NaN.  Fewer than (number of
    regressors + 2) usable rows in a group: no shrinkage (gamma 1, shrunk = direct).

    Returns a copy of ``table`` with ``index_shrunk``, ``shrink_gamma``,
    ``shrink_logit`` (y), ``shrink_logit_var`` (D), ``shrink_A`` (the group's
    model variance), ``shrink_limited`` and ``shrink_method``; fitted
    parameters per group are in ``attrs["shrink"]``.  The direct estimate
    stays the published figure.
    """
    for col in (estimate, se):
        if col not in table.columns:
            raise KeyError(f"column {col!r} not in table")
    if method not in ("REML", "ML", "FH"):
        raise ValueError("method must be 'REML', 'ML' or 'FH'")
    low, high = interval_columns(se, low, high)
    covs = list(covariates or [])
    gcols = group_list(group)
    out = table.copy()
    nrow = len(out)

    p, s, lo, hi = (numeric_column(out, c) for c in (estimate, se, low, high))
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"{estimate} must lie in [0, 1] for the logit model")
    lg, lse = (np.asarray(v, dtype=float) for v in working_logit(p, s, lo, hi, ci_level))
    known = np.isfinite(p) & np.isfinite(lse)
    census = known & (lse == 0.0)
    usable = known & ~census & np.isfinite(lg)
    y = np.where(usable, lg, np.nan)
    D = np.where(usable, lse**2, np.nan)
    if covs:
        Xall = out[covs].apply(pd.to_numeric, errors="coerce").to_numpy(float, copy=True)
        usable &= np.all(np.isfinite(Xall), axis=1)
        Xall = np.column_stack([np.ones(nrow), Xall])
    else:
        Xall = np.ones((nrow, 1))

    shrunk = np.full(nrow, np.nan)
    gamma = np.full(nrow, np.nan)
    Acol = np.full(nrow, np.nan)
    shrunk[census] = p[census]
    gamma[census] = 1.0
    codes = group_codes(out, gcols)
    fits = []
    for g in np.unique(codes):
        rows = np.flatnonzero((codes == g) & usable)
        if rows.size == 0:
            continue
        fit = fay_herriot(y[rows], D[rows], Xall[rows], method=method)
        shrunk[rows] = special.expit(fit["eblup"])
        gamma[rows] = fit["gamma"]
        Acol[rows] = fit["A"]
        gkey = out.iloc[rows[0]][gcols].to_dict() if gcols else {"group": "all"}
        fits.append(
            {
                "group": gkey,
                "m": int(rows.size),
                "A": float(fit["A"]),
                "beta": [float(b) for b in fit["beta"]],
                "converged": bool(fit["converged"]),
                "iterations": int(fit["iterations"]),
            }
        )

    # Limited translation: never outside the unit's own published interval.
    bounded = np.isfinite(shrunk) & np.isfinite(lo) & np.isfinite(hi)
    clipped = np.where(bounded, np.clip(shrunk, lo, hi), shrunk)
    limited = bounded & (clipped != shrunk)
    out["index_shrunk"] = clipped
    out["shrink_gamma"] = gamma
    out["shrink_logit"] = y
    out["shrink_logit_var"] = D
    out["shrink_A"] = Acol
    out["shrink_limited"] = limited
    out["shrink_method"] = (
        f"fay_herriot(logit; A={method}; X=1{''.join('+' + c for c in covs)}; "
        f"D from the working SE ({se}, [{low}, {high}] at {ci_level}); census not shrunk; "
        f"limited to the unit's own interval; for ranking only)"
    )
    out.attrs = dict(out.attrs)
    out.attrs["shrink"] = {
        "method": "fay_herriot",
        "scale": "logit",
        "variance_estimator": method,
        "sampling_variance": "working SE (METHODOLOGY 4)",
        "limited_to_interval": True,
        "covariates": covs,
        "estimate": estimate,
        "se": se,
        "low": low,
        "high": high,
        "ci_level": ci_level,
        "group": gcols,
        "fits": fits,
    }
    return out
