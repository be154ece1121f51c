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
:mod:`analysis.hierarchy`, :mod:`analysis.index`, :mod:`analysis.output`;
the domain constants and file schemas live in :mod:`analysis.schema`.
The command line is ``python -m analysis`` (see :mod:`analysis.__main__`).
"""
from .adequacy import adequacy_status, cochran, required_n, yamane
from .errors import InputError, Problem
from .index import INDEX_COLUMNS, METHOD_VERSION, IndexOptions, IndexResult, compute_index, weighted_responses
from .intervals import index_interval, proportion_interval, wilson, working_se
from .io import prepare_responses, prepare_units, prepare_volumes, read_responses, read_units, read_volumes
from .periods import Period, parse_period, period_contains, previous_period
from .schema import ELEMENTS, ITEM_KEYS
from .weights import kish_n, volumes_in_period

__all__ = [
    "METHOD_VERSION", "INDEX_COLUMNS", "IndexOptions", "IndexResult", "compute_index", "weighted_responses",
    "InputError", "Problem",
    "Period", "parse_period", "period_contains", "previous_period",
    "read_responses", "read_volumes", "read_units", "prepare_responses", "prepare_volumes", "prepare_units",
    "ELEMENTS", "ITEM_KEYS",
    "volumes_in_period", "kish_n", "proportion_interval", "index_interval", "wilson", "working_se",
    "required_n", "yamane", "cochran", "adequacy_status",
]
