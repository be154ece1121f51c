"""The figures behind the overview, the unit page and the report, and their
cache.

Every estimate comes from `stats` / `analysis`; this module selects rows,
joins names and counts answers for display.  Results are kept in the app's
Flask-Caching cache (`extensions.cache`: per process by default, shared by
every worker when Redis is configured) for STAFF_CACHE_SECONDS, keyed by the
database, the arguments (period and unit scope included) and the newest
audit-log id that may change a figure, so an exclusion, an import or an
administrative change shows at once.  The cache is an optimisation, never
the only copy of anything.
"""
from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Optional

from flask import current_app, flash, g
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from analysis.schema import ELEMENTS, ITEM_KEYS, OVERALL, SATISFIED_MIN, UNIT_LEVEL

from ..extensions import cache, db
from ..models import Answer, AuditLog, Response, Unit
from ..services.responses import in_period

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import pandas as pd

# pandas, `analysis` and `services.stats` are imported inside the functions
# that need them: creating the app (and the citizen path) never loads them.

# ---------------------------------------------------------------- cache

#: Audit actions that change no figure (sign-ins, downloads): they do not invalidate the cache.
READ_ONLY_ACTIONS = ("login", "logout", "login_locked", "export_responses", "export_report")


def generation() -> int:
    """Newest audit entry that may change a figure (exclusion, import, unit or
    target change...), read once per request."""
    stamp = g.get("_staff_generation")
    if stamp is None:
        stamp = int(db.session.scalar(select(func.max(AuditLog.id))
                                      .where(AuditLog.action.not_in(READ_ONLY_ACTIONS))) or 0)
        g._staff_generation = stamp
    return stamp


def _freeze(v):
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, (set, frozenset)):
        return ("set", tuple(sorted(v)))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if hasattr(v, "label") and hasattr(v, "start"):  # analysis Period
        return ("period", v.label, str(v.start), str(v.end))
    return v


def cache_key(name: str, *key_parts) -> str:
    """The cache key of `name(key_parts)` for this database and data generation."""
    raw = repr((current_app.config["SQLALCHEMY_DATABASE_URI"], generation(), _freeze(key_parts)))
    return f"sipas:staff:{name}:{hashlib.sha256(raw.encode()).hexdigest()}"


def cached(name: str, fn, *key_parts):
    """`fn()`, kept for STAFF_CACHE_SECONDS per database, data generation and `key_parts`."""
    ttl = int(current_app.config["STAFF_CACHE_SECONDS"])
    if ttl <= 0:
        return fn()
    key = cache_key(name, *key_parts)
    try:
        hit = cache.get(key)
    except Exception:  # noqa: BLE001 - a cache outage (Redis down) only costs speed
        log.warning("staff cache unreachable on get; computing %s", name)
        return fn()
    if hit is not None:
        return hit[0]
    value = fn()
    try:
        cache.set(key, (value,), timeout=ttl)
    except Exception:  # noqa: BLE001
        log.warning("staff cache unreachable on set; %s not kept", name)
    return value


def records(frame) -> list[dict]:
    """DataFrame rows as dicts (faster than `DataFrame.to_dict("records")` for wide frames)."""
    if frame is None or len(frame) == 0:
        return []
    cols = list(frame.columns)
    return [dict(zip(cols, vals)) for vals in zip(*(frame[c].tolist() for c in cols))]


# ---------------------------------------------------------------- scope

def unit_codes(ids: Optional[set[int]] = None) -> dict[int, str]:
    """id → code of the units (of `ids`, or all)."""
    rows = db.session.execute(select(Unit.id, Unit.code)).all()
    return {i: c for i, c in rows if ids is None or i in ids}


# ---------------------------------------------------------------- the index

def index_result(period, unit_ids=None, **kw):
    """`stats.compute_index` for the period and units, cached."""
    from ..services import stats

    ids = None if unit_ids is None else sorted(unit_ids)
    return cached("index", lambda: stats.compute_index(period, unit_ids=ids, **kw), period, ids, kw)


def safe_index(period, unit_ids, quiet: bool = False, **options):
    """The index result, or None with a message when the data cannot be
    analysed (e.g. a response in a procedure field that has no volume).
    `options` go to `stats.compute_index` (e.g. map_successors=True)."""
    from analysis import InputError

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


def table_of(res) -> "pd.DataFrame":
    from ..services import stats

    return stats.table_of(res)


def unit_row(table: "pd.DataFrame", code: str) -> Optional[dict]:
    """The row describing unit `code` (`services.stats.unit_row`)."""
    from ..services import stats

    return stats.unit_row(table, code)


def rows_by_code(table: "pd.DataFrame", codes) -> dict[str, dict]:
    """`unit_row` for many codes in one pass."""
    sub = table[table["unit_code"].isin(set(codes))]
    out: dict[str, dict] = {}
    for rec in records(sub):
        prev = out.get(rec["unit_code"])
        if prev is None or (prev["level"] == UNIT_LEVEL and rec["level"] != UNIT_LEVEL):
            out[rec["unit_code"]] = rec
    return out


def elements_of(row: Optional[dict]) -> list[dict]:
    """Rate, interval and number of answers per element, then the overall question."""
    out = []
    for key in ELEMENTS + (OVERALL,):
        if not row:
            out.append(dict(key=key, rate=None, low=None, high=None, n=0))
            continue
        out.append(dict(key=key, rate=row.get(f"{key}_rate"), low=row.get(f"{key}_ci_low"),
                        high=row.get(f"{key}_ci_high"), n=int(row.get(f"{key}_n") or 0)))
    return out


# ---------------------------------------------------------------- trend, answers, drivers, counters
# (computed by `services.stats`; cached here)

def _quiet_index(unit_ids, **options):
    return lambda p: safe_index(p, unit_ids, quiet=True, **options)


def trended(res, period, unit_ids, **options) -> "pd.DataFrame":
    """The index table of `res` with the trend columns (`stats.with_trend`), cached."""
    from ..services import stats

    ids = None if unit_ids is None else sorted(unit_ids)
    return cached("trended", lambda: stats.with_trend(table_of(res), period, unit_ids,
                                                      _quiet_index(unit_ids, **options),
                                                      data_ids=stats.data_scope(unit_ids, period, **options)),
                  period, ids, res is None, options)


def trend_series(unit: Unit, period, unit_ids, by: str = "year") -> list[dict]:
    """The unit's index per report year or quarter (`stats.trend_series`)."""
    from ..services import stats

    return stats.trend_series(unit.code, period, unit_ids, _quiet_index(unit_ids), by=by)


def distribution(unit_ids, period) -> dict[str, list[int]]:
    """Counts of answers 1..5 per item among the eligible responses (`stats.distribution`), cached."""
    from ..services import stats

    return cached("distribution", lambda: stats.distribution(unit_ids, period), period, sorted(unit_ids))


def drivers_table(unit: Unit, period, unit_ids, res) -> "Optional[pd.DataFrame]":
    """What matters most (`stats.drivers_table`), cached; None when there are too few responses."""
    from ..services import stats

    return cached("drivers", lambda: stats.drivers_table(unit.code, period, unit_ids, res),
                  unit.code, period, sorted(unit_ids))


def counters_table(unit: Unit, period, unit_ids) -> "pd.DataFrame":
    """The unit's counters compared (`stats.counters_table`), cached."""
    from ..services import stats

    return cached("counters", lambda: stats.counters_table(period, unit_ids), period, sorted(unit_ids))


# ---------------------------------------------------------------- lists

def comments_query(unit_ids, period, element: str = "", rating: str = ""):
    """Responses with a comment (newest first), optionally only those whose
    answer to `element` was satisfied (4–5) or not (1–3)."""
    q = (select(Response).options(selectinload(Response.counter))
         .where(in_period(unit_ids, period), Response.comment.is_not(None), Response.comment != ""))
    if element in ITEM_KEYS and rating in ("satisfied", "unsatisfied"):
        cond = Answer.value >= SATISFIED_MIN if rating == "satisfied" else Answer.value < SATISFIED_MIN
        q = q.where(Response.id.in_(select(Answer.response_id).where(Answer.item_key == element, cond)))
    return q.order_by(Response.submitted_at.desc(), Response.id)


def flagged_query(unit_ids, period):
    """Responses with a quality flag, excluded, or with an exclusion request
    waiting for a decision (newest first)."""
    from ..models import ExclusionRequest

    waiting = select(ExclusionRequest.response_id).where(ExclusionRequest.status == "pending")
    return (select(Response)
            .where(in_period(unit_ids, period),
                   (Response.flags != "") | Response.excluded.is_(True) | Response.id.in_(waiting))
            .order_by(Response.submitted_at.desc(), Response.id))
