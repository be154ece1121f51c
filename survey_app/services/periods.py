"""Reporting periods as the app configures them (cut-off day, time zone), and
the one local "today".

The grammar and arithmetic live in `analysis.periods`; this only supplies the
calendar so every page, export and command cuts periods alike: the
`ReportingCalendar` row `default` (edited by admins on the targets page) when
there is one, else the configuration (REPORT_CUTOFF_MONTH/DAY, TIMEZONE).

The calendar is read once per application context (one request, one CLI
command) and forgotten as soon as a calendar row is written.  "Today" is
always the date in the calendar's time zone (Asia/Ho_Chi_Minh by default),
never the server's date.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app, g, has_app_context
from sqlalchemy import event, select
from sqlalchemy.exc import SQLAlchemyError

from analysis.periods import Period, parse_period

from ..extensions import db
from ..models import ReportingCalendar

CALENDAR_KEY = "default"
_G_KEY = "sipas_calendar"


def _read_calendar() -> dict:
    cfg = current_app.config
    out = {"tz": cfg["TIMEZONE"], "cutoff": (cfg["REPORT_CUTOFF_MONTH"], cfg["REPORT_CUTOFF_DAY"])}
    q = (select(ReportingCalendar.timezone, ReportingCalendar.cutoff_month, ReportingCalendar.cutoff_day)
         .where(ReportingCalendar.key == CALENDAR_KEY))
    # A savepoint: when the read fails (no table yet, before `db upgrade`) only
    # the read is undone, never what the caller has not committed yet.
    savepoint = db.session.begin_nested()
    try:
        row = db.session.execute(q).first()
    except SQLAlchemyError:
        savepoint.rollback()
        row = None
    else:
        savepoint.commit()
    if row is not None:
        out = {"tz": row.timezone or out["tz"], "cutoff": (row.cutoff_month, row.cutoff_day)}
    return out


def calendar() -> dict:
    """{"tz": zone name, "cutoff": (month, day)}: read once per application context."""
    cal = g.get(_G_KEY)
    if cal is None:
        cal = _read_calendar()
        setattr(g, _G_KEY, cal)
    return cal


def forget_calendar(*_args) -> None:
    """Drop the calendar read in this context (called when a calendar row is written)."""
    if has_app_context():
        g.pop(_G_KEY, None)


for _event in ("after_insert", "after_update", "after_delete"):
    event.listen(ReportingCalendar, _event, forget_calendar)


def resolve_period(text: str) -> Period:
    """Parse a period label (`2025`, `2025-Q1`, `2025-H1`, `cal:2025`, `2025-03`,
    `2025-01-01..2025-03-31`) with the configured calendar; ValueError if invalid."""
    return parse_period(text, **calendar())


def local_zone() -> ZoneInfo:
    return ZoneInfo(calendar()["tz"])


def local_now() -> dt.datetime:
    """Now, aware, in the calendar's time zone."""
    return dt.datetime.now(dt.timezone.utc).astimezone(local_zone())


def local_today() -> dt.date:
    """Today's date in the calendar's time zone (never the server's date)."""
    return local_now().date()


def current_report_year(now: dt.datetime | None = None) -> int:
    """The report year containing `now` (the 15/12 cut-off: 20/12/2025 is in 2026)."""
    cal = calendar()
    local = (now or dt.datetime.now(dt.timezone.utc)).astimezone(ZoneInfo(cal["tz"]))
    cutoff = dt.date(local.year, *cal["cutoff"])
    return local.year + 1 if local.date() >= cutoff else local.year
