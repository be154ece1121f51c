"""The bridge between the database and `analysis`: every figure the app shows
or exports comes from here, and every statistic is computed by `analysis`.

Aggregation is pushed into SQL: responses are grouped by (unit, stratum,
eligibility, answer pattern) with a `count` — the pattern is the packed
`Response.pattern` column, so this is one GROUP BY on one table, answered from
a covering index — and the frame handed to `analysis.compute_index` grows with
the number of distinct cells × answer patterns, not with the number of
responses.  `analysis` treats a row with `count = k` exactly like k identical
rows, so the results equal those of the CSV path on the same data.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Callable, Iterable, Optional

import numpy as np
import pandas as pd
import sqlalchemy as sa
from flask import current_app

from analysis import IndexOptions, IndexResult, InputError, Period
from analysis import compute_index as analysis_compute_index
from analysis.periods import previous_period
from analysis.schema import UNDER_18, UNIT_COLUMNS, VOLUME_COLUMNS
from analysis.targets import resolve_targets, target_status

from ..extensions import db
from ..models import PATTERN_ITEMS, Counter, Response, Target, Unit, Volume
from .periods import local_today, resolve_period
from .responses import in_period

DRIVERS_MIN_N = 100

UNIT_FRAME_COLUMNS = list(UNIT_COLUMNS)


def _period(period) -> Optional[Period]:
    if period is None or isinstance(period, Period):
        return period
    return resolve_period(str(period))


def _cells_query(period, unit_ids, by: str, buckets: tuple[int, int]):
    """The GROUP BY of `response_frame` over `response_cells` (aggregates.py):
    the same rows as over `responses`, summed over counters and half-months."""
    from .aggregates import cells_table

    c = cells_table().c
    key = c.counter_id if by == "counter" else c.unit_id
    under18 = sa.case((c.under18.is_(True), UNDER_18), else_="").label("age_group")
    keys = [key, c.stratum, c.excluded, under18, c.pattern]
    total = sa.func.sum(c.n)
    q = sa.select(*keys, total.label("count")).group_by(*keys).having(total > 0)
    if by == "counter":
        q = q.where(c.counter_id != 0)
    if buckets != (0, 99999999):
        q = q.where(c.bucket >= buckets[0], c.bucket < buckets[1])
    if unit_ids is not None:
        q = q.where(c.unit_id.in_(sorted(set(unit_ids))))
    return q


def _responses_query(period, unit_ids, by: str):
    under18 = sa.case((Response.age_group == UNDER_18, UNDER_18), else_="").label("age_group")
    key = Response.counter_id if by == "counter" else Response.unit_id
    keys = [key, Response.stratum, Response.excluded, under18, Response.pattern]
    q = sa.select(*keys, sa.func.count().label("count")).group_by(*keys)
    if by == "counter":
        q = q.where(Response.counter_id.is_not(None))
    if period is not None:
        q = q.where(Response.submitted_at >= period.start, Response.submitted_at < period.end)
    if unit_ids is not None:
        q = q.where(Response.unit_id.in_(sorted(set(unit_ids))))
    return q


def response_frame(period=None, unit_ids: Optional[Iterable[int]] = None, *, by: str = "unit",
                   source: str = "cells") -> pd.DataFrame:
    """Responses of the period (and units) as compressed analysis rows:
    unit_code, stratum, excluded, age_group, <the six items>, count.

    Read from `response_cells`, the counts the database keeps per cell
    (services/aggregates.py), when the period is made of whole half-months
    (every report and calendar period); otherwise, or with
    `source="responses"`, one GROUP BY over `responses` (its covering index
    `ix_responses_stats`).  Either way the answers to the six shared items
    come packed (`Response.pattern`) and are decoded here.  `by="counter"`
    keys the rows by counter instead (unit_code = the counter's code;
    responses without a counter are left out), for comparing the counters of
    a unit."""
    from .aggregates import aligned_buckets

    period = _period(period)
    buckets = aligned_buckets(period) if source == "cells" else None
    q = (_cells_query(period, unit_ids, by, buckets) if buckets is not None
         else _responses_query(period, unit_ids, by))
    rows = db.session.execute(q).all()
    table = Counter if by == "counter" else Unit
    codes = dict(db.session.execute(sa.select(table.id, table.code)).all())
    frame = pd.DataFrame(rows, columns=["key_id", "stratum", "excluded", "age_group", "pattern", "count"])
    frame.insert(0, "unit_code", frame.pop("key_id").map(codes))
    frame["excluded"] = frame["excluded"].astype(bool).astype(int).astype(str)
    pattern = frame.pop("pattern").to_numpy(dtype="int64")
    for i, key in enumerate(PATTERN_ITEMS):
        value = (pattern // 6 ** i) % 6
        frame[key] = np.where(value == 0, np.nan, value.astype(float))
    frame["count"] = frame.pop("count").astype("int64")
    # One order whatever the database returned: a closed period recomputes to the last digit (services.publishing).
    return frame.sort_values(["unit_code", "stratum", "excluded", "age_group", *PATTERN_ITEMS], kind="mergesort",
                             na_position="first").reset_index(drop=True)


def count_outside(period, unit_ids) -> int:
    """Responses of the units outside the period (for the record: they never
    leave SQL), from the cells when the period is whole half-months."""
    from .aggregates import aligned_buckets, cells_table

    buckets = aligned_buckets(period)
    if buckets is not None:
        c = cells_table().c
        q = sa.select(sa.func.coalesce(sa.func.sum(c.n), 0)).where(
            sa.or_(c.bucket < buckets[0], c.bucket >= buckets[1]))
        if unit_ids is not None:
            q = q.where(c.unit_id.in_(unit_ids))
        return int(db.session.scalar(q) or 0)
    q = sa.select(sa.func.count()).select_from(Response).where(
        sa.or_(Response.submitted_at < period.start, Response.submitted_at >= period.end))
    if unit_ids is not None:
        q = q.where(Response.unit_id.in_(unit_ids))
    return int(db.session.scalar(q) or 0)


def last_submitted(period, unit_ids) -> Optional[dt.datetime]:
    """The newest submission of the units in the period (the data cut-off)."""
    q = sa.select(sa.func.max(Response.submitted_at))
    if period is not None:
        q = q.where(Response.submitted_at >= period.start, Response.submitted_at < period.end)
    if unit_ids is not None:
        q = q.where(Response.unit_id.in_(unit_ids))
    last = db.session.scalar(q)
    if last is None:
        return None
    if isinstance(last, str):  # SQLite returns some aggregates as text
        last = dt.datetime.fromisoformat(last)
    if last.tzinfo is None:  # aggregate results bypass the column type on SQLite
        last = last.replace(tzinfo=dt.timezone.utc)
    return last


def units_frame() -> pd.DataFrame:
    """The unit tree in the DESIGN.md unit CSV shape (service units; counters
    are not units of the index)."""
    parent = sa.orm.aliased(Unit)
    succ = sa.orm.aliased(Unit)
    q = (sa.select(Unit.code, Unit.name_vi, Unit.name_en, Unit.kind, parent.code, Unit.valid_from,
                   Unit.valid_to, succ.code)
         .outerjoin(parent, Unit.parent_id == parent.id).outerjoin(succ, Unit.successor_id == succ.id)
         .order_by(Unit.code))
    frame = pd.DataFrame(db.session.execute(q).all(), columns=UNIT_FRAME_COLUMNS)
    for c in ("valid_from", "valid_to"):
        frame[c] = frame[c].map(lambda d: d.isoformat() if d else "")
    return frame.fillna("")


def volumes_frame(period: Optional[Period] = None, unit_ids: Optional[Iterable[int]] = None) -> pd.DataFrame:
    """Volume rows (DESIGN volume CSV shape) overlapping the period."""
    q = sa.select(Unit.code, Volume.period_start, Volume.period_end, Volume.stratum, Volume.transactions).join(
        Unit, Volume.unit_id == Unit.id)
    if unit_ids is not None:
        q = q.where(Volume.unit_id.in_(sorted(set(unit_ids))))
    if period is not None:
        q = q.where(Volume.period_end >= period.first, Volume.period_start <= period.last)
    from .integration import event_volume_rows  # volumes from dossier events (METHODOLOGY §7)

    frame = pd.DataFrame(db.session.execute(q).all() + event_volume_rows(period, unit_ids),
                         columns=list(VOLUME_COLUMNS))
    for c in ("period_start", "period_end"):
        frame[c] = frame[c].map(lambda d: d.isoformat())
    return frame


def target_spec() -> dict:
    """Targets as `analysis.targets` reads them: {(year, ("unit", code)): t,
    (year, kind): t, year: t, '*': default}."""
    spec: dict = {"*": float(current_app.config["DEFAULT_TARGET"])}
    q = sa.select(Target.year, Target.unit_kind, Unit.code, Target.target).outerjoin(Unit, Target.unit_id == Unit.id)
    for year, kind, code, target in db.session.execute(q):
        if code is not None:
            spec[(year, ("unit", code))] = target
        else:
            spec[(year, kind) if kind else year] = target
    return spec


def build_options(options: Optional[IndexOptions] = None, **overrides) -> IndexOptions:
    """The options of a computation: a copy of `options` (never changed) with
    `overrides` (`dataclasses.replace`: a misspelled name raises TypeError)
    and, unless given, the targets stored in the database."""
    base = options if options is not None else IndexOptions()
    if base.target is None and overrides.get("target") is None:
        overrides["target"] = target_spec()
    return dataclasses.replace(base, **overrides)


def _scope(unit_ids: Optional[Iterable[int]]) -> Optional[list[int]]:
    return None if unit_ids is None else sorted(set(unit_ids))


def data_scope(unit_ids: Optional[Iterable[int]], period=None, options: Optional[IndexOptions] = None,
               **option_overrides) -> Optional[list[int]]:
    """The units whose responses and volumes the figures of `unit_ids` need:
    themselves, and when mapped to today's units (`map_successors`) every
    retired unit mapped into them (scope after mapping,
    `services.units.mapped_unit_ids`).  None = every unit."""
    ids = _scope(unit_ids)
    opts = options if options is not None else IndexOptions()
    if option_overrides:
        opts = dataclasses.replace(opts, **option_overrides)
    if ids is None or not opts.map_successors:
        return ids
    from analysis.design import tree_date

    from .units import mapped_unit_ids

    return sorted(mapped_unit_ids(ids, tree_date(_period(period), opts)))


def compute(period=None, *, unit_ids: Optional[Iterable[int]] = None, options: Optional[IndexOptions] = None,
            **option_overrides) -> IndexResult:
    """`analysis.compute_index` over the database for a period (label or Period),
    optionally restricted to a set of unit ids (a user's scope)."""
    period = _period(period)
    opts = build_options(options, **option_overrides)
    visible = _scope(unit_ids)  # the units shown
    ids = data_scope(visible, period, opts)  # the units whose data they need, applied to every query below
    frame = response_frame(period, ids)
    result = analysis_compute_index(frame, volumes_frame(period, ids), units_frame(), period=period, options=opts)
    t = result.table
    if ids is not None:
        # A scoped view shows its own units only: no parent built from a part of its data.
        codes = set(db.session.scalars(sa.select(Unit.code).where(Unit.id.in_(visible))))
        t = result.table = t[t["unit_code"].isin(codes)].reset_index(drop=True)
    # Responses outside the period never left SQL: count them for the record.
    if period is not None:
        n_out = count_outside(period, ids)
        result.meta.setdefault("n_left_out", {})["outside_period"] = int(n_out)
        result.meta["n_read"] = int(result.meta.get("n_read", 0)) + int(n_out)
    last = last_submitted(period, ids)
    if last is not None:
        result.meta["data_cutoff"] = last.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    if isinstance(opts.target, dict) and any(isinstance(k, tuple) and isinstance(k[-1], tuple) for k in opts.target) \
            and len(t):
        # Units' own targets (resolved by `analysis.targets` with the unit codes).
        t["target"] = resolve_targets(opts.target, getattr(period, "year", None), t["kind"], t["unit_code"])
        t["target_status"] = target_status(t["index_ci_low"].to_numpy(float), t["index_ci_high"].to_numpy(float),
                                           t["target"].to_numpy(float))
    from .integration import add_dossier_columns  # offered, via links, QĐ 766 (METHODOLOGY §7)

    result.table = add_dossier_columns(result.table, period, ids, result.meta)
    result.meta["source"] = "database"
    result.meta["computed_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return result


def compute_index(period, *, unit_ids=None, level=None, ci="wilson", as_of=None, rollup="pooled",
                  **kw) -> IndexResult:
    """Keyword-style convenience used by the staff pages."""
    return compute(period, unit_ids=unit_ids, ci=ci, as_of=as_of, rollup=rollup, level_filter=level, **kw)


# ---------------------------------------------------------------- unit page figures

def table_of(res) -> pd.DataFrame:
    return res.table if res is not None else pd.DataFrame(columns=["unit_code", "level", "kind"])


def unit_row(table: pd.DataFrame, code: str) -> Optional[dict]:
    """The row describing unit `code`: its roll-up row when it has children with
    data (the pooled figure of its subtree), else its own unit row."""
    rows = table[table["unit_code"] == code]
    if rows.empty:
        return None
    roll = rows[rows["level"] != "unit"]
    return (roll if not roll.empty else rows).iloc[0].to_dict()


def with_trend(table: pd.DataFrame, period, unit_ids, index_of: Callable, data_ids=None) -> pd.DataFrame:
    """Add `trend_direction` (up/down only when significant) and `trend_change`
    from `analysis.trend.trend` against the previous period (`index_of(period)`:
    the IndexResult of a period, or None).  `data_ids`: the units whose data
    the figures read (`data_scope`; default `unit_ids`)."""
    from analysis.trend import trend

    table = table.copy()
    table["trend_direction"] = ""
    table["trend_change"] = float("nan")
    if table.empty:
        return table
    before = previous_period(period)
    first = first_response_at(unit_ids if data_ids is None else data_ids)
    if first is None or first >= before.end:
        return table
    prev = index_of(before)
    if prev is None or prev.table.empty:
        return table
    # The published interval too: a period whose SE is reported 0 gets its working SE from it (METHODOLOGY §4).
    cols = ["unit_code", "level", "index", "index_se", "index_ci_low", "index_ci_high"]
    tr = trend(table[cols], prev.table[cols], key=["unit_code", "level"], carry=())
    tr = tr.set_index(["unit_code", "level"])
    idx = pd.MultiIndex.from_frame(table[["unit_code", "level"]])
    sig = tr["significant"].reindex(idx).fillna(False).astype(bool).to_numpy()
    direction = tr["direction"].reindex(idx).fillna("").to_numpy()
    table["trend_direction"] = [d if s else "" for d, s in zip(direction, sig)]
    table["trend_change"] = tr["change"].reindex(idx).to_numpy()
    return table


def trend_series(unit_code: str, period, unit_ids, index_of: Callable, by: str = "year") -> list[dict]:
    """Index of the unit per report year (the period's year and the two before),
    or per report quarter of the period's year and the year before (`by="quarter"`);
    `index_of(period)` gives the IndexResult of a period, or None."""
    year = period.year or local_today().year
    if by == "quarter":
        labels = [(f"{y}-Q{q}", f"Q{q}/{y}") for y in (year - 1, year) for q in range(1, 5)]
    else:
        labels = [(str(y), str(y)) for y in (year - 2, year - 1, year)]
    out = []
    now = dt.datetime.now(dt.timezone.utc)
    first = first_response_at(unit_ids)
    for label, short in labels:
        p = resolve_period(label)
        if p.start > now or first is None or p.end <= first:
            if p.start <= now:
                out.append(dict(label=short, index=None, low=None, high=None, n=0))
            continue
        res = index_of(p)
        row = unit_row(table_of(res), unit_code) if res is not None else None
        out.append(dict(label=short, index=row.get("index") if row else None,
                        low=row.get("index_ci_low") if row else None,
                        high=row.get("index_ci_high") if row else None,
                        n=int(row.get("n") or 0) if row else 0))
    return out


def first_response_at(unit_ids) -> Optional[dt.datetime]:
    """When the first response of these units was submitted (None: never)."""
    q = sa.select(sa.func.min(Response.submitted_at))
    if unit_ids is not None:
        q = q.where(Response.unit_id.in_(list(unit_ids)))
    ts = db.session.scalar(q)
    if ts is not None and ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.timezone.utc)
    return ts



def _eligible_age():
    """Responses the index counts by age: all but under-18 (METHODOLOGY §2)."""
    return sa.or_(Response.age_group.is_(None), Response.age_group != UNDER_18)


def distribution(unit_ids, period, source: str = "cells") -> dict[str, list[int]]:
    """Counts of answers 1..5 per item among the eligible responses (descriptive):
    neither excluded nor under 18, as in the index."""
    from .aggregates import aligned_buckets, cells_table

    # One GROUP BY on the packed answer pattern (see models.answer_pattern), decoded here.
    buckets = aligned_buckets(period) if source == "cells" else None
    if buckets is not None:
        c = cells_table().c
        q = (sa.select(c.pattern, sa.func.sum(c.n))
             .where(c.unit_id.in_(list(unit_ids)), c.excluded.is_(False), c.under18.is_(False),
                    c.bucket >= buckets[0], c.bucket < buckets[1])
             .group_by(c.pattern))
    else:
        q = (sa.select(Response.pattern, sa.func.count())
             .where(in_period(unit_ids, period), Response.excluded.is_(False), _eligible_age())
             .group_by(Response.pattern))
    out = {k: [0, 0, 0, 0, 0] for k in PATTERN_ITEMS}
    for pattern, n in db.session.execute(q):
        for i, key in enumerate(PATTERN_ITEMS):
            v = (int(pattern or 0) // 6 ** i) % 6
            if v:
                out[key][v - 1] += int(n or 0)
    return out


def drivers_table(unit_code: str, period, unit_ids, res, options: Optional[IndexOptions] = None,
                  **option_overrides) -> Optional[pd.DataFrame]:
    """`analysis.drivers.drivers` over the unit's eligible responses with the
    design's own weights, cells and FPC (`analysis.weighted_responses`, the same
    design as the index `res`); None when there are too few responses."""
    from analysis import weighted_responses
    from analysis.drivers import drivers

    if res is None:
        return None
    row = unit_row(res.table, unit_code)
    if not row or (row.get("n") or 0) < DRIVERS_MIN_N:
        return None
    period = _period(period)
    opts = build_options(options, **option_overrides)
    ids = data_scope(unit_ids, period, opts)
    frame = response_frame(period, ids)
    if len(frame) == 0:
        return None
    try:
        weighted, _ = weighted_responses(frame, volumes_frame(period, ids), units_frame(), period=period,
                                         options=opts)
        # The full design: cells as strata with their FPC (as `python -m analysis drivers` does).
        d = drivers(weighted, weight="weight", min_n=DRIVERS_MIN_N, count="count", strata="cell", fpc="cell_N")
    except (InputError, ValueError, KeyError):
        return None
    if d.empty or not (d["status"] == "ok").any():
        return None
    return d


def counters_table(period, unit_ids) -> pd.DataFrame:
    """Counters of the units compared: `analysis.compute_index` with each
    counter as a domain (unweighted: counters share their unit's volume)."""

    counters = db.session.execute(sa.select(Counter.id, Counter.code, Counter.name_vi, Counter.name_en, Unit.code)
                                  .join(Unit, Unit.id == Counter.unit_id)
                                  .where(Counter.unit_id.in_(list(unit_ids)))).all()
    if len(counters) < 2:
        return pd.DataFrame()
    f = response_frame(period, unit_ids, by="counter")
    if f.empty:
        return pd.DataFrame()
    try:
        res = analysis_compute_index(f, None, None, period=period,
                            options=IndexOptions(weights_from="none", level_filter="unit"))
    except InputError:
        return pd.DataFrame()
    names = {c[1]: (c[2], c[3], c[4]) for c in counters}
    t = res.table.copy()
    t["name_vi"] = [names.get(c, ("", "", ""))[0] for c in t["unit_code"]]
    t["name_en"] = [names.get(c, ("", "", ""))[1] for c in t["unit_code"]]
    t["unit_of"] = [names.get(c, ("", "", ""))[2] for c in t["unit_code"]]
    return t.sort_values("unit_code").reset_index(drop=True)
