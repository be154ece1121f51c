"""Data behind the overview and the unit page, shared by the HTML pages and
their SVG chart endpoints.  Every estimate comes from `stats` / `analysis`;
this module selects rows, joins names and counts answers for display.
"""
from __future__ import annotations

from typing import Optional

import pandas as pd
from flask import current_app, flash
from flask_babel import gettext as _
from sqlalchemy import and_, select

from analysis import InputError

from ..models import Answer, Counter, Response, Unit
from ..services import stats
from ..services.stats import table_of, unit_row  # noqa: F401  (used by the pages)
from .common import ELEMENTS, cached, index_result, isnum, records


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
    return stats.with_trend(table, period, unit_ids,
                            lambda p: safe_index(p, unit_ids, quiet=True, **options))


def trend_series(unit: Unit, period, unit_ids, by: str = "year") -> list[dict]:
    return stats.trend_series(unit.code, period, unit_ids, lambda p: safe_index(p, unit_ids, quiet=True), by=by)



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
    return cached("distribution", lambda: stats.distribution(unit_ids, period), period, sorted(unit_ids))


def drivers_table(unit: Unit, period, unit_ids, res) -> Optional[pd.DataFrame]:
    """`analysis.drivers.drivers` over the unit's responses, weighted with the
    design weights of its cells; None when there are too few responses."""
    return cached("drivers", lambda: stats.drivers_table(unit.code, period, unit_ids, res),
                  unit.code, period, sorted(unit_ids))


def counters_table(unit: Unit, period, unit_ids) -> pd.DataFrame:
    """Counters of the unit's subtree compared: `analysis.compute_index` with each
    counter as a domain (unweighted: counters share their unit's volume)."""
    return cached("counters", lambda: stats.counters_table(period, unit_ids), period, sorted(unit_ids))


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


