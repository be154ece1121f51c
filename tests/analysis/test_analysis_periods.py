import datetime as dt

import pandas as pd
import pytest

from analysis.periods import parse_period, period_contains, previous_period, report_year_of

UTC = dt.timezone.utc
ICT = dt.timezone(dt.timedelta(hours=7))


def test_report_year_boundaries_worked_example():
    y = parse_period("2025")
    late = dt.datetime(2025, 12, 14, 23, 30, tzinfo=ICT)     # 14/12 23:30 local -> year 2025
    early = dt.datetime(2025, 12, 15, 0, 10, tzinfo=ICT)     # 15/12 00:10 local -> year 2026
    assert period_contains(y, late)
    assert not period_contains(y, early)
    assert period_contains(parse_period("2026"), early)
    assert report_year_of(late) == 2025 and report_year_of(early) == 2026
    # stored in UTC
    s = pd.Series(pd.to_datetime([late.astimezone(UTC), early.astimezone(UTC)], utc=True))
    assert period_contains(y, s).tolist() == [True, False]


def test_report_year_bounds_in_utc_and_local_days():
    y = parse_period("2025")
    assert y.start == dt.datetime(2024, 12, 14, 17, 0, tzinfo=UTC)
    assert y.end == dt.datetime(2025, 12, 14, 17, 0, tzinfo=UTC)
    assert (y.first, y.last) == (dt.date(2024, 12, 15), dt.date(2025, 12, 14))
    assert y.days == 365


@pytest.mark.parametrize("label,first,last", [
    ("2025-Q1", "2024-12-15", "2025-03-14"),
    ("2025-Q2", "2025-03-15", "2025-06-14"),
    ("2025-Q3", "2025-06-15", "2025-09-14"),
    ("2025-Q4", "2025-09-15", "2025-12-14"),
    ("2025-H1", "2024-12-15", "2025-06-14"),
    ("2025-H2", "2025-06-15", "2025-12-14"),
    ("cal:2025", "2025-01-01", "2025-12-31"),
    ("cal:2025-Q2", "2025-04-01", "2025-06-30"),
    ("cal:2025-H2", "2025-07-01", "2025-12-31"),
    ("2025-03", "2025-03-01", "2025-03-31"),
    ("2024-02", "2024-02-01", "2024-02-29"),
    ("2025-01-01..2025-03-31", "2025-01-01", "2025-03-31"),
    ("2025-05-17", "2025-05-17", "2025-05-17"),
])
def test_period_grammar(label, first, last):
    p = parse_period(label)
    assert p.first.isoformat() == first and p.last.isoformat() == last


def test_calendar_flag_reads_plain_forms_as_calendar():
    assert parse_period("2025", calendar=True).first == dt.date(2025, 1, 1)
    assert parse_period("2025-Q1", calendar=True).last == dt.date(2025, 3, 31)


@pytest.mark.parametrize("bad", ["2025x", "2025-Q5", "2025-13", "2025-02-30", "2025-03-01..2025-02-01", "", "Q1"])
def test_unparseable_periods_raise(bad):
    with pytest.raises(ValueError):
        parse_period(bad)


@pytest.mark.parametrize("label,prev", [
    ("2025", "2024"), ("2025-Q1", "2024-Q4"), ("2025-Q3", "2025-Q2"), ("2025-H1", "2024-H2"),
    ("cal:2025", "cal:2024"), ("2025-01", "2024-12"),
    ("2025-03-01..2025-03-10", "2025-02-19..2025-02-28"),
])
def test_previous_period(label, prev):
    assert previous_period(parse_period(label)).label == prev


def test_configurable_cutoff():
    p = parse_period("2025", cutoff=(1, 1))
    assert (p.first, p.last) == (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    p = parse_period("2025", cutoff=(10, 1))
    assert (p.first, p.last) == (dt.date(2024, 10, 1), dt.date(2025, 9, 30))
    assert parse_period("2025-Q2", cutoff=(10, 1)).first == dt.date(2025, 1, 1)


def test_naive_datetime_is_rejected():
    with pytest.raises(ValueError):
        period_contains(parse_period("2025"), dt.datetime(2025, 1, 1))
