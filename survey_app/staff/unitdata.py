"""Data behind the overview and the unit page, shared by the HTML pages and
their SVG chart endpoints.  Every estimate comes from `stats` / `analysis`;
this module selects rows, joins names and counts answers for display.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

import pandas as pd
from flask import current_app, flash
from flask_babel import gettext as _
from sqlalchemy import and_, func, select

from analysis import InputError
from analysis.periods import previous_period

from .. import stats
from ..extensions import db
from ..models import PATTERN_ITEMS, Answer, Counter, Response, Unit
from ..periods import resolve_period
from .common import ELEMENTS, cached, index_result, isnum, records, response_frame

DRIVERS_MIN_N = 100


def safe_index(period, unit_ids, quiet: bool = False, **options):
    """The index result, or None with a message when the data cannot be
    analysed (e.g. a response in a procedure field that has no volume).
    `options` go to `stats.compute_index` (e.g. map_successors=True)."""
    try:
        return index_result(period, unit_ids, **options)
    except InputError as exc:
        if not quiet:
            flash(_("The figures could not be computed: %(why)s", why=str(exc)[:500]), "error")
        return None
    except (KeyError, ValueError, IndexError) as exc:  # an analysis edge case must not take the page down
        current_app.logger.warning("index computation failed for %s: %r", getattr(period, "label", period), exc)
        if not quiet:
            flash(_("The figures could not be computed for this period (%(why)s).", why=type(exc).__name__),
                  "error")
        return None


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


def rows_by_code(table: pd.DataFrame, codes) -> dict[str, dict]:
    """`unit_row` for many codes in one pass."""
    sub = table[table["unit_code"].isin(set(codes))]
    out: dict[str, dict] = {}
    for rec in records(sub):
        prev = out.get(rec["unit_code"])
        if prev is None or (prev["level"] == "unit" and rec["level"] != "unit"):
            out[rec["unit_code"]] = rec
    return out


def trended(res, period, unit_ids, **options) -> pd.DataFrame:
    """The index table of `res` with the trend columns, cached."""
    ids = None if unit_ids is None else sorted(unit_ids)
    return cached("trended", lambda: with_trend(table_of(res), period, unit_ids, **options), period, ids,
                  res is None, options)


def with_trend(table: pd.DataFrame, period, unit_ids, **options) -> pd.DataFrame:
    """Add `trend_direction` (up/down only when significant) and `trend_change`
    from `analysis.trend.trend` against the previous period."""
    from analysis.trend import trend

    table = table.copy()
    table["trend_direction"] = ""
    table["trend_change"] = float("nan")
    if table.empty:
        return table
    before = previous_period(period)
    first = first_response_at(unit_ids)
    if first is None or first >= before.end:
        return table
    prev = safe_index(before, unit_ids, quiet=True, **options)
    if prev is None or prev.table.empty:
        return table
    cols = ["unit_code", "level", "index", "index_se"]
    tr = trend(table[cols], prev.table[cols], key=["unit_code", "level"], carry=())
    tr = tr.set_index(["unit_code", "level"])
    idx = pd.MultiIndex.from_frame(table[["unit_code", "level"]])
    sig = tr["significant"].reindex(idx).fillna(False).astype(bool).to_numpy()
    direction = tr["direction"].reindex(idx).fillna("").to_numpy()
    table["trend_direction"] = [d if s else "" for d, s in zip(direction, sig)]
    table["trend_change"] = tr["change"].reindex(idx).to_numpy()
    return table


def trend_series(unit: Unit, period, unit_ids, by: str = "year") -> list[dict]:
    """Index of the unit per report year (the period's year and the two before),
    or per report quarter of the period's year and the year before (`by="quarter"`)."""
    year = period.year or dt.date.today().year
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
        res = safe_index(p, unit_ids, quiet=True)
        row = unit_row(table_of(res), unit.code) if res is not None else None
        out.append(dict(label=short, index=row.get("index") if row else None,
                        low=row.get("index_ci_low") if row else None,
                        high=row.get("index_ci_high") if row else None,
                        n=int(row.get("n") or 0) if row else 0))
    return out


def first_response_at(unit_ids) -> Optional[dt.datetime]:
    """When the first response of these units was submitted (None: never)."""
    q = select(func.min(Response.submitted_at))
    if unit_ids is not None:
        q = q.where(Response.unit_id.in_(list(unit_ids)))
    ts = db.session.scalar(q)
    if ts is not None and ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.timezone.utc)
    return ts


def elements_of(row: Optional[dict]) -> list[dict]:
    out = []
    for e in ELEMENTS + ("overall",):
        key = "overall" if e == "overall" else e
        if not row:
            out.append(dict(key=key, rate=None, low=None, high=None, n=0))
            continue
        out.append(dict(key=key, rate=row.get(f"{key}_rate"), low=row.get(f"{key}_ci_low"),
                        high=row.get(f"{key}_ci_high"), n=int(row.get(f"{key}_n") or 0)))
    return out


def _resp_filter(unit_ids, period):
    return and_(Response.unit_id.in_(list(unit_ids)), Response.submitted_at >= period.start,
                Response.submitted_at < period.end)


def distribution(unit_ids, period) -> dict[str, list[int]]:
    """Counts of answers 1..5 per item among the eligible responses (descriptive)."""
    return cached("distribution", lambda: _distribution(unit_ids, period), period, sorted(unit_ids))


def _distribution(unit_ids, period) -> dict[str, list[int]]:
    # One GROUP BY on the packed answer pattern (see models.answer_pattern), decoded here.
    q = (select(Response.pattern, func.count()).where(_resp_filter(unit_ids, period), Response.excluded.is_(False))
         .group_by(Response.pattern))
    out = {k: [0, 0, 0, 0, 0] for k in PATTERN_ITEMS}
    for pattern, n in db.session.execute(q):
        for i, key in enumerate(PATTERN_ITEMS):
            v = (int(pattern or 0) // 6 ** i) % 6
            if v:
                out[key][v - 1] += int(n)
    return out


def drivers_table(unit: Unit, period, unit_ids, res) -> Optional[pd.DataFrame]:
    """`analysis.drivers.drivers` over the unit's responses, weighted with the
    design weights of its cells; None when there are too few responses."""
    return cached("drivers", lambda: _drivers_table(unit, period, unit_ids, res), unit.code, period,
                  sorted(unit_ids))


def _drivers_table(unit: Unit, period, unit_ids, res) -> Optional[pd.DataFrame]:
    from analysis.drivers import drivers

    if res is None:
        return None
    row = unit_row(res.table, unit.code)
    if not row or (row.get("n") or 0) < DRIVERS_MIN_N:
        return None
    frame = response_frame(period, unit_ids)
    if frame is None or len(frame) == 0:
        return None
    f = frame.copy()
    for k in ("overall",) + ELEMENTS:
        if k in f.columns:
            f[k] = pd.to_numeric(f[k], errors="coerce")
    cells = res.cells
    if cells is not None and len(cells):
        w = cells.set_index(["unit_code", "stratum"])["w"]
        strat = f["stratum"].fillna("_all").replace("", "_all") if "stratum" in f.columns else "_all"
        key = pd.MultiIndex.from_arrays([f["unit_code"], strat])
        wt = w.reindex(key).to_numpy()
        fallback = w.reindex(pd.MultiIndex.from_arrays([f["unit_code"], ["_all"] * len(f)])).to_numpy()
        f["weight"] = pd.Series(wt).fillna(pd.Series(fallback)).fillna(1.0).to_numpy()
    else:
        f["weight"] = 1.0
    if "excluded" in f.columns:
        f["excluded"] = pd.to_numeric(f["excluded"], errors="coerce").fillna(0).astype(int)
    try:
        d = drivers(f, weight="weight", min_n=DRIVERS_MIN_N, count="count" if "count" in f.columns else None)
    except (ValueError, KeyError):
        return None
    if d.empty or not (d["status"] == "ok").any():
        return None
    return d


def counters_table(unit: Unit, period, unit_ids) -> pd.DataFrame:
    """Counters of the unit's subtree compared: `analysis.compute_index` with each
    counter as a domain (unweighted: counters share their unit's volume)."""
    return cached("counters", lambda: _counters_table(unit, period, unit_ids), period, sorted(unit_ids))


def _counters_table(unit: Unit, period, unit_ids) -> pd.DataFrame:
    from analysis import IndexOptions, compute_index

    counters = db.session.execute(select(Counter.id, Counter.code, Counter.name_vi, Counter.name_en, Unit.code)
                                  .join(Unit, Unit.id == Counter.unit_id)
                                  .where(Counter.unit_id.in_(list(unit_ids)))).all()
    if len(counters) < 2:
        return pd.DataFrame()
    f = stats.response_frame(period, unit_ids, by="counter")
    if f.empty:
        return pd.DataFrame()
    try:
        res = compute_index(f, None, None, period=period,
                            options=IndexOptions(weights_from="none", level_filter="unit"))
    except InputError:
        return pd.DataFrame()
    names = {c[1]: (c[2], c[3], c[4]) for c in counters}
    t = res.table.copy()
    t["name_vi"] = [names.get(c, ("", "", ""))[0] for c in t["unit_code"]]
    t["name_en"] = [names.get(c, ("", "", ""))[1] for c in t["unit_code"]]
    t["unit_of"] = [names.get(c, ("", "", ""))[2] for c in t["unit_code"]]
    return t.sort_values("unit_code").reset_index(drop=True)


def comments_query(unit_ids, period, element: str = "", rating: str = ""):
    q = (select(Response.id, Response.submitted_at, Response.comment, Response.channel, Counter.code)
         .outerjoin(Counter, Counter.id == Response.counter_id)
         .where(_resp_filter(unit_ids, period), Response.comment.is_not(None), Response.comment != ""))
    if element in ELEMENTS + ("overall",) and rating in ("satisfied", "unsatisfied"):
        cond = Answer.value >= 4 if rating == "satisfied" else Answer.value <= 3
        q = q.where(Response.id.in_(select(Answer.response_id).where(Answer.item_key == element, cond)))
    return q.order_by(Response.submitted_at.desc(), Response.id)


def flagged_query(unit_ids, period):
    return (select(Response)
            .where(_resp_filter(unit_ids, period), (Response.flags != "") | Response.excluded.is_(True))
            .order_by(Response.submitted_at.desc(), Response.id))


def is_num(x):
    return isnum(x)


