"""Shared helpers of the staff pages: the chosen period, the user's scope,
cached calls into `survey_app.services.stats`, paging, and the plain-language wording
of adequacy, targets and flags.

Statistics are never computed here: every figure comes from `stats.py`
(`compute_index`, `response_frame`) or from `analysis`.  The cache only keeps
the last results for a short time (STAFF_CACHE_SECONDS), keyed by the
arguments and by the newest audit-log id, so an exclusion, an import or an
administrative change shows at once; it is an optimisation, never the only
copy of anything.
"""
from __future__ import annotations

import math
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Optional

from flask import current_app, flash, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..services import stats
from ..services.units import scope_unit_ids
from ..extensions import db
from ..models import AuditLog, Unit
from ..services.periods import current_report_year, resolve_period
from .auth import db_user
from . import bp

ELEMENTS = ("access", "procedure", "staff", "result", "feedback")
ELEMENT_LABELS = {
    "overall": _l("Overall satisfaction"),
    "access": _l("Access to the service"),
    "procedure": _l("Administrative procedure"),
    "staff": _l("Civil servant"),
    "result": _l("Result"),
    "feedback": _l("Handling of feedback"),
}
KIND_LABELS = {
    "province": _l("Province"), "service_center": _l("Public service centre"), "department": _l("Department"),
    "district": _l("District"), "commune": _l("Commune"), "ward": _l("Ward"), "other": _l("Other"),
    "root": _l("Whole scope"),
}
ROLE_LABELS = {"counter_staff": _l("Counter staff"), "unit_leader": _l("Unit leader"),
               "analyst": _l("Analyst"), "admin": _l("Administrator")}


# ---------------------------------------------------------------- period

def period_choices(selected_year: int) -> list[tuple[str, str]]:
    cur = current_report_year()
    out = []
    for y in range(cur, cur - 4, -1):
        out.append((str(y), _("Report year %(y)s", y=y)))
    for q in range(1, 5):
        out.append((f"{selected_year}-Q{q}", _("Quarter %(q)s of %(y)s", q=q, y=selected_year)))
    out.append((f"{selected_year}-H1", _("First 6 months of %(y)s", y=selected_year)))
    out.append((f"cal:{selected_year}", _("Calendar year %(y)s", y=selected_year)))
    return out


def chosen_period(arg: str = "period"):
    """The period in the query string (default: the current report year).
    An invalid label falls back to the default with a message, never an error."""
    text = (request.args.get(arg) or "").strip()[:40]
    default = str(current_report_year())
    if text:
        try:
            return resolve_period(text)
        except (ValueError, TypeError):
            flash(_("Unknown period “%(p)s”: showing the current report year.", p=text), "warning")
    return resolve_period(default)


# ---------------------------------------------------------------- scope

def scope_ids() -> Optional[set[int]]:
    user = db_user()
    return scope_unit_ids(user) if user else set()


def unit_codes(ids: Optional[set[int]] = None) -> dict[int, str]:
    rows = db.session.execute(select(Unit.id, Unit.code)).all()
    return {i: c for i, c in rows if ids is None or i in ids}


# ---------------------------------------------------------------- cached statistics

_cache: "OrderedDict[tuple, tuple[float, Any]]" = OrderedDict()
_lock = threading.Lock()
_MAX = 64


# Audit actions that change no figure (sign-ins, downloads): they do not invalidate the cache.
_READ_ONLY_ACTIONS = ("login", "logout", "login_locked", "export_responses", "export_report")


def _stamp() -> int:
    """Newest audit entry that may change a figure (exclusion, import, unit/target change...),
    read once per request (a change made during the request calls `forget_stamp`)."""
    from flask import g

    stamp = g.get("_staff_stamp")
    if stamp is None:
        stamp = int(db.session.scalar(select(func.max(AuditLog.id))
                                      .where(AuditLog.action.not_in(_READ_ONLY_ACTIONS))) or 0)
        g._staff_stamp = stamp
    return stamp


def records(frame) -> list[dict]:
    """DataFrame rows as dicts (faster than `DataFrame.to_dict("records")` for wide frames)."""
    if frame is None or len(frame) == 0:
        return []
    cols = list(frame.columns)
    return [dict(zip(cols, vals)) for vals in zip(*(frame[c].tolist() for c in cols))]


def cached(name: str, fn, *key_parts):
    """`fn()`, kept for STAFF_CACHE_SECONDS per database and `key_parts`."""
    ttl = float(current_app.config.get("STAFF_CACHE_SECONDS", 300))
    ns = current_app.extensions.setdefault("sipas_staff_cache_ns", uuid.uuid4().hex)
    key = (ns, current_app.config["SQLALCHEMY_DATABASE_URI"], name, _stamp(), _freeze(key_parts))
    now = time.monotonic()
    if ttl > 0:
        with _lock:
            hit = _cache.get(key)
            if hit and now - hit[0] < ttl:
                _cache.move_to_end(key)
                return hit[1]
    value = fn()
    if ttl > 0:
        with _lock:
            _cache[key] = (now, value)
            while len(_cache) > _MAX:
                _cache.popitem(last=False)
    return value


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


def index_result(period, unit_ids=None, **kw):
    """`stats.compute_index` for the period and units, cached."""
    ids = None if unit_ids is None else sorted(unit_ids)
    return cached("index", lambda: stats.compute_index(period, unit_ids=ids, **kw), period, ids, kw)


def response_frame(period, unit_ids=None):
    ids = None if unit_ids is None else sorted(unit_ids)
    return cached("frame", lambda: stats.response_frame(period, unit_ids=ids), period, ids)


# ---------------------------------------------------------------- paging

class Page:
    def __init__(self, items, total: int, page: int, per_page: int):
        self.items, self.total, self.page, self.per_page = items, total, page, per_page
        self.pages = max(1, math.ceil(total / per_page)) if per_page else 1

    @property
    def has_prev(self):
        return self.page > 1

    @property
    def has_next(self):
        return self.page < self.pages


def int_arg(name: str, default: int, lo: int = 1, hi: int = 10**9) -> int:
    try:
        v = int(request.args.get(name, default))
    except (TypeError, ValueError):
        return default
    return min(max(v, lo), hi)


# ---------------------------------------------------------------- wording and numbers

def isnum(x) -> bool:
    """A finite-or-infinite real number (not None, NaN or NA)."""
    if x is None or isinstance(x, str):
        return False
    try:
        f = float(x)
    except (TypeError, ValueError):
        return False
    return f == f


def _seps() -> tuple[str, str]:
    """(decimal, thousands) separators of the current language (vi: 1.234,5; en: 1,234.5)."""
    from flask import g

    seps = g.get("_staff_seps")
    if seps is None:
        seps = (".", ",") if str(get_locale() or "vi") == "en" else (",", ".")
        g._staff_seps = seps
    return seps


def _fmt(v: float, digits: int) -> str:
    dec, th = _seps()
    text = f"{v:,.{digits}f}"
    return text.replace(",", "\x00").replace(".", dec).replace("\x00", th)


def pct(x, digits: int = 1) -> str:
    """A fraction as a percentage with `digits` decimals, in the page's language."""
    if not isnum(x):
        return "–"
    return _fmt(float(x) * 100, digits) + "%"


def num(x, digits: int = 0) -> str:
    if not isnum(x):
        return "–"
    return _fmt(float(x), digits)


def plain_interval(low, high, level: float = 0.95) -> str:
    """“at least 91% and at most 98% of people are satisfied, with 95% confidence”."""
    if not (isnum(low) and isnum(high)):
        return _("Not enough answers to say how many people are satisfied.")
    lo = math.floor(float(low) * 100 + 1e-9)
    hi = math.ceil(float(high) * 100 - 1e-9)
    return _("at least %(low)s%% and at most %(high)s%% of people are satisfied, with %(level)s%% confidence",
             low=lo, high=hi, level=int(round(level * 100)))


def points(x) -> str:
    """A change of a rate as signed percentage points: “+3,2 điểm”."""
    if not isnum(x):
        return ""
    v = float(x) * 100
    return _("%(v)s points", v=("+" if v > 0 else "") + _fmt(v, 1))


def adequacy_text(row, short: bool = False) -> tuple[str, str]:
    """(css class, words) for the adequacy badge."""
    a = str(row.get("adequacy") or "")
    n, req = row.get("n"), row.get("required_n")
    if a == "adequate":
        return "ok", _("Sample large enough")
    if a == "inadequate":
        more = int(max(0, (req or 0) - (n or 0))) if isnum(req) and isnum(n) else None
        if more is not None and short:
            return "warn", _("%(more)s more responses needed", more=num(more))
        if more is not None:
            return "warn", _("Sample too small: %(more)s more responses needed", more=num(more))
        return "warn", _("Sample too small")
    if a == "no_population":
        return "info", _("No transaction volume recorded")
    if a == "not_eligible":
        return "info", _("Too few transactions to sample")
    return "info", "–"


def target_text(row, short: bool = False) -> tuple[str, str]:
    s = str(row.get("target_status") or "")
    t = row.get("target")
    tt = pct(t, 0) if isnum(t) else ""
    if short:
        words = {"met": ("ok", _("Target %(t)s met", t=tt)), "not_met": ("bad", _("Target %(t)s not met", t=tt)),
                 "inconclusive": ("warn", _("Not yet known (target %(t)s)", t=tt))}
        return words.get(s, ("info", _("No target set")))
    if s == "met":
        return "ok", _("Target %(t)s met (even the lowest plausible value reaches it)", t=tt)
    if s == "not_met":
        return "bad", _("Target %(t)s not met (even the highest plausible value is below it)", t=tt)
    if s == "inconclusive":
        return "warn", _("Not yet known whether target %(t)s is met: more responses needed", t=tt)
    return "info", _("No target set")


FLAG_LABELS = {
    "low_n": _l("few responses (under 30 effective)"),
    "wide_ci": _l("wide interval (over 30 points)"),
    "over_population": _l("more responses than transactions"),
    "strata_without_responses": _l("some procedure fields have no responses"),
    "prorated_volume": _l("volume prorated to the period"),
}


def flag_words(flags) -> list[str]:
    out = []
    for f in str(flags or "").split(";"):
        f = f.strip()
        if not f:
            continue
        if f.startswith("missing:"):
            el = f.split(":", 1)[1]
            out.append(_("no answers for %(el)s", el=str(ELEMENT_LABELS.get(el, el))))
        else:
            out.append(str(FLAG_LABELS.get(f, f)))
    return out


def unit_name(row_or_unit) -> str:
    loc = str(get_locale() or "vi")
    if isinstance(row_or_unit, Unit):
        return row_or_unit.name(loc)
    vi, en = row_or_unit.get("name_vi") or "", row_or_unit.get("name_en") or ""
    return (en or vi) if loc == "en" else vi


@bp.app_template_global()
def staff_can(action: str) -> bool:
    from .auth import can

    return can(action)


@bp.context_processor
def _helpers():
    return dict(pct=pct, num=num, points=points, left_out_words=left_out_words, plain_interval=plain_interval, adequacy_text=adequacy_text,
                target_text=target_text, flag_words=flag_words, ELEMENTS=ELEMENTS,
                ELEMENT_LABELS=ELEMENT_LABELS, KIND_LABELS=KIND_LABELS, ROLE_LABELS=ROLE_LABELS,
                unit_name=unit_name, isnum=isnum, staff_user=db_user())


@bp.app_template_global()
def url_with(**changes) -> str:
    """The current URL with query arguments changed (None removes one)."""
    from urllib.parse import urlencode

    args = request.args.to_dict(flat=True)
    for k, v in changes.items():
        if v is None:
            args.pop(k, None)
        else:
            args[k] = v
    return request.path + ("?" + urlencode(args) if args else "")


@bp.app_template_filter("staff_iso")
def staff_iso(text) -> str:
    """An ISO timestamp string (as in `meta`) in local time, or '–'."""
    import datetime as dt

    try:
        return staff_time(dt.datetime.fromisoformat(str(text)))
    except (TypeError, ValueError):
        return "–"


LEFT_OUT_LABELS = {"excluded": _l("excluded"), "under_18": _l("under 18"), "outside_period": _l("outside the period")}


def left_out_words(counts) -> str:
    return ", ".join(f"{LEFT_OUT_LABELS.get(k, k)}: {num(v)}" for k, v in sorted((counts or {}).items()))


@bp.app_template_filter("staff_time")
def staff_time(ts) -> str:
    """A stored UTC timestamp in the configured local time, dd/mm/yyyy HH:MM."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    if ts is None:
        return ""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.timezone.utc)
    return ts.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).strftime("%d/%m/%Y %H:%M")
