"""The satisfaction index of every unit, parent and the root in one call.

:func:`compute_index` runs METHODOLOGY §2–§6 over a response frame and
returns an :class:`IndexResult`: ``.table`` one row per unit/parent/root
(the wide table), ``.estimates`` the same figures as a tidy long table (one
row per domain and quantity; the wide table is its pivot), ``.meta`` the
method version, parameters and counts, ``.cells`` the design's cells.
``estimate(build_design(...))`` is the same in two steps, with the
:class:`~analysis.design.SurveyDesign` in hand.

The steps live in their own modules: :mod:`analysis.design` (inputs,
eligibility, tree, cells, weights, domains), :mod:`analysis.estimation`
(rates, index, variances, intervals per level), :mod:`analysis.rollup`
(levels of the tree, pooled or mean of units), :mod:`analysis.estimates`
(long table and pivot), :mod:`analysis.flags` (population, adequacy, flags),
:mod:`analysis.targets`; :mod:`analysis.options` holds the frozen
:class:`IndexOptions`.

Response rows may carry an integer ``count``: the row stands for ``count``
identical responses (same unit, stratum, answers and weight). Results are
exactly those of the uncompressed frame, so the web app can aggregate in SQL
(``GROUP BY unit_code, stratum, <item columns>``) and pass the groups.
Without ``submitted_at`` the rows are taken as already inside the period; the
period still selects the volumes.

Element keys: :data:`analysis.schema.ELEMENTS`; ``overall`` is the overall
item. ``element_mode="criteria"`` (or a dict per element) rates an element as
the mean of its criteria rates, criteria columns being ``<element>_c1``,
``<element>_c2``, ... with 1 = yes, 0 = no, empty = don't know; an element
without criteria columns falls back to its direct item.

The mean score is ``Σ α_e m_e`` over the elements' direct 1–5 items (``m_e``
the weighted mean of answered values, weights renormalised like the index),
``score_100 = (mean_score - 1)/4·100``; ``deff`` is Kish's weighting design
effect ``n / n_kish``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from . import estimates as est_table
from . import rollup
from .design import SurveyDesign, build_design, tree_date
from .estimation import GRAM_MAX_RATIOS, RatioVars, build_vars, normalise_alpha
from .flags import population_and_flags
from .options import IndexOptions
from .periods import Period, parse_period
from .schema import METHOD_VERSION, METHOD_VERSION_UNCAPPED, ROOT_LEVEL, UNIT_LEVEL
from .targets import resolve_targets, target_status

__all__ = ["METHOD_VERSION", "method_label", "IndexOptions", "IndexResult", "compute_index", "estimate", "compute_pair",
           "weighted_responses", "tree_date", "INDEX_COLUMNS", "GRAM_MAX_RATIOS"]


def method_label(cap_n_eff: bool = True) -> str:
    """The method version an output names: :data:`METHOD_VERSION`, or its uncapped (R-exact) variant."""
    return METHOD_VERSION if cap_n_eff else METHOD_VERSION_UNCAPPED


INDEX_COLUMNS = [
    "unit_code", "level", "period", "n", "n_kish", "deff", "N", "response_rate", "overall_rate",
    "index", "index_se", "index_ci_low", "index_ci_high", "moe", "required_n", "adequacy", "flags",
    "target", "target_status",
]


@dataclass
class IndexResult:
    """``table``: one row per unit / parent / root; ``meta``: method and counts; ``cells``: the design
    cells; ``estimates``: the tidy long table (:data:`analysis.estimates.ESTIMATE_COLUMNS`) of the
    same rows. (The design itself is not kept, so a cached result stays small: build it with
    :func:`analysis.design.build_design` and estimate it with :func:`estimate`.)"""

    table: pd.DataFrame
    meta: dict
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    estimates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=est_table.ESTIMATE_COLUMNS))


def compute_index(responses: pd.DataFrame, volumes: pd.DataFrame | None = None,
                  units: pd.DataFrame | None = None, *, period: Period | str | None = None,
                  options: IndexOptions | None = None) -> IndexResult:
    """Indices, intervals, adequacy, targets and roll-up for one period.

    ``responses``: DESIGN response columns (or the app's aggregated rows with a
    ``count`` column); ``volumes``/``units``: DESIGN volume/unit frames or None;
    ``period``: a :class:`~analysis.periods.Period` or a label for
    :func:`~analysis.periods.parse_period`, None = all rows.
    Raises :class:`~analysis.errors.InputError` on invalid input.
    """
    design = build_design(responses, volumes, units, period=period, options=options)
    return estimate(design)


def estimate(design: SurveyDesign) -> IndexResult:
    """Every estimate of a built design (the part of :func:`compute_index` after :func:`build_design`)."""
    opts, period = design.options, design.period
    alpha = normalise_alpha(tuple(opts.elements), opts.element_weights)
    V = build_vars(design.responses, tuple(opts.elements), opts.element_mode)
    domains, long = rollup.level_estimates(design, V, alpha, opts)
    if opts.rollup == "mean_of_units":
        long = rollup.mean_of_units(long, domains, design.tree, V, opts)
    table = est_table.pivot(long, domains)

    # -- population, adequacy, flags, targets
    table = population_and_flags(table, design, opts)
    year = period.year if period is not None else None
    table["target"] = resolve_targets(opts.target, year, table["kind"])
    table["target_status"] = target_status(table["index_ci_low"], table["index_ci_high"], table["target"])
    table["period"] = period.label if period is not None else ""
    table["method"] = method_label(opts.cap_n_eff)
    table["ci_method"] = opts.ci
    table["rollup"] = opts.rollup
    table["weights_from"] = design.weights_from
    table = _filter_level(table, opts.level_filter)
    estimates = est_table.tidy(long, domains, keep=table["_dom"].to_numpy())
    table = _order_columns(table.reset_index(drop=True), V)
    return IndexResult(table=table, meta=_meta(design, V, alpha), cells=design.cells, estimates=estimates)


def weighted_responses(responses: pd.DataFrame, volumes: pd.DataFrame | None = None,
                       units: pd.DataFrame | None = None, *, period: Period | str | None = None,
                       options: IndexOptions | None = None) -> tuple[pd.DataFrame, dict]:
    """The eligible responses of the period with their design: (frame, meta).

    Frame: :meth:`analysis.design.SurveyDesign.response_frame` (the
    normalised response columns plus ``cell``, ``cell_stratum``, ``weight``
    -- the design weight w --, ``count`` and ``parent_code``). For drivers and
    other models that need response-level data with the index's own weights;
    :func:`analysis.design.build_design` gives the design itself.
    """
    design = build_design(responses, volumes, units, period=period, options=options)
    el = design.eligibility
    meta = {"method_version": method_label(design.options.cap_n_eff), "n_read": el.n_read, "n_used": el.n_used,
            "n_left_out": dict(el.left_out), "weights_from_used": design.weights_from,
            "period": None if design.period is None else design.period.label}
    return design.response_frame(), meta


def compute_pair(responses: pd.DataFrame, volumes: pd.DataFrame | None = None,
                 units: pd.DataFrame | None = None, *, period: Period | str, previous: Period | str,
                 options: IndexOptions | None = None) -> tuple[IndexResult, IndexResult]:
    """The index of ``period`` and of ``previous``, for a trend.

    With ``map_successors`` both periods are put on the same tree, the later
    period's (METHODOLOGY §6), so a unit merged between them is compared with
    the units that were mapped into it. Without it, each period keeps its own
    tree ("as it was then").
    """
    opts = options or IndexOptions()
    if isinstance(period, str):
        period = parse_period(period, calendar=opts.calendar)
    if isinstance(previous, str):
        previous = parse_period(previous, calendar=opts.calendar)
    if opts.map_successors:
        later = period if previous.last <= period.last else previous
        opts = dataclasses.replace(opts, as_of=tree_date(later, opts))
    cur = compute_index(responses, volumes, units, period=period, options=opts)
    old = compute_index(responses, volumes, units, period=previous, options=opts)
    return cur, old


def _filter_level(table: pd.DataFrame, level: str | None) -> pd.DataFrame:
    """``unit``, ``parent`` (every level but unit and root) or ``root`` rows; all when None."""
    if level == UNIT_LEVEL:
        return table[table["level"] == UNIT_LEVEL]
    if level == "parent":
        return table[~table["level"].isin([UNIT_LEVEL, ROOT_LEVEL])]
    if level == ROOT_LEVEL:
        return table[table["level"] == ROOT_LEVEL]
    return table


def _order_columns(table: pd.DataFrame, V: RatioVars) -> pd.DataFrame:
    table = table.copy()
    table["score_100"] = (table["mean_score"] - 1.0) / 4.0 * 100.0
    first = ["unit_code", "name_vi", "name_en", "kind", "level", "parent_code", "period", "n", "n_kish", "deff",
             "N", "response_rate", "overall_rate", "overall_se", "overall_ci_low", "overall_ci_high", "overall_n",
             "index", "index_se", "index_ci_low", "index_ci_high", "index_df", "moe", "mean_score", "score_100"]
    elem = [f"{e}_{s}" for e in V.groups for s in ("rate", "se", "ci_low", "ci_high", "n")]
    last = ["missing_elements", "required_n", "adequacy", "flags", "target", "target_status", "cells",
            "method", "ci_method", "rollup", "weights_from"]
    cols = first + elem + last
    for c in ("n", "overall_n", "cells") + tuple(f"{e}_n" for e in V.groups):
        if c in table.columns:
            table[c] = table[c].fillna(0).round().astype(np.int64)
    return table[[c for c in cols if c in table.columns]]


def _cap_note(opts: IndexOptions) -> str:
    """One sentence on the n_eff cap, for method notes."""
    if opts.ci == "logit":
        return "not applicable: logit intervals use the SE directly (never capped)"
    if opts.cap_n_eff:
        return "n_eff = min(p(1-p)/Var, n_kish/(1-f)) (METHODOLOGY §4, method version 2)"
    return "off: n_eff = p(1-p)/Var, the R-exact svyciprop interval"


def _meta(design: SurveyDesign, V: RatioVars, alpha: dict) -> dict:
    opts, period, as_of, cells, el = design.options, design.period, design.as_of, design.cells, design.eligibility
    cutoff = el.data_cutoff
    params = asdict(opts)
    params["elements"] = list(opts.elements)
    if isinstance(params.get("target"), dict):
        params["target"] = {str(k): v for k, v in params["target"].items()}
    params["as_of"] = as_of.isoformat() if as_of else None
    params["weights_from_used"] = design.weights_from
    params["element_weights_normalised"] = alpha
    params["element_modes"] = V.modes
    return {
        "method_version": method_label(opts.cap_n_eff),
        "n_eff_cap": _cap_note(opts),
        "parameters": params,
        "period": None if period is None else {
            "label": period.label, "first": period.first.isoformat(), "last": period.last.isoformat(),
            "start_utc": period.start.isoformat(), "end_utc": period.end.isoformat(), "tz": period.tz},
        "n_read": el.n_read,
        "n_used": el.n_used,
        "n_left_out": dict(el.left_out),
        "data_cutoff": None if cutoff is None or pd.isna(cutoff) else pd.Timestamp(cutoff).isoformat(),
        "cells": int(len(cells)),
        "over_population_cells": int(cells["over_population"].sum()) if len(cells) else 0,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
