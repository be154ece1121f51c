"""SIPAS satisfaction analysis: pure statistics, pandas in, pandas out.

Never imports Flask or ``survey_app``. Main entry point::

    from analysis import compute_index, IndexOptions, parse_period
    result = compute_index(responses, volumes, units, period="2025",
                           options=IndexOptions(ci="wilson", target=0.9))
    result.table   # one row per unit, parent and root (DESIGN "Index output columns")
    result.meta    # method version, parameters, n read / left out, data cut-off

Modules, each usable alone: :mod:`analysis.io` (CSV readers/validators),
:mod:`analysis.periods`, :mod:`analysis.weights`, :mod:`analysis.variance`,
:mod:`analysis.intervals`, :mod:`analysis.adequacy`, :mod:`analysis.targets`,
:mod:`analysis.hierarchy`, :mod:`analysis.design` (the survey design),
:mod:`analysis.estimation`, :mod:`analysis.rollup`, :mod:`analysis.estimates`
(the tidy long table), :mod:`analysis.flags`, :mod:`analysis.options`,
:mod:`analysis.index` (``compute_index``: all of them in order), :mod:`analysis.output`;
the domain constants and file schemas live in :mod:`analysis.schema`.
The command line is ``python -m analysis`` (see :mod:`analysis.__main__`).
"""
# The names below are loaded on first use (PEP 562), so that importing one light module of the package
# (``analysis.schema``, ``analysis.errors``) does not import pandas, numpy and scipy: the app's citizen
# pages use the schema and must never load the statistics stack.
import importlib

from .schema import ELEMENTS, ITEM_KEYS

_EXPORTS = {
    ".adequacy": ("adequacy_status", "cochran", "required_n", "yamane"),
    ".errors": ("InputError", "Problem"),
    ".design": ("SurveyDesign", "build_design"),
    ".index": ("INDEX_COLUMNS", "METHOD_VERSION", "IndexOptions", "IndexResult", "compute_index", "compute_pair",
               "weighted_responses"),
    ".intervals": ("index_interval", "proportion_interval", "wilson", "working_se"),
    ".io": ("prepare_responses", "prepare_units", "prepare_volumes", "read_responses", "read_units", "read_volumes"),
    ".periods": ("Period", "parse_period", "period_contains", "previous_period"),
    ".weights": ("kish_n", "volumes_in_period"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "METHOD_VERSION", "INDEX_COLUMNS", "IndexOptions", "IndexResult", "compute_index", "compute_pair",
    "weighted_responses", "SurveyDesign", "build_design",
    "InputError", "Problem",
    "Period", "parse_period", "period_contains", "previous_period",
    "read_responses", "read_volumes", "read_units", "prepare_responses", "prepare_volumes", "prepare_units",
    "ELEMENTS", "ITEM_KEYS",
    "volumes_in_period", "kish_n", "proportion_interval", "index_interval", "wilson", "working_se",
    "required_n", "yamane", "cochran", "adequacy_status",
]


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
