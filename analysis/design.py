"""The survey design of one period, as one typed object (METHODOLOGY §2, §3, §6).

:func:`build_design` validates the inputs, applies eligibility (period,
excluded, under 18), builds the unit tree as of a date, forms the cells
(unit × stratum) and their weights and FPC, and records which unit's domain
each collecting unit's data belong to (itself, or its successor under
``map_successors``). Everything after it -- estimation, roll-up, flags,
drivers -- reads the same :class:`SurveyDesign`, so the weights a model uses
are the index's own.

The design is that of R's ``svydesign(ids=~1, strata=~cell, weights=~w,
fpc=~N_cell)``; :attr:`SurveyDesign.rows` is its numeric core
(:class:`analysis.variance.Design`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import InputError, Problem
from .hierarchy import Tree, successor_map, tree_as_of, without_counters
from .io import check_known_units, prepare_responses, prepare_units, prepare_volumes
from .options import IndexOptions
from .periods import Period, parse_period
from .variance import Design
from .weights import cells_for, volumes_in_period

__all__ = ["SurveyDesign", "Eligibility", "build_design", "tree_date", "domain_codes"]


@dataclass(frozen=True)
class Eligibility:
    """Who entered the design: rows read, used, and left out by reason (METHODOLOGY §2).

    Reasons are counted in the order outside the period, excluded, under 18
    (a row counts once); counts are responses (row multiplicities summed).
    """

    n_read: int
    n_used: int
    left_out: dict
    data_cutoff: pd.Timestamp | None = None
    #: per input row: eligible (the rows of :attr:`SurveyDesign.responses`, in order)
    mask: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)


@dataclass(frozen=True, eq=False)
class SurveyDesign:
    """Cells, weights, FPC, eligibility and domain membership of one period.

    - ``responses``: the eligible responses (normalised columns; ``unit_code``
      and ``stratum`` categorical: the *collecting* unit), one row per
      response or per group of ``count`` identical responses;
    - ``cells``: one row per cell holding responses -- ``unit_code`` (the
      collecting unit), ``stratum``, ``n``, ``N_recorded``, ``N`` (design N),
      ``over_population``, ``w``; ``cell_id`` maps each response to its cell;
    - ``rows``: the numeric design (cell, weight, count per row; n and N per
      cell; ``fpc``) the variance uses;
    - ``volumes``: transactions per (unit, stratum) in the period (collecting
      units' own rows);
    - ``tree``: the unit tree as of ``as_of``; ``successors``: collecting unit
      -> the unit whose domain its data belong to (only mapped codes);
    - ``weights_from``: the weight source used (``volumes``, ``none`` or ``column``).
    """

    responses: pd.DataFrame
    cells: pd.DataFrame
    cell_id: np.ndarray
    rows: Design
    volumes: pd.DataFrame
    tree: Tree
    successors: dict
    weights_from: str
    eligibility: Eligibility
    period: Period | None = None
    as_of: dt.date | None = None
    options: IndexOptions = field(default_factory=IndexOptions)

    # -- weights
    @property
    def weights(self) -> np.ndarray:
        """The design weight w of each response row."""
        return self.rows.w

    @property
    def counts(self) -> np.ndarray:
        """How many identical responses each row stands for."""
        return self.rows.count

    @property
    def fpc(self) -> bool:
        """The finite-population correction applies (weights from volumes)."""
        return self.rows.fpc

    # -- domains
    def domain_codes(self, codes) -> np.ndarray:
        """The unit whose domain data collected by ``codes`` belong to."""
        return domain_codes(codes, self.successors)

    def row_nodes(self) -> np.ndarray:
        """Tree node of each response's domain unit (-1 = not in the tree)."""
        ua = self.responses["unit_code"].array
        if len(ua) == 0:
            return np.zeros(0, np.int64)
        return self.tree.ids(self.domain_codes(np.asarray(ua.categories, dtype=object)))[ua.codes]

    def cell_nodes(self) -> np.ndarray:
        """Tree node of each cell's domain unit."""
        return self.tree.ids(self.domain_codes(self.cells["unit_code"].to_numpy(object)))

    def volume_nodes(self) -> np.ndarray:
        """Tree node of each volume row's domain unit."""
        return self.tree.ids(self.domain_codes(self.volumes["unit_code"].to_numpy(object)))

    def parent_codes(self) -> np.ndarray:
        """Code of each response's domain unit's parent as of the tree date ('' at the top)."""
        ids = self.row_nodes()
        par = self.tree.nodes["parent"].to_numpy()[np.maximum(ids, 0)] if len(ids) else np.zeros(0, np.int64)
        codes = self.tree.nodes["code"].to_numpy()
        return np.where((ids >= 0) & (par >= 0), codes[np.maximum(par, 0)] if len(codes) else "", "")

    # -- response-level data for models (drivers)
    def response_frame(self) -> pd.DataFrame:
        """The eligible responses with their design, for models on response-level data.

        Columns: the normalised response columns plus ``cell`` (cell id),
        ``cell_stratum``, ``weight`` (the design weight w), ``cell_N`` (the
        cell's design N for the FPC, NaN when unknown or without FPC),
        ``count`` and ``parent_code``; ``unit_code`` names the domain unit, and under
        ``map_successors`` ``cell_unit`` the collecting unit (whose cells these are).
        """
        R = self.responses.copy()
        R["cell"] = self.cell_id
        R["cell_stratum"] = self.cells["stratum"].to_numpy()[self.cell_id] if len(self.cells) else ""
        R["weight"] = self.weights
        R["cell_N"] = (self.rows.cell_N[self.cell_id] if self.fpc and len(self.cells)
                       else np.full(len(R), np.nan))
        ua = self.responses["unit_code"].array
        if self.successors:
            R["cell_unit"] = R["unit_code"]
            cats = self.domain_codes(np.asarray(ua.categories, dtype=object))
            R["unit_code"] = pd.Categorical(cats[ua.codes]) if len(ua) else R["unit_code"]
        R["parent_code"] = self.parent_codes()
        return R


def domain_codes(codes, successors: dict) -> np.ndarray:
    """Replace collecting-unit codes by their domain unit through ``successors`` (distinct values only)."""
    codes = np.asarray(codes, dtype=object)
    if not successors or len(codes) == 0:
        return codes
    k, uniq = pd.factorize(codes)
    new = np.array([successors.get(c, c) for c in uniq] + [""], dtype=object)
    return new[k]


def tree_date(period: Period | None, options: IndexOptions | None = None) -> dt.date | None:
    """The date of the unit tree an index uses: ``options.as_of``, else the period's last day."""
    as_of = (options or IndexOptions()).as_of
    if isinstance(as_of, str):
        as_of = dt.date.fromisoformat(as_of)
    return as_of or (period.last if period is not None else None)


# ----------------------------------------------------------------------------- building

def build_design(responses: pd.DataFrame, volumes: pd.DataFrame | None = None, units: pd.DataFrame | None = None,
                 *, period: Period | str | None = None, options: IndexOptions | None = None) -> SurveyDesign:
    """Validated inputs, eligibility, tree, cells and weights: everything before estimation.

    Raises :class:`~analysis.errors.InputError` on invalid input or options.
    """
    opts = options or IndexOptions()
    opts.validate()
    if isinstance(period, str):
        try:
            period = parse_period(period, calendar=opts.calendar)
        except ValueError as exc:
            raise InputError([Problem("period", None, None, str(exc))]) from None
    resp, vols, units_f = _validated_inputs(responses, volumes, units)
    elig = _eligibility(resp, period, opts)
    lines = np.flatnonzero(elig.mask) + 2
    R = resp.loc[elig.mask].reset_index(drop=True)

    as_of = tree_date(period, opts)
    data_codes = set(_distinct(R["unit_code"]))
    if vols is not None:
        data_codes |= set(_distinct(vols["unit_code"]))
    tree = tree_as_of(units_f, as_of, extra_codes=data_codes if units_f is None else ())
    # successor mapping changes the domains only (METHODOLOGY §6): cells, weights and FPC
    # stay those of the collecting unit
    smap = successor_map(tree) if opts.map_successors and units_f is not None else {}

    vol = volumes_in_period(vols, period)
    mode = _weights_mode(R, opts, lines)
    R["unit_code"] = pd.Categorical(R["unit_code"])
    R["stratum"] = pd.Categorical(R["stratum"])
    rcount = R["count"].to_numpy(float)
    cell_id, cells = cells_for(R["unit_code"].array, R["stratum"].array, rcount, vol, weights_from=mode,
                               lines=lines)
    if mode == "column":
        w = R["weight"].to_numpy(float)
    else:
        w = cells["w"].to_numpy()[cell_id] if len(cells) else np.zeros(0)
    rows = Design(cell=cell_id, w=w, count=rcount, cell_n=cells["n"].to_numpy(float),
                  cell_N=cells["N"].to_numpy(float), fpc=(mode == "volumes"))
    return SurveyDesign(responses=R, cells=cells, cell_id=cell_id, rows=rows, volumes=vol, tree=tree,
                        successors=smap, weights_from=mode, eligibility=elig, period=period, as_of=as_of,
                        options=opts)


def _distinct(codes: pd.Series) -> list:
    """Distinct values of a code column (categoricals: the used categories, no string hashing)."""
    if isinstance(codes.dtype, pd.CategoricalDtype):
        used = np.unique(codes.cat.codes.to_numpy())
        return list(np.asarray(codes.cat.categories, dtype=object)[used[used >= 0]])
    return list(pd.unique(codes.to_numpy(object)))


def _looks_prepared(frame, source) -> bool:
    """The normalised columns a prepare_* function adds are there (attrs survive slicing)."""
    need = {"responses": {"count": "i", "excluded": "b", "under_18": "b"},
            "volumes": {"line": "i", "transactions": "f"}, "units": {"line": "i"}}[source]
    return all(c in frame.columns and frame[c].dtype.kind == k for c, k in need.items())


def _prepared(frame, fn, source, **kw):
    if frame is None:
        return None
    if frame.attrs.get("analysis_prepared") and _looks_prepared(frame, source):
        return frame
    out = fn(frame, source=source, **kw)
    out.attrs["analysis_prepared"] = True
    return out


def _validated_inputs(responses, volumes, units):
    """Prepared frames; unknown unit codes (or counters) in responses or volumes are one InputError."""
    units_f = _prepared(units, prepare_units, "units")
    resp = _prepared(responses, lambda f, source: prepare_responses(f, source=source), "responses")
    vols = _prepared(volumes, prepare_volumes, "volumes")
    if units_f is not None:
        known = set(units_f["code"])
        counters = known - set(without_counters(units_f)["code"])
        problems = []
        for frame, src in ((resp, "responses"), (vols, "volumes")):
            if frame is None:
                continue
            try:
                check_known_units(frame["unit_code"], known, src, "unit_code")
            except InputError as exc:
                problems += exc.problems
            problems += _counter_codes(frame, counters, src)
        if problems:
            raise InputError(problems)
    return resp, vols, units_f


def _counter_codes(frame: pd.DataFrame, counters: set, source: str) -> list:
    """A problem per counter code used as a unit code (counters are not units of the index)."""
    if not counters:
        return []
    codes = frame["unit_code"].astype(object).to_numpy()
    bad = pd.Series(codes).isin(counters).to_numpy()
    lines = frame["line"].to_numpy() if "line" in frame.columns else np.arange(len(frame)) + 2
    return [Problem(source, int(lines[np.flatnonzero(codes == c)[0]]), "unit_code",
                    f"{c!r} is a counter (kind = counter) in the unit file, not a unit; use its unit's code")
            for c in sorted(set(codes[bad]))]


def _eligibility(resp: pd.DataFrame, period, opts: IndexOptions) -> Eligibility:
    """Eligible rows and the counts of those left out, by reason."""
    count = resp["count"].to_numpy(np.int64)
    in_period = np.ones(len(resp), dtype=bool)
    if period is not None and "submitted_at" in resp.columns:
        ts = resp["submitted_at"]
        in_period = ((ts >= pd.Timestamp(period.start)) & (ts < pd.Timestamp(period.end))).to_numpy()
    excl = resp["excluded"].to_numpy(bool) & (not opts.include_excluded)
    minor = resp["under_18"].to_numpy(bool) & (not opts.include_under_18)
    left_out = {
        "outside_period": int(count[~in_period].sum()),
        "excluded": int(count[in_period & excl].sum()),
        "under_18": int(count[in_period & ~excl & minor].sum()),
    }
    eligible = in_period & ~excl & ~minor & (count > 0)
    cutoff = resp.loc[eligible, "submitted_at"].max() if "submitted_at" in resp.columns and eligible.any() else None
    return Eligibility(n_read=int(count.sum()), n_used=int(count[eligible].sum()), left_out=left_out,
                       data_cutoff=cutoff, mask=eligible)


def _weights_mode(R: pd.DataFrame, opts: IndexOptions, lines) -> str:
    """The weights source actually used; ``column`` needs a weight on every eligible row."""
    mode = opts.weights_from
    if mode == "auto":
        mode = "column" if ("weight" in R.columns and R["weight"].notna().any()) else "volumes"
    if mode == "column" and ("weight" not in R.columns or R["weight"].isna().any()):
        bad = np.flatnonzero(R["weight"].isna().to_numpy()) if "weight" in R.columns else []
        raise InputError([Problem("responses", int(lines[i]), "weight", "weight is missing") for i in bad[:50]]
                         or [Problem("responses", 1, "weight", "weights_from=column needs a weight column")])
    return mode
