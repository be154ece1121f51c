"""Reporting periods as the app configures them (cut-off day, time zone).

The grammar and arithmetic live in `analysis.periods`; this only supplies the
calendar so every page, export and command cuts periods alike: the
`ReportingCalendar` row `default` (edited by admins on the targets page) when
there is one, else the configuration (REPORT_CUTOFF_MONTH/DAY, TIMEZONE).
"""
from __future__ import annotations

import datetime as dt

from flask import current_app

from analysis.periods import Period, parse_period


def _calendar() -> dict:
    cfg = current_app.config
    out = {"tz": cfg["TIMEZONE"], "cutoff": (cfg["REPORT_CUTOFF_MONTH"], cfg["REPORT_CUTOFF_DAY"])}
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from ..extensions import db
    from ..models import ReportingCalendar

    try:
        cal = db.session.scalar(select(ReportingCalendar).where(ReportingCalendar.key == "default"))
    except SQLAlchemyError:  # no table yet (before `db upgrade`): the configuration
        db.session.rollback()
        cal = None
    if cal is not None:
        out = {"tz": cal.timezone or out["tz"], "cutoff": (cal.cutoff_month, cal.cutoff_day)}
    return out


def resolve_period(text: str) -> Period:
    """Parse a period label (`2025`, `2025-Q1`, `2025-H1`, `cal:2025`, `2025-03`,
    `2025-01-01..2025-03-31`) with the configured calendar; ValueError if invalid."""
    return parse_period(text, **_calendar())


def current_report_year(now: dt.datetime | None = None) -> int:
    """The report year containing `now` (the 15/12 cut-off: 20/12/2025 is in 2026)."""
    from zoneinfo import ZoneInfo

    cal = _calendar()
    local = (now or dt.datetime.now(dt.timezone.utc)).astimezone(ZoneInfo(cal["tz"]))
    cutoff = dt.date(local.year, *cal["cutoff"])
    return local.year + 1 if local.date() >= cutoff else local.year
