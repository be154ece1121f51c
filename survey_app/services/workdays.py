"""Working days: Monday to Friday, less the public holidays of the configured
list (PUBLIC_HOLIDAYS, ISO dates; Viet Nam's 2026 holidays by default).

The deadline of a case is counted from the local day it was opened, which
does not count itself: opened on Friday with 1 working day, due on Monday.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional


def holidays(values: Optional[Iterable] = None) -> frozenset[dt.date]:
    """The configured holidays as dates (the app's PUBLIC_HOLIDAYS when not given);
    a malformed entry is a configuration error and raises ValueError."""
    if values is None:
        from flask import current_app

        values = current_app.config["PUBLIC_HOLIDAYS"]
    return frozenset(v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)) for v in values)


def is_working_day(day: dt.date, off: frozenset[dt.date]) -> bool:
    return day.weekday() < 5 and day not in off


def add_working_days(start: dt.date, n: int, off: Optional[frozenset[dt.date]] = None) -> dt.date:
    """The n-th working day after `start` (n >= 0; 0 = `start` itself, or the next
    working day when `start` is not one)."""
    off = holidays() if off is None else off
    day = start
    if n <= 0:
        while not is_working_day(day, off):
            day += dt.timedelta(days=1)
        return day
    left = n
    while left:
        day += dt.timedelta(days=1)
        if is_working_day(day, off):
            left -= 1
    return day


def working_days_between(start: dt.date, end: dt.date, off: Optional[frozenset[dt.date]] = None) -> int:
    """Working days after `start` up to and including `end` (negative when `end` is before `start`)."""
    off = holidays() if off is None else off
    if end < start:
        return -working_days_between(end, start, off)
    return sum(1 for i in range(1, (end - start).days + 1)
               if is_working_day(start + dt.timedelta(days=i), off))
