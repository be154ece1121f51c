"""Reporting periods as the app configures them (cut-off day, time zone).

The grammar and arithmetic live in `analysis.periods`; this only supplies the
configured calendar so every page, export and command cuts periods alike.
"""
from __future__ import annotations

import datetime as dt

from flask import current_app

from analysis.periods import Period, parse_period


def _calendar() -> dict:
    cfg = current_app.config
    return {"tz": cfg["TIMEZONE"], "cutoff": (cfg["REPORT_CUTOFF_MONTH"], cfg["REPORT_CUTOFF_DAY"])}


def resolve_period(text: str) -> Period:
    """Parse a period label (`2025`, `2025-Q1`, `2025-H1`, `cal:2025`, `2025-03`,
    `2025-01-01..2025-03-31`) with the configured calendar; ValueError if invalid."""
    return parse_period(text, **_calendar())


def current_report_year(now: dt.datetime | None = None) -> int:
    """The report year containing `now` (the 15/12 cut-off: 20/12/2025 is in 2026)."""
    cfg = current_app.config
    from zoneinfo import ZoneInfo

    local = (now or dt.datetime.now(dt.timezone.utc)).astimezone(ZoneInfo(cfg["TIMEZONE"]))
    cutoff = dt.date(local.year, cfg["REPORT_CUTOFF_MONTH"], cfg["REPORT_CUTOFF_DAY"])
    return local.year + 1 if local.date() >= cutoff else local.year
