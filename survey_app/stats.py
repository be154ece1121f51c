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
from typing import Iterable, Optional

import numpy as np
import pandas as pd
import sqlalchemy as sa
from flask import current_app

from analysis import IndexOptions, IndexResult, Period
from analysis import compute_index as analysis_compute_index
from analysis.targets import target_status

from .extensions import db
from .models import PATTERN_ITEMS, Counter, Response, Target, Unit, Volume
from .periods import resolve_period

UNIT_FRAME_COLUMNS = ["code", "name_vi", "name_en", "kind", "parent_code", "valid_from", "valid_to",
                      "successor_code"]


def _period(period) -> Optional[Period]:
    if period is None or isinstance(period, Period):
        return period
    return resolve_period(str(period))


def response_frame(period=None, unit_ids: Optional[Iterable[int]] = None, *, by: str = "unit") -> pd.DataFrame:
    """Responses of the period (and units) as compressed analysis rows:
    unit_code, stratum, excluded, age_group, <the six items>, count.

    One GROUP BY over `responses` (its covering index `ix_responses_stats`):
    the answers to the six shared items are read from the packed
    `Response.pattern` and decoded here.  `by="counter"` keys the rows by
    counter instead (unit_code = the counter's code; responses without a
    counter are left out), for comparing the counters of a unit."""
    period = _period(period)
    under18 = sa.case((Response.age_group == "under_18", "under_18"), else_="").label("age_group")
    key = Response.counter_id if by == "counter" else Response.unit_id
    keys = [key, Response.stratum, Response.excluded, under18, Response.pattern]
    q = sa.select(*keys, sa.func.count().label("count")).group_by(*keys)
    if by == "counter":
        q = q.where(Response.counter_id.is_not(None))
    if period is not None:
        q = q.where(Response.submitted_at >= period.start, Response.submitted_at < period.end)
    if unit_ids is not None:
        q = q.where(Response.unit_id.in_(sorted(set(unit_ids))))
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
    return frame


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
    frame = pd.DataFrame(db.session.execute(q).all(),
                         columns=["unit_code", "period_start", "period_end", "stratum", "transactions"])
    for c in ("period_start", "period_end"):
        frame[c] = frame[c].map(lambda d: d.isoformat())
    return frame


def target_spec() -> dict:
    """Targets as `analysis.targets` reads them: {(year, kind): t, year: t, '*': default}."""
    spec: dict = {"*": float(current_app.config["DEFAULT_TARGET"])}
    for t in db.session.scalars(sa.select(Target).where(Target.unit_id.is_(None))):
        spec[(t.year, t.unit_kind) if t.unit_kind else t.year] = t.target
    return spec


def _unit_targets(year: Optional[int]) -> dict[str, float]:
    if year is None:
        return {}
    q = sa.select(Unit.code, Target.target).join(Unit, Target.unit_id == Unit.id).where(Target.year == year)
    return dict(db.session.execute(q).all())


def compute(period=None, *, unit_ids: Optional[Iterable[int]] = None, options: Optional[IndexOptions] = None,
            **option_overrides) -> IndexResult:
    """`analysis.compute_index` over the database for a period (label or Period),
    optionally restricted to a set of unit ids (a user's scope)."""
    period = _period(period)
    opts = options or IndexOptions()
    if opts.target is None:
        opts = dataclasses.replace(opts, target=target_spec())
    opts = dataclasses.replace(opts, **option_overrides)  # IndexOptions is frozen; a misspelled name raises
    frame = response_frame(period, unit_ids)
    result = analysis_compute_index(frame, volumes_frame(period, unit_ids), units_frame(), period=period,
                                    options=opts)
    if unit_ids is not None:
        # A scoped view shows its own units only: no parent built from a part of its data.
        codes = set(db.session.scalars(sa.select(Unit.code).where(Unit.id.in_(sorted(set(unit_ids))))))
        result.table = result.table[result.table["unit_code"].isin(codes)].reset_index(drop=True)
    # Responses outside the period never left SQL: count them for the record.
    scope = [] if unit_ids is None else [Response.unit_id.in_(sorted(set(unit_ids)))]
    if period is not None:
        outside = sa.or_(Response.submitted_at < period.start, Response.submitted_at >= period.end)
        n_out = int(db.session.scalar(sa.select(sa.func.count()).select_from(Response).where(outside, *scope)))
        result.meta.setdefault("n_left_out", {})["outside_period"] = n_out
        result.meta["n_read"] = int(result.meta.get("n_read", 0)) + n_out
    cutoff = sa.select(sa.func.max(Response.submitted_at)).where(*scope)
    if period is not None:
        cutoff = cutoff.where(Response.submitted_at >= period.start, Response.submitted_at < period.end)
    last = db.session.scalar(cutoff)
    if last is not None:
        if last.tzinfo is None:  # aggregate results bypass the column type on SQLite
            last = last.replace(tzinfo=dt.timezone.utc)
        result.meta["data_cutoff"] = last.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    overrides = _unit_targets(getattr(period, "year", None))
    if overrides and len(result.table):
        t = result.table
        mask = t["unit_code"].isin(overrides)
        if mask.any():
            t.loc[mask, "target"] = t.loc[mask, "unit_code"].map(overrides)
            t.loc[mask, "target_status"] = target_status(
                t.loc[mask, "index_ci_low"].to_numpy(float), t.loc[mask, "index_ci_high"].to_numpy(float),
                t.loc[mask, "target"].to_numpy(float))
    result.meta["source"] = "database"
    result.meta["computed_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return result


def compute_index(period, *, unit_ids=None, level=None, ci="wilson", as_of=None, rollup="pooled",
                  **kw) -> IndexResult:
    """Keyword-style convenience used by the staff pages."""
    return compute(period, unit_ids=unit_ids, ci=ci, as_of=as_of, rollup=rollup, level_filter=level, **kw)
