"""Reporting periods.

The official report year ``Y`` runs from 15/12 of ``Y-1`` 00:00 up to (not
including) 15/12 of ``Y`` 00:00, local time (Asia/Ho_Chi_Minh, UTC+7). Quarters
and halves use the same cut-off day; calendar periods are also available.
Timestamps are stored in UTC, so 14/12/Y 23:30 local belongs to year Y and
15/12/Y 00:10 local to Y+1.

Grammar accepted by :func:`parse_period` (case-insensitive, spaces trimmed)::

    YYYY                 report year   (15/12/Y-1 .. 14/12/Y)
    YYYY-Qn              report quarter n = 1..4
                           Q1 15/12/Y-1..14/3, Q2 15/3..14/6, Q3 15/6..14/9, Q4 15/9..14/12
    YYYY-H1              the 6-month report 15/12/Y-1 .. 14/6/Y
    YYYY-H2              the second half    15/6/Y .. 14/12/Y (our choice: the
                           complement of H1 within the report year)
    cal:YYYY             calendar year 1/1..31/12
    cal:YYYY-Qn          calendar quarter (Jan-Mar, ...)
    cal:YYYY-Hn          calendar half (Jan-Jun, Jul-Dec)
    YYYY-MM, cal:YYYY-MM calendar month
    YYYY-MM-DD           one local day
    YYYY-MM-DD..YYYY-MM-DD  explicit local dates, both inclusive

With ``calendar=True`` the forms ``YYYY``, ``YYYY-Qn`` and ``YYYY-Hn`` are read
as calendar periods (as if prefixed with ``cal:``). The cut-off day (default
15/12) and the time zone are parameters of :func:`parse_period`.

A :class:`Period` has ``start``/``end`` as aware UTC datetimes (half-open,
``start <= t < end``) and ``first``/``last`` as local dates, both inclusive
(the form volume rows use).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .schema import DEFAULT_TZ, REPORT_CUTOFF

if TYPE_CHECKING:  # pandas only where a mask is computed: parsing periods stays light (the app's pages)
    import numpy as np
    import pandas as pd

__all__ = [
    "Period",
    "DEFAULT_TZ",
    "parse_period",
    "period_contains",
    "previous_period",
    "report_year_of",
]

UTC = dt.timezone.utc


@dataclass(frozen=True)
class Period:
    """A reporting period: local dates ``first``..``last`` inclusive.

    ``start`` and ``end`` are the same bounds as aware UTC datetimes, half-open.
    ``kind`` is one of year, quarter, half, month, day, range; ``index`` is the
    quarter/half/month number (0 otherwise); ``year`` the year in the label.
    """

    label: str
    start: dt.datetime
    end: dt.datetime
    first: dt.date
    last: dt.date
    kind: str = "range"
    calendar: bool = True
    year: int = 0
    index: int = 0
    tz: str = DEFAULT_TZ
    cutoff: tuple[int, int] = REPORT_CUTOFF

    @property
    def days(self) -> int:
        """Number of local days in the period."""
        return (self.last - self.first).days + 1


def _utc(day: dt.date, tz: str) -> dt.datetime:
    """Local midnight of ``day`` in ``tz`` as an aware UTC datetime."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def _add_months(day: dt.date, months: int) -> dt.date:
    """Same day-of-month ``months`` later (day clipped to the month's length)."""
    m = day.month - 1 + months
    y = day.year + m // 12
    m = m % 12 + 1
    last = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(y, m, min(day.day, last))


def _make(label, first, end_excl, kind, calendar, year, index, tz, cutoff) -> Period:
    return Period(
        label=label,
        start=_utc(first, tz),
        end=_utc(end_excl, tz),
        first=first,
        last=end_excl - dt.timedelta(days=1),
        kind=kind,
        calendar=calendar,
        year=year,
        index=index,
        tz=tz,
        cutoff=cutoff,
    )


def _report(year: int, kind: str, index: int, tz: str, cutoff) -> Period:
    """Report-calendar period (cut-off ``cutoff`` = (month, day) of the previous year)."""
    cm, cd = cutoff
    # the report year Y starts on the cut-off day of Y-1 (a 1 January cut-off starts it on 1/1/Y)
    year_start = dt.date(year - 1, cm, cd) if (cm, cd) != (1, 1) else dt.date(year, 1, 1)
    if kind == "year":
        first, months, label = year_start, 12, f"{year}"
    elif kind == "quarter":
        first, months, label = _add_months(year_start, 3 * (index - 1)), 3, f"{year}-Q{index}"
    elif kind == "half":
        first, months, label = _add_months(year_start, 6 * (index - 1)), 6, f"{year}-H{index}"
    else:  # pragma: no cover - internal
        raise ValueError(kind)
    return _make(label, first, _add_months(first, months), kind, False, year, index, tz, cutoff)


def _calendar(year: int, kind: str, index: int, tz: str, cutoff) -> Period:
    """Calendar period: year, quarter, half or month of ``year``."""
    months = {"year": 12, "quarter": 3, "half": 6, "month": 1}[kind]
    first = dt.date(year, 1 if kind == "year" else months * (index - 1) + 1, 1)
    suffix = {"year": "", "quarter": f"-Q{index}", "half": f"-H{index}", "month": f"-{index:02d}"}[kind]
    prefix = "" if kind == "month" else "cal:"
    return _make(f"{prefix}{year}{suffix}", first, _add_months(first, months), kind, True,
                 year, index, tz, cutoff)


def _range(first: dt.date, last: dt.date, tz: str, cutoff) -> Period:
    if last < first:
        raise ValueError(f"period ends ({last}) before it starts ({first})")
    kind = "day" if first == last else "range"
    label = first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
    return _make(label, first, last + dt.timedelta(days=1), kind, True, last.year, 0, tz, cutoff)


_RE_YEAR = re.compile(r"^(cal:)?(\d{4})(?:-(q[1-4]|h[12]))?$")
_RE_MONTH = re.compile(r"^(cal:)?(\d{4})-(\d{2})$")
_RE_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_period(text: str, calendar: bool = False, *, tz: str = DEFAULT_TZ,
                 cutoff: tuple[int, int] = REPORT_CUTOFF) -> Period:
    """Parse a period label (grammar in the module docstring); ``ValueError`` if invalid."""
    if isinstance(text, Period):
        return text
    raw = str(text).strip()
    t = raw.lower()
    if ".." in t:
        a, _, b = t.partition("..")
        try:
            return _range(dt.date.fromisoformat(a.strip()), dt.date.fromisoformat(b.strip()), tz, cutoff)
        except ValueError as exc:
            raise ValueError(f"unparseable period {raw!r}: {exc}") from None
    m = _RE_YEAR.match(t)
    if m:
        is_cal = calendar or bool(m.group(1))
        year = int(m.group(2))
        part = m.group(3)
        kind = "year" if not part else ("quarter" if part[0] == "q" else "half")
        index = int(part[1]) if part else 0
        return (_calendar if is_cal else _report)(year, kind, index, tz, cutoff)
    m = _RE_MONTH.match(t)
    if m and 1 <= int(m.group(3)) <= 12:
        return _calendar(int(m.group(2)), "month", int(m.group(3)), tz, cutoff)
    if _RE_DAY.match(t):
        try:
            day = dt.date.fromisoformat(t)
        except ValueError:
            raise ValueError(f"unparseable period {raw!r}: not a valid date") from None
        return _range(day, day, tz, cutoff)
    raise ValueError(
        f"unparseable period {raw!r}: expected YYYY, YYYY-Qn, YYYY-Hn, cal:YYYY[-Qn|-Hn], "
        "YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"
    )


def previous_period(period: Period) -> Period:
    """The period just before ``period``, of the same kind and calendar.

    Year -> previous year; quarter Q1 -> Q4 of the previous year; half H1 -> H2
    of the previous year; month -> previous month; day/range -> the same number
    of days ending the day before ``period.first``.
    """
    p = period
    if p.kind in ("year", "quarter", "half", "month"):
        n = {"year": 1, "quarter": 4, "half": 2, "month": 12}[p.kind]
        year, index = p.year, p.index
        if p.kind == "year":
            year -= 1
        elif index == 1:
            year, index = year - 1, n
        else:
            index -= 1
        make = _calendar if p.calendar else _report
        return make(year, p.kind, index, p.tz, p.cutoff)
    last = p.first - dt.timedelta(days=1)
    return _range(last - dt.timedelta(days=p.days - 1), last, p.tz, p.cutoff)


def period_contains(period: Period, ts) -> np.ndarray | pd.Series:
    """Boolean mask: ``period.start <= ts < period.end`` for aware timestamps.

    ``ts`` is a pandas Series (returns a Series) or anything ``pd.to_datetime``
    accepts; naive values are rejected because local time would be ambiguous.
    """
    import pandas as pd

    if isinstance(ts, pd.Series):
        s = ts if isinstance(ts.dtype, pd.DatetimeTZDtype) else pd.to_datetime(ts, utc=True, format="ISO8601")
        return (s >= pd.Timestamp(period.start)) & (s < pd.Timestamp(period.end))
    if isinstance(ts, dt.datetime):
        if ts.tzinfo is None:
            raise ValueError("naive datetime: give an offset or a time zone")
        return period.start <= ts < period.end
    s = pd.to_datetime(pd.Series(ts), utc=True, format="ISO8601")
    return ((s >= pd.Timestamp(period.start)) & (s < pd.Timestamp(period.end))).to_numpy()


def report_year_of(ts: dt.datetime, *, tz: str = DEFAULT_TZ, cutoff: tuple[int, int] = REPORT_CUTOFF) -> int:
    """Report year Y containing the aware datetime ``ts``."""
    local = ts.astimezone(ZoneInfo(tz)).date()
    cm, cd = cutoff
    if (cm, cd) == (1, 1):
        return local.year
    return local.year + 1 if (local.month, local.day) >= (cm, cd) else local.year


def with_label(period: Period, label: str) -> Period:
    """A copy of ``period`` with another label."""
    return replace(period, label=label)
