"""services.periods: the reporting calendar, read once per request, and the
one local "today" (Asia/Ho_Chi_Minh, never the server's date)."""
import datetime as dt

import sqlalchemy as sa
import time_machine

from survey_app.extensions import db
from survey_app.models import ReportingCalendar, Unit
from survey_app.services import periods
from tests.factories import make_unit

UTC = dt.timezone.utc


def test_calendar_read_failure_keeps_the_callers_transaction(ctx):
    """A failing calendar read (here: no table yet) falls back to the
    configuration without rolling back what the caller has not committed."""
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {ReportingCalendar.__tablename__}"))
    try:
        make_unit("KEEP")  # flushed, not committed
        p = periods.resolve_period("2025")
        assert (p.first, p.last) == (dt.date(2024, 12, 15), dt.date(2025, 12, 14))
        db.session.commit()
        db.session.remove()
        assert db.session.scalar(sa.select(Unit.code).where(Unit.code == "KEEP")) == "KEEP"
    finally:
        db.session.remove()
        ReportingCalendar.__table__.create(db.engine)


def test_calendar_row_is_used_and_an_edit_seen_in_the_same_context(ctx):
    assert periods.resolve_period("2025").first == dt.date(2024, 12, 15)
    db.session.add(ReportingCalendar(key="default", cutoff_month=11, cutoff_day=30, timezone="Asia/Ho_Chi_Minh"))
    db.session.commit()
    assert periods.resolve_period("2025").first == dt.date(2024, 11, 30)


def test_calendar_is_read_once_per_request(app):
    statements = []

    def count(conn, cursor, statement, *args):
        if "reporting_calendars" in statement:
            statements.append(statement)

    with app.test_request_context("/"):
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            for label in ("2025", "2025-Q1", "2024"):
                periods.resolve_period(label)
            periods.current_report_year()
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1


def test_today_is_the_local_date_not_the_servers(ctx):
    # 18:30 UTC on 31/12/2025 is already 01:30 on 01/01/2026 in Hanoi.
    with time_machine.travel(dt.datetime(2025, 12, 31, 18, 30, tzinfo=UTC), tick=False):
        assert periods.local_today() == dt.date(2026, 1, 1)
    with time_machine.travel(dt.datetime(2025, 12, 31, 16, 30, tzinfo=UTC), tick=False):
        assert periods.local_today() == dt.date(2025, 12, 31)


def test_report_year_turns_at_the_local_cutoff(ctx):
    before = dt.datetime(2025, 12, 14, 16, 59, tzinfo=UTC)   # 14/12 23:59 local
    after = dt.datetime(2025, 12, 14, 17, 0, tzinfo=UTC)     # 15/12 00:00 local
    assert periods.current_report_year(before) == 2025
    assert periods.current_report_year(after) == 2026
