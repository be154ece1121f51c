"""The figures behind the overview, the unit page and the report, and their
store.

Every estimate comes from `stats` / `analysis`; this module selects rows,
joins names and counts answers for display.

Computed results live in the figures store (`cached`): the app's
Flask-Caching cache (`extensions.cache`: shared by every worker when Redis is
configured) with a copy in the database (`figure_store`), so a restarted
server answers from the last computation.  An entry is keyed by the database
and the arguments (period and unit scope included) and stamped with what it
was computed from: the newest audit entry that may change a figure without
touching responses (a unit, target, volume or calendar change) and the change
marks of the units it reads (`unit_marks`, kept by the triggers on
`responses`: a new response, an exclusion or an import at a unit marks that
unit only).  So a change at one commune makes stale the figures of the scopes
that contain it (its own, its ancestors', the province overview) and nothing
else.  A stale entry is served as it is while a background job
(`figures.recompute`, services/jobs.py) computes it again
(stale-while-revalidate; FIGURES_BACKGROUND, on unless TESTING, where the
figures are recomputed in the request), and every page says when its figures
were computed ("số liệu đến HH:MM", `figures_as_of`).  The store is an
optimisation, never the only copy of anything.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import pickle
from typing import TYPE_CHECKING, Optional

from flask import current_app, flash, g
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from analysis.schema import ELEMENTS, ITEM_KEYS, OVERALL, SATISFIED_MIN, UNIT_LEVEL

from ..extensions import cache, db
from ..models import Answer, AuditLog, FigureEntry, Response, Unit, utcnow
from ..services.jobs import enqueue, handler
from ..services.responses import in_period
from . import bp

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import pandas as pd

# pandas, `analysis` and `services.stats` are imported inside the functions
# that need them: creating the app (and the citizen path) never loads them.

# ---------------------------------------------------------------- the store

#: Audit actions that change no figure (sign-ins, downloads).
READ_ONLY_ACTIONS = ("login", "logout", "login_locked", "export_responses", "export_report")
#: Audit actions whose effect on the figures goes through `responses` only: the
#: unit marks say which scopes they touch, so they do not make every figure stale.
RESPONSE_ACTIONS = ("response_exclude", "response_include", "exclusion_reject", "exclusion_request",
                    "exclusion_withdraw", "import_responses", "paper_entry", "quality_scan")
RECOMPUTE_JOB = "figures.recompute"
ALL_UNITS = object()  # `deps` of a figure that reads every unit


def generation() -> int:
    """Newest audit entry that may change a figure without writing responses
    (unit, target, volume, calendar... changes), read once per request."""
    stamp = g.get("_staff_generation")
    if stamp is None:
        stamp = int(db.session.scalar(select(func.max(AuditLog.id))
                                      .where(AuditLog.action.not_in(READ_ONLY_ACTIONS + RESPONSE_ACTIONS))) or 0)
        g._staff_generation = stamp
    return stamp


def stamp_of(deps) -> str:
    """What a figure reading the units `deps` (ALL_UNITS / None: every unit)
    was computed from; a different stamp means a stale figure."""
    from ..services.aggregates import marks_of

    ids = None if deps is None or deps is ALL_UNITS else tuple(sorted(set(deps)))
    memo = g.setdefault("_figure_marks", {})
    if ids not in memo:
        memo[ids] = marks_of(ids)
    return f"{generation()}:{memo[ids]}"


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
    """The store key of `name(key_parts)` for this database."""
    raw = repr((current_app.config["SQLALCHEMY_DATABASE_URI"], _freeze(key_parts)))
    return f"sipas:figures:{name}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


def _as_of(at: dt.datetime) -> None:
    """Remember the oldest computation the page shows (its "figures as of")."""
    seen = g.get("_figures_as_of")
    if seen is None or at < seen:
        g._figures_as_of = at


def _load(key: str) -> Optional[dict]:
    """The stored entry {v, stamp, at}: from the shared cache, else from the
    database copy (then put back in the cache)."""
    try:
        hit = cache.get(key)
    except Exception:  # noqa: BLE001 - a cache outage (Redis down) only costs speed
        log.warning("figures cache unreachable on get")
        hit = None
    if isinstance(hit, dict) and "v" in hit:
        return hit
    try:
        row = db.session.get(FigureEntry, key)
        if row is None:
            return None
        entry = {"v": pickle.loads(row.value), "stamp": row.stamp, "at": row.computed_at}
    except Exception:  # noqa: BLE001 - an unreadable copy is recomputed
        log.warning("stored figure %s unreadable; recomputing", key, exc_info=True)
        db.session.rollback()
        return None
    _cache_set(key, entry)
    return entry


def _cache_set(key: str, entry: dict) -> None:
    try:
        cache.set(key, entry, timeout=int(current_app.config["FIGURES_KEEP_SECONDS"]))
    except Exception:  # noqa: BLE001
        log.warning("figures cache unreachable on set; %s kept in the database only", key)


def _save(key: str, name: str, entry: dict, recipe) -> None:
    _cache_set(key, entry)
    try:
        value = pickle.dumps(entry["v"], protocol=pickle.HIGHEST_PROTOCOL)
        rec = None if recipe is None else pickle.dumps(recipe, protocol=pickle.HIGHEST_PROTOCOL)
        t = FigureEntry.__table__
        with db.engine.begin() as conn:  # its own transaction: never the request's
            conn.execute(t.delete().where(t.c.key == key))
            conn.execute(t.insert().values(key=key, name=name[:40], stamp=entry["stamp"], computed_at=entry["at"],
                                           recipe=rec, value=value))
    except Exception:  # noqa: BLE001 - another worker stored it at the same moment, or the database is busy
        log.info("figure %s not persisted", key, exc_info=True)


def background() -> bool:
    """Whether stale figures are served while a job recomputes them."""
    on = current_app.config.get("FIGURES_BACKGROUND")
    return (not current_app.testing) if on is None else bool(on)


def _schedule(key: str, entry: dict) -> None:
    """Note the recomputation of a stale entry (one pending job per key, not
    sooner than FIGURES_REFRESH_SECONDS after its last computation); the jobs
    are queued together by `queue_scheduled` when the request ends."""
    wait = float(current_app.config["FIGURES_REFRESH_SECONDS"]) - (utcnow() - entry["at"]).total_seconds()
    g.setdefault("_figures_scheduled", {}).setdefault(key, max(0.0, wait))


def queue_scheduled() -> int:
    """Queue (one transaction) the recomputations noted by this request; returns how many."""
    todo = g.pop("_figures_scheduled", None)
    if not todo:
        return 0
    try:
        with db.session.no_autoflush:
            for key, delay in todo.items():
                enqueue(RECOMPUTE_JOB, {"key": key}, key=key, delay=delay)
        db.session.commit()
    except Exception:  # noqa: BLE001 - the next request asks again
        db.session.rollback()
        log.warning("could not queue %d figure recomputations", len(todo), exc_info=True)
        return 0
    return len(todo)


@bp.after_request
def _queue_after_request(response):
    queue_scheduled()
    return response


def cached(name: str, fn, *key_parts, deps=ALL_UNITS, recipe=None, extra: str = ""):
    """`fn()` from the figures store.

    `deps` are the unit ids the figure reads (ALL_UNITS: every unit); `recipe`
    = (name in RECIPES, args) recomputes it in a background job.  A fresh
    entry is served; a stale one with a recipe is served while the job
    recomputes it (FIGURES_BACKGROUND), else it is recomputed now.  `extra`
    is added to the stamp (state other than responses the figure reads).  With
    STAFF_CACHE_SECONDS = 0 nothing is stored."""
    ttl = int(current_app.config["STAFF_CACHE_SECONDS"])
    if ttl <= 0:
        return fn()
    key = cache_key(name, *key_parts)
    stamp = stamp_of(deps) + extra
    entry = _load(key)
    if entry is not None:
        age = (utcnow() - entry["at"]).total_seconds()
        if entry["stamp"] == stamp and age < ttl:
            _as_of(entry["at"])
            return entry["v"]
        if recipe is not None and background() and not g.get("_figures_inline"):
            _schedule(key, entry)
            g._figures_stale = g.get("_figures_stale", 0) + 1
            _as_of(entry["at"])
            return entry["v"]
    stale_before = g.get("_figures_stale", 0)
    at = utcnow()
    value = fn()
    # A figure made from stale inputs is kept, but as stale: it is made again once they are fresh.
    fresh = g.get("_figures_stale", 0) == stale_before
    new = {"v": value, "stamp": stamp if fresh else "", "at": at if fresh else g.get("_figures_as_of", at)}
    _save(key, name, new, recipe)
    _as_of(new["at"])
    return value


def figures_as_of() -> Optional[dt.datetime]:
    """When the oldest figure shown by this request was computed (None: none shown)."""
    return g.get("_figures_as_of")


@bp.app_template_global()
def figures_stamp() -> str:
    """"số liệu đến HH:MM" (local time; the date too when not today), or ''."""
    from ..services.periods import local_zone

    at = figures_as_of()
    if at is None:
        return ""
    local = at.astimezone(local_zone())
    when = local.strftime("%H:%M")
    if local.date() != utcnow().astimezone(local_zone()).date():
        when += local.strftime(" %d/%m/%Y")
    return _("figures as of %(when)s", when=when)


RECIPES: dict = {}


def recipe(name: str):
    """Register how a stored figure is computed again from its arguments."""
    def register(fn):
        RECIPES[name] = fn
        return fn
    return register


@handler(RECOMPUTE_JOB, max_attempts=3, backoff=10.0)
def _recompute(payload: dict, job=None) -> str:
    """Compute a stored figure again (the stale-while-revalidate job)."""
    key = payload["key"]
    row = db.session.get(FigureEntry, key)
    if row is None or row.recipe is None:
        return "gone"
    name, args = pickle.loads(row.recipe)
    g._figures_inline = True  # compute stale inputs now, do not queue them
    try:
        RECIPES[name](*args)
    finally:
        g._figures_inline = False
    return "recomputed"


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

def _deps(ids, period, options: dict):
    """The units whose data a figure of `ids` reads (`stats.data_scope`: with
    map_successors, the retired units mapped into them too); ALL_UNITS for None."""
    from ..services import stats

    if ids is None:
        return ALL_UNITS
    mapping = {k: options[k] for k in ("map_successors", "as_of") if k in options}
    return stats.data_scope(ids, period, **mapping) if mapping.get("map_successors") else ids


def index_result(period, unit_ids=None, **kw):
    """`stats.compute_index` for the period and units, from the figures store."""
    from ..services import stats

    ids = None if unit_ids is None else sorted(unit_ids)
    return cached("index", lambda: stats.compute_index(period, unit_ids=ids, **kw), period, ids, kw,
                  deps=_deps(ids, period, kw), recipe=("index", (period, ids, kw)))


@recipe("index")
def _index_again(period, ids, kw):
    return index_result(period, ids, **kw)


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
    """The index table of `res` with the trend columns (`stats.with_trend`), from the figures store."""
    from ..services import stats

    ids = None if unit_ids is None else sorted(unit_ids)
    return cached("trended", lambda: stats.with_trend(table_of(res), period, unit_ids,
                                                      _quiet_index(unit_ids, **options),
                                                      data_ids=stats.data_scope(unit_ids, period, **options)),
                  period, ids, res is None, options, deps=_deps(ids, period, options),
                  recipe=("trended", (period, ids, options)))


@recipe("trended")
def _trended_again(period, ids, options):
    return trended(safe_index(period, ids, quiet=True, **options), period, ids, **options)


def trend_series(unit: Unit, period, unit_ids, by: str = "year") -> list[dict]:
    """The unit's index per report year or quarter (`stats.trend_series`)."""
    from ..services import stats

    return stats.trend_series(unit.code, period, unit_ids, _quiet_index(unit_ids), by=by)


def distribution(unit_ids, period) -> dict[str, list[int]]:
    """Counts of answers 1..5 per item among the eligible responses (`stats.distribution`), stored."""
    from ..services import stats

    ids = sorted(unit_ids)
    return cached("distribution", lambda: stats.distribution(unit_ids, period), period, ids, deps=ids,
                  recipe=("distribution", (ids, period)))


@recipe("distribution")
def _distribution_again(ids, period):
    return distribution(ids, period)


def _unit_by_code(code: str) -> Unit:
    return db.session.scalar(select(Unit).where(Unit.code == code))


def drivers_table(unit: Unit, period, unit_ids, res) -> "Optional[pd.DataFrame]":
    """What matters most (`stats.drivers_table`), stored; None when there are too few responses."""
    from ..services import stats

    ids = sorted(unit_ids)
    return cached("drivers", lambda: stats.drivers_table(unit.code, period, unit_ids, res),
                  unit.code, period, ids, deps=ids, recipe=("drivers", (unit.code, period, ids)))


@recipe("drivers")
def _drivers_again(code, period, ids):
    return drivers_table(_unit_by_code(code), period, ids, safe_index(period, ids, quiet=True))


def counters_table(unit: Unit, period, unit_ids) -> "pd.DataFrame":
    """The unit's counters compared (`stats.counters_table`), stored."""
    from ..services import stats

    ids = sorted(unit_ids)
    return cached("counters", lambda: stats.counters_table(period, unit_ids), period, ids, deps=ids,
                  recipe=("counters", (unit.code, period, ids)))


@recipe("counters")
def _counters_again(code, period, ids):
    return counters_table(_unit_by_code(code), period, ids)


def bieu06_table(period, scope) -> list[dict]:
    """`services.bieu06.table` (the report's table per field), stored and recomputed in the background."""
    from ..services import bieu06

    ids = None if scope is None else sorted(scope)
    return cached("bieu06", lambda: bieu06.table(period, ids), period.label, ids,
                  deps=ALL_UNITS if ids is None else ids, recipe=("bieu06", (period, ids)))


@recipe("bieu06")
def _bieu06_again(period, ids):
    return bieu06_table(period, ids)


# ---------------------------------------------------------------- integrity counts
# (services.exclusions; stored like the index: stamped by the units' marks and the pending requests)

def _requests_stamp() -> str:
    """Changes whenever an exclusion request is made, decided or withdrawn."""
    from ..models import ExclusionRequest

    stamp = g.get("_figures_requests")
    if stamp is None:
        n, top = db.session.execute(select(func.count(), func.max(ExclusionRequest.id))
                                    .where(ExclusionRequest.status == "pending")).one()
        stamp = g._figures_requests = f":{n}:{top or 0}:{db.session.scalar(select(func.max(ExclusionRequest.id)))}"
    return stamp


def integrity_total(unit_ids, start, end):
    """`exclusions.integrity_total` (excluded, pending, typed, all), stored."""
    from ..services import exclusions

    ids = sorted(unit_ids)
    return cached("integrity_total", lambda: exclusions.integrity_total(ids, start, end), ids, start, end,
                  deps=ids, recipe=("integrity_total", (ids, start, end)), extra=_requests_stamp())


@recipe("integrity_total")
def _integrity_total_again(ids, start, end):
    return integrity_total(ids, start, end)


def integrity_table(unit_ids, start, end):
    """`exclusions.integrity_table` (the annual report's per-unit counts), stored."""
    from ..services import exclusions

    ids = None if unit_ids is None else sorted(unit_ids)
    return cached("integrity_table", lambda: exclusions.integrity_table(ids, start, end), ids, start, end,
                  deps=ALL_UNITS if ids is None else ids, recipe=("integrity_table", (ids, start, end)),
                  extra=_requests_stamp())


@recipe("integrity_table")
def _integrity_table_again(ids, start, end):
    return integrity_table(ids, start, end)


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
    waiting for a decision (newest first).  The flagged or excluded ones come
    from the partial index `ix_responses_flagged`, the waiting ones from the
    requests: two small lists, never a scan of the period."""
    from ..models import ExclusionRequest

    marked = select(Response.id).where(in_period(unit_ids, period),
                                       (Response.flags != "") | Response.excluded.is_(True))
    waiting = select(ExclusionRequest.response_id).where(ExclusionRequest.status == "pending")
    return (select(Response)
            .where(in_period(unit_ids, period), Response.id.in_(marked.union(waiting)))
            .order_by(Response.submitted_at.desc(), Response.id))
