"""Numbers, percentages and dates as a reader of the page's language expects
them (vi: 1.234,5 and 91,5%; en: 1,234.5 and 91.5%), through Flask-Babel.

The one place that formats a figure for people: templates use these as
globals/filters (registered by `survey_app.ui.init_app`), views and charts
call them directly.  A missing value (None, NaN, NA) is shown as an en dash.
"""
from __future__ import annotations

import datetime as dt

from flask_babel import format_date as _babel_date
from flask_babel import format_datetime as _babel_datetime
from flask_babel import format_decimal, format_percent
from flask_babel import gettext as _

MISSING = "–"
#: Local date and date-time as the staff pages print them (Babel/CLDR patterns).
DATE_PATTERN = "dd/MM/yyyy"
DATETIME_PATTERN = "dd/MM/yyyy HH:mm"


def isnum(x) -> bool:
    """A real number (finite or infinite), not None, NaN, NA or text."""
    if x is None or isinstance(x, (str, bytes)):
        return False
    try:
        f = float(x)
    except (TypeError, ValueError):
        return False
    return f == f


def _pattern(digits: int) -> str:
    return "#,##0" + ("." + "0" * digits if digits > 0 else "")


def num(x, digits: int = 0) -> str:
    """A number with `digits` decimals and the language's separators."""
    if not isnum(x):
        return MISSING
    return format_decimal(float(x), format=_pattern(digits))


def pct(x, digits: int = 1) -> str:
    """A fraction (0–1) as a percentage with `digits` decimals."""
    if not isnum(x):
        return MISSING
    return format_percent(float(x), format=_pattern(digits) + "%")


def points(x) -> str:
    """A change of a rate as signed percentage points: “+3,2 điểm”."""
    if not isnum(x):
        return ""
    v = float(x) * 100
    return _("%(v)s points", v=("+" if v > 0 else "") + num(v, 1))


def local_datetime(ts) -> str:
    """A stored timestamp (UTC; naive means UTC) in local time, dd/mm/yyyy HH:MM."""
    if ts is None:
        return ""
    if isinstance(ts, str):
        try:
            ts = dt.datetime.fromisoformat(ts)
        except ValueError:
            return MISSING
    if not isinstance(ts, dt.datetime):
        return MISSING
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.timezone.utc)
    return _babel_datetime(ts, DATETIME_PATTERN)


def local_date(d) -> str:
    """A calendar date, dd/mm/yyyy."""
    if d is None:
        return ""
    return _babel_date(d, DATE_PATTERN)
