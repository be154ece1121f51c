"""Key-driver analysis: which service element to improve first.

METHODOLOGY.md section 6: logistic regression of overall satisfaction on element
satisfaction, weighted, for parents with enough responses; importance x
performance shows which element to improve first.

Model
-----
For each group (for example a parent unit) the complete responses (overall and
every element answered) give ``y = 1`` when ``overall`` is 4 or 5 (satisfied)
and ``x_e = 1`` when element ``e`` is 4 or 5::

    logit P(y = 1) = b0 + sum_e b_e x_e

* **Point estimates**: survey-weighted pseudo-maximum likelihood (the estimator
  of R's ``survey::svyglm``), fitted with statsmodels
  ``GLM(family=Binomial(), var_weights=weight * count)``.  ``var_weights`` and
  ``freq_weights`` give the same coefficients for the binomial family;
  ``var_weights`` is used because survey weights are not numbers of
  observations, so statsmodels' model-based df, log-likelihood and SEs under
  ``freq_weights`` would be wrong for them.  Neither is used for inference.
* **Standard errors**: design-based linearisation (sandwich) over the *full*
  survey design, the complete responses of the group being a domain, as
  ``svyglm(design = subset(svydesign(ids = ~1, strata = ~cell, weights = ~w,
  fpc = ~N_cell), complete & in_group))`` computes them:
  ``V = B^-1 M B^-1`` with the bread
  ``B = sum_i c_i w_i mu_i (1 - mu_i) x_i x_i'`` over the domain and the meat
  ``M = sum_h f_h n_h / (n_h - 1) sum_{i in h} c_i (z_i - zbar_h)(z_i - zbar_h)'``,
  ``z_i = w_i (y_i - mu_i) x_i`` the response's weighted score (0 outside
  the domain: incomplete responses and other groups stay in their strata),
  ``zbar_h`` its mean over *all* ``n_h`` responses of stratum ``h`` in the
  design, ``c_i`` the row's ``count`` (a compressed row stands for ``c_i``
  identical responses, each its own PSU, so compressed and expanded data give
  identical results) and ``f_h = 1 - n_h / N_h`` the finite-population
  correction (column ``fpc`` = N of the row's stratum; 1 when unknown or no
  ``fpc`` column).  A stratum with a single response is not centred and
  scaled by ``f_h`` (``survey.lonely.psu = "adjust"``: the scores sum to 0, so
  centring on the grand mean is centring on 0); a census stratum (f = 0)
  adds nothing.  One stratum when ``strata`` is None.  Wald z tests (normal
  reference; groups have at least ``min_n`` responses).
* **Importance** of an element: its share of the positive coefficients,
  ``max(b_e, 0) / sum_k max(b_k, 0)`` (sums to 1 over the elements; an element
  whose satisfaction does not raise overall satisfaction has importance 0).
* **Performance**: the element's weighted satisfied rate in the group, over the
  responses that answered that element (the METHODOLOGY 2 item rate, not only
  the complete responses).
* **Quadrant**: cut lines at the medians, over the group's elements, of
  importance and of performance (overridable by ``importance_cut`` /
  ``performance_cut``); "high" means at or above the cut line:
  ``improve_first`` (high importance, low performance), ``keep_up`` (high, high),
  ``lower_priority`` (low, low), ``possible_overkill`` (low importance, high
  performance).

This module imports only numpy, pandas, scipy and statsmodels.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .schema import ELEMENTS, OVERALL, SATISFIED_MIN, UNDER_18

__all__ = ["drivers", "QUADRANTS"]

QUADRANTS = ("improve_first", "keep_up", "lower_priority", "possible_overkill")

_COLUMNS = [
    "element",
    "status",
    "n_responses",
    "n",
    "n_weighted",
    "coef",
    "se",
    "z",
    "p_value",
    "odds_ratio",
    "or_ci_low",
    "or_ci_high",
    "significant",
    "importance",
    "performance",
    "quadrant",
    "method",
]


def _items(frame: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """Item columns as floats; NaN = not answered.  Values must be 1-5."""
    out = frame[list(cols)].apply(pd.to_numeric, errors="coerce").astype(float)
    raw_missing = frame[list(cols)].isna()
    bad_text = out.isna() & ~raw_missing
    vals = out.to_numpy()
    bad_range = np.isfinite(vals) & ~np.isin(vals, [1.0, 2.0, 3.0, 4.0, 5.0])
    if bad_text.to_numpy().any() or bad_range.any():
        raise ValueError("item values must be 1-5 or empty")
    return out


def _sandwich(
    X: np.ndarray,
    y: np.ndarray,
    mu: np.ndarray,
    w: np.ndarray,
    c: np.ndarray,
    strata: np.ndarray,
    n_h: np.ndarray,
    f_h: np.ndarray,
) -> np.ndarray:
    """Linearisation covariance of the weighted logistic coefficients (domain rows given).

    ``strata``: stratum code of each domain row; ``n_h`` / ``f_h``: responses
    and ``1 - n/N`` of every stratum of the full design.
    """
    bread = X.T @ (X * (c * w * mu * (1.0 - mu))[:, None])
    z = X * (w * (y - mu))[:, None]
    k = X.shape[1]
    meat = np.zeros((k, k))
    for h in np.unique(strata):
        sel = strata == h
        ch, zh, nh, fh = c[sel], z[sel], n_h[h], f_h[h]
        if fh < 1e-7:  # a census stratum
            continue
        q = zh.T @ (zh * ch[:, None])
        if nh > 1:
            s = (ch[:, None] * zh).sum(axis=0)
            meat += fh * nh / (nh - 1.0) * (q - np.outer(s, s) / nh)
        else:  # lonely PSU ("adjust"): not centred
            meat += fh * q
    binv = np.linalg.inv(bread)
    return binv @ meat @ binv


def _fit_group(
    items: pd.DataFrame,
    w: np.ndarray,
    c: np.ndarray,
    strata_codes: np.ndarray,
    n_h: np.ndarray,
    f_h: np.ndarray,
    outcome: str,
    elements: Sequence[str],
    min_n: int,
    level: float,
    importance_cut: float | None,
    performance_cut: float | None,
    method: str,
) -> tuple[list[dict], dict]:
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import (
        PerfectSeparationError,
        PerfectSeparationWarning,
    )

    sat = (items >= SATISFIED_MIN).astype(float).where(items.notna())
    valid_w = np.isfinite(w) & (w > 0) & np.isfinite(c) & (c > 0)
    n_responses = float(c[np.isfinite(c) & (c > 0)].sum())

    # Performance: weighted item rate over those who answered the element.
    perf = {}
    for e in elements:
        a = sat[e].notna().to_numpy() & valid_w
        wc = (w * c)[a]
        perf[e] = float((wc * sat[e].to_numpy()[a]).sum() / wc.sum()) if wc.sum() > 0 else np.nan

    complete = valid_w & sat[[outcome, *elements]].notna().all(axis=1).to_numpy()
    n_complete = float(c[complete].sum())
    n_weighted = float((w * c)[complete].sum())
    base = {
        "n_responses": n_responses,
        "n": n_complete,
        "n_weighted": n_weighted,
        "method": method,
    }

    def group_row(status: str) -> list[dict]:
        return [{**base, "element": None, "status": status}]

    if n_complete < min_n:
        return group_row("too_few"), {"status": "too_few"}
    y = sat[outcome].to_numpy()[complete]
    if np.all(y == y[0]):
        return group_row("no_variation"), {"status": "no_variation"}

    Xe = sat[list(elements)].to_numpy()[complete]
    varying = [j for j, _ in enumerate(elements) if not np.all(Xe[:, j] == Xe[0, j])]
    X = np.column_stack([np.ones(len(y)), Xe[:, varying]])
    wc = w[complete]
    cc = c[complete]
    st = strata_codes[complete]

    status = "ok"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = sm.GLM(
                y, X, family=sm.families.Binomial(), var_weights=wc * cc
            ).fit(maxiter=100)
        if any(issubclass(x.category, PerfectSeparationWarning) for x in caught):
            status = "separation"
        elif not res.converged:
            status = "not_converged"
        params = np.asarray(res.params, dtype=float)
        mu = np.asarray(res.fittedvalues, dtype=float)
        cov = _sandwich(X, y, mu, wc, cc, st, n_h, f_h)
    except (PerfectSeparationError, np.linalg.LinAlgError, ValueError) as exc:
        rows = group_row("failed")
        rows[0]["error"] = str(exc)
        return rows, {"status": "failed", "error": str(exc)}

    se_all = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    zcrit = stats.norm.ppf(0.5 + level / 2.0)
    coef = {e: np.nan for e in elements}
    se = {e: np.nan for e in elements}
    for k, j in enumerate(varying, start=1):
        coef[elements[j]] = params[k]
        se[elements[j]] = se_all[k]

    pos = {e: max(coef[e], 0.0) for e in elements if np.isfinite(coef[e])}
    total_pos = sum(pos.values())
    importance = {
        e: (pos[e] / total_pos if total_pos > 0 else 0.0) if e in pos else np.nan
        for e in elements
    }
    fitted = [e for e in elements if np.isfinite(importance[e])]
    i_cut = (
        importance_cut
        if importance_cut is not None
        else float(np.median([importance[e] for e in fitted])) if fitted else np.nan
    )
    perf_known = [perf[e] for e in fitted if np.isfinite(perf[e])]
    p_cut = (
        performance_cut
        if performance_cut is not None
        else float(np.median(perf_known)) if perf_known else np.nan
    )

    rows = []
    for e in elements:
        b, s = coef[e], se[e]
        if np.isfinite(b):
            zval = b / s if s > 0 else np.nan
            pval = float(2.0 * stats.norm.sf(abs(zval))) if np.isfinite(zval) else np.nan
            hi_imp = importance[e] >= i_cut
            hi_perf = perf[e] >= p_cut
            quadrant = (
                None
                if not np.isfinite(perf[e])
                else (
                    ("keep_up" if hi_perf else "improve_first")
                    if hi_imp
                    else ("possible_overkill" if hi_perf else "lower_priority")
                )
            )
            row_status = status
        else:
            zval = pval = np.nan
            quadrant = None
            row_status = "constant"
        rows.append(
            {
                **base,
                "element": e,
                "status": row_status,
                "coef": b,
                "se": s,
                "z": zval,
                "p_value": pval,
                "odds_ratio": float(np.exp(b)) if np.isfinite(b) else np.nan,
                "or_ci_low": float(np.exp(b - zcrit * s)) if np.isfinite(b) else np.nan,
                "or_ci_high": float(np.exp(b + zcrit * s)) if np.isfinite(b) else np.nan,
                "significant": bool(np.isfinite(pval) and pval < 1.0 - level),
                "importance": importance[e],
                "performance": perf[e],
                "quadrant": quadrant,
            }
        )
    info = {
        "status": status,
        "intercept": float(params[0]),
        "intercept_se": float(se_all[0]),
        "importance_cut": i_cut,
        "performance_cut": p_cut,
        "dropped_constant": [e for e in elements if not np.isfinite(coef[e])],
    }
    return rows, info


def drivers(
    frame: pd.DataFrame,
    *,
    weight: str | None = "weight",
    outcome: str = OVERALL,
    elements: Sequence[str] = ELEMENTS,
    group: str | Sequence[str] | None = None,
    min_n: int = 100,
    count: str | None = "count",
    strata: str | None = None,
    fpc: str | None = None,
    eligible_only: bool = True,
    level: float = 0.95,
    importance_cut: float | None = None,
    performance_cut: float | None = None,
) -> pd.DataFrame:
    """Weighted logistic key-driver analysis per group (see the module docstring).

    Parameters
    ----------
    frame:
        One row per response: item columns (``outcome`` and ``elements``) with
        1-5 or NaN (not answered), a ``weight`` column, and optionally a
        ``count`` column (frequency: the row stands for ``count`` identical
        responses; absent = 1).
    weight:
        Survey weight column; ``None`` fits unweighted (every weight 1).
        Rows with a missing, zero or negative weight (or count) are left out.
    group:
        Column name(s) to fit separately (e.g. ``"parent_code"``); ``None`` fits
        all rows together.
    min_n:
        Minimum number of complete responses (sum of ``count``) in a group;
        a smaller group gets one row with ``status = "too_few"``.
    strata:
        Optional stratum (cell) column for the linearisation variance.
    fpc:
        Optional column with the population size N of the row's stratum
        (NaN or inf = unknown: no finite-population correction), e.g. the
        ``cell_N`` column of :func:`analysis.index.weighted_responses`.
    eligible_only:
        Leave out responses flagged ``excluded`` = 1 and ``age_group`` =
        ``under_18`` when those columns exist (METHODOLOGY 2).
    level:
        Confidence level of the odds-ratio interval and of ``significant``.

    Returns
    -------
    One row per group and element: the group column(s), ``element``,
    ``status`` (``ok``; ``constant`` when the element does not vary in the
    group and was dropped from the model; ``separation`` / ``not_converged``
    when the fit is unreliable), ``n_responses`` (the group's responses),
    ``n`` (complete responses used), ``n_weighted``, ``coef`` (log odds ratio),
    ``se``, ``z``, ``p_value``, ``odds_ratio``, ``or_ci_low``, ``or_ci_high``,
    ``significant``, ``importance``, ``performance``, ``quadrant``, ``method``.
    A group that cannot be fitted gets a single row with ``element`` missing and
    ``status`` ``too_few``, ``no_variation`` (overall satisfaction constant) or
    ``failed``.  Per-group intercepts and cut lines are in ``attrs["drivers"]``.
    """
    elements = tuple(elements)
    gcols = [group] if isinstance(group, str) else list(group or [])
    needed = [outcome, *elements, *gcols]
    if weight is not None:
        needed.append(weight)
    if strata is not None:
        needed.append(strata)
    if fpc is not None:
        needed.append(fpc)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise KeyError(f"columns not in frame: {missing}")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")

    df = frame
    n_left_out = 0
    if eligible_only:
        keep = np.ones(len(df), dtype=bool)
        if "excluded" in df.columns:
            keep &= ~(pd.to_numeric(df["excluded"], errors="coerce").fillna(0) == 1).to_numpy()
        if "age_group" in df.columns:
            keep &= ~(df["age_group"].astype(object) == UNDER_18).to_numpy()
        n_left_out = int((~keep).sum())
        df = df.loc[keep]
    df = df.reset_index(drop=True)

    items = _items(df, [outcome, *elements])
    w_all = (
        pd.to_numeric(df[weight], errors="coerce").to_numpy(float)
        if weight is not None
        else np.ones(len(df))
    )
    c_all = (
        pd.to_numeric(df[count], errors="coerce").to_numpy(float)
        if count is not None and count in df.columns
        else np.ones(len(df))
    )
    # The design: every eligible row with a valid weight and count, in its stratum.
    in_design = np.isfinite(w_all) & (w_all > 0) & np.isfinite(c_all) & (c_all > 0)
    s_all = (
        df[strata].astype(object).fillna("_all").factorize()[0]
        if strata is not None
        else np.zeros(len(df), dtype=np.int64)
    )
    n_strata = int(s_all.max()) + 1 if len(s_all) else 0
    n_h = np.bincount(s_all[in_design], weights=c_all[in_design], minlength=n_strata)
    f_h = np.ones(n_strata)
    if fpc is not None:
        N_all = pd.to_numeric(df[fpc], errors="coerce").to_numpy(float)
        for h in range(n_strata):
            vals = N_all[in_design & (s_all == h)]
            vals = np.unique(vals[np.isfinite(vals)])
            if vals.size > 1:
                raise ValueError(f"column {fpc!r} must hold one population size per stratum")
            if vals.size == 1:
                if vals[0] < n_h[h]:
                    raise ValueError(f"column {fpc!r}: a stratum has more responses than its population")
                f_h[h] = (vals[0] - n_h[h]) / vals[0]

    method = (
        "logistic_pseudo_ml(statsmodels GLM Binomial, var_weights="
        f"{weight or '1'}*{count if count is not None and count in df.columns else '1'}; "
        f"SE=linearisation sandwich over the full design (complete cases of the group as a domain), "
        f"strata={strata or 'none'}, FPC={fpc or 'none'}; Wald z; "
        f"satisfied=4-5; importance=positive coefficient share; "
        f"quadrant cut={'median' if importance_cut is None else importance_cut}"
        f"/{'median' if performance_cut is None else performance_cut}; "
        f"min_n={min_n}; level={level})"
    )

    rows: list[dict] = []
    fits: list[dict] = []
    if gcols:
        groups = df.groupby(gcols, sort=True, dropna=False).indices.items()
    else:
        groups = [((), np.arange(len(df)))]
    for gkey, idx in groups:
        idx = np.asarray(idx)
        gkey = gkey if isinstance(gkey, tuple) else (gkey,)
        gvals = dict(zip(gcols, gkey))
        grows, info = _fit_group(
            items.iloc[idx],
            w_all[idx],
            c_all[idx],
            s_all[idx],
            n_h,
            f_h,
            outcome,
            elements,
            min_n,
            level,
            importance_cut,
            performance_cut,
            method,
        )
        rows.extend({**gvals, **r} for r in grows)
        fits.append({**gvals, **info})

    cols = gcols + _COLUMNS + (["error"] if any("error" in r for r in rows) else [])
    out = pd.DataFrame(rows, columns=cols)
    out["significant"] = out["significant"].astype("boolean")
    out.attrs["drivers"] = {
        "method": "logistic_pseudo_ml",
        "weights": "var_weights = weight * count",
        "se": "linearisation sandwich over the full design, complete cases as a domain "
        "(svyglm on subset(svydesign(ids=~1, strata, weights, fpc), complete))",
        "fpc": fpc,
        "outcome": outcome,
        "elements": list(elements),
        "group": gcols,
        "min_n": min_n,
        "level": level,
        "strata": strata,
        "eligible_only": eligible_only,
        "left_out_ineligible": n_left_out,
        "fits": fits,
    }
    return out
