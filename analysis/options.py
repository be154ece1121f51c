"""The parameters of an index run (:class:`IndexOptions`), frozen.

Options are immutable: derive a variant with ``dataclasses.replace(opts,
ci="beta")`` (or :meth:`IndexOptions.replace`), so a misspelled option name
raises ``TypeError`` instead of being silently ignored, and a caller's options
are never changed behind its back. Every field is written into the result's
``meta["parameters"]``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from .errors import InputError, Problem
from .schema import ADEQUACY_RULES, CI_METHODS, DEFAULT_LEVEL, ELEMENTS, ROLLUPS, ROOT_LEVEL, UNIT_LEVEL, WEIGHT_SOURCES

__all__ = ["IndexOptions", "LEVEL_FILTERS"]

#: ``level_filter`` values: every row (None), unit rows, parent rows, the root row.
LEVEL_FILTERS = (None, UNIT_LEVEL, "parent", ROOT_LEVEL)


@dataclass(frozen=True, eq=False)
class IndexOptions:
    """Parameters of :func:`analysis.index.compute_index` (all written into ``meta``)."""

    ci: str = "wilson"                      # wilson | beta | logit (element and overall rates)
    level: float = DEFAULT_LEVEL
    weights_from: str = "auto"              # auto | volumes | none | column
    adequacy: str = "yamane"                # yamane | cochran | quota
    margin: float = 0.05                    # e of Yamane / Cochran
    quotas: dict | None = None              # quota rule: kind -> required n
    min_transactions: float = 30
    target: Any = None                      # number, or dict (see analysis.targets)
    as_of: dt.date | None = None            # tree date; default: the period's last day
    rollup: str = "pooled"                  # pooled | mean_of_units
    map_successors: bool = False            # domains follow successors; the design stays (METHODOLOGY §6)
    element_weights: dict | None = None     # element -> α (normalised); default equal
    element_mode: Any = "direct"            # direct | criteria | {element: mode}
    elements: tuple = ELEMENTS
    include_excluded: bool = False
    include_under_18: bool = False
    level_filter: str | None = None         # None | unit | parent | root
    calendar: bool = False                  # read "2025" etc. as calendar periods
    low_n: float = 30
    wide_ci: float = 0.30
    cap_n_eff: bool = True                  # n_eff := min(p(1-p)/Var, n_kish/(1-f)) (wilson, beta; method 2);
                                            # False: the R-exact svyciprop intervals. logit is never capped.

    def replace(self, **changes) -> IndexOptions:
        """A copy with ``changes`` (``dataclasses.replace``: an unknown name raises TypeError)."""
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Raise :class:`~analysis.errors.InputError` listing every invalid value."""
        checks = [
            (self.ci in CI_METHODS, f"ci must be one of {CI_METHODS}"),
            (self.weights_from in WEIGHT_SOURCES, f"weights_from must be one of {WEIGHT_SOURCES}"),
            (self.adequacy in ADEQUACY_RULES, f"adequacy must be one of {ADEQUACY_RULES}"),
            (self.rollup in ROLLUPS, f"rollup must be one of {ROLLUPS}"),
            (self.level_filter in LEVEL_FILTERS, "level must be unit, parent or root"),
            (0 < self.level < 1, "level must be in (0, 1)"),
        ]
        bad = [msg for ok, msg in checks if not ok]
        if bad:
            raise InputError([Problem("options", None, None, m) for m in bad])
