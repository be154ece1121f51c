"""`response_cells` (issue 14): the triggers on `responses` keep the cell
counts exact through every kind of write, on SQLite and PostgreSQL, and the
index computed from the cells equals the one computed from the responses."""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy import select

from survey_app.extensions import db
from survey_app.models import Response, Unit, UnitMark
from survey_app.services import aggregates
from tests.factories import make_counter, make_response, make_unit

UTC = dt.timezone.utc


def _exact():
    kept, fresh = aggregates.compare_with_responses()
    assert kept == fresh
    return kept


def _marks():
    return dict(db.session.execute(select(UnitMark.unit_id, UnitMark.seq)).all())


def test_cells_stay_exact_through_mixed_writes(ctx):
    from survey_app.services import csv_import
    from survey_app.services.instruments import latest
    from survey_app.services.responses import insert_responses

    p = make_unit("P", kind="province")
    a, b = make_unit("P-A", parent=p), make_unit("P-B", parent=p)
    ca = make_counter(a)
    db.session.commit()
    # ORM inserts (the citizen form and paper entry write through the same table)
    rows = [make_response(a, {"overall": 4, "staff": 5}, counter=ca),
            make_response(a, {"overall": 4, "staff": 5}, counter=ca),
            make_response(a, {"overall": 2}, age_group="under_18"),
            make_response(b, {"overall": 5, "access": 3}, stratum="dat_dai",
                          submitted_at=dt.datetime(2025, 6, 30, 17, 30, tzinfo=UTC))]  # 1 July local
    db.session.commit()
    cells = _exact()
    assert sum(cells.values()) == 4
    assert cells[(a.id, ca.id, "_all", False, False, rows[0].pattern, 20250601)] == 2
    assert (b.id, 0, "dat_dai", False, False, rows[3].pattern, 20250701) in cells  # the local month
    # bulk insert (COPY on PostgreSQL)
    inst = latest(db.session, "counter-quick")
    bulk = [dict(id=uuid.uuid4(), unit_id=b.id, counter_id=None, instrument_id=inst.id, channel="import",
                 submitted_at=dt.datetime(2025, 3, 1, 3, tzinfo=UTC), received_at=dt.datetime.now(UTC),
                 stratum="_all", excluded=False, flags="") for _ in range(30)]
    answers = [dict(response_id=r["id"], item_key="overall", value=1 + i % 5) for i, r in enumerate(bulk)]
    insert_responses(bulk, answers)
    db.session.commit()
    _exact()
    # a CSV import
    text = ("response_id,unit_code,submitted_at,channel,instrument,stratum,excluded,overall\n"
            ",P-A,2025-08-01T09:00:00Z,qr,counter-quick,,false,4\n,P-B,2025-08-01T10:00:00Z,qr,,,true,5\n")
    assert csv_import.import_responses(text.encode(), "r.csv").rows == 2
    _exact()
    before = _marks()
    # an exclusion (ORM update of `excluded`) moves one response to another cell; the unit is marked
    rows[0].excluded = True
    db.session.commit()
    cells = _exact()
    assert cells[(a.id, ca.id, "_all", False, False, rows[0].pattern, 20250601)] == 1
    after = _marks()
    assert after[a.id] > before[a.id] and after[b.id] == before[b.id]
    # Core updates of many rows, of a key column and of a column no cell depends on
    db.session.execute(sa.update(Response).where(Response.unit_id == b.id).values(stratum="ho_tich"))
    db.session.execute(sa.update(Response).values(comment="ghi chú"))
    db.session.execute(sa.update(Response).where(Response.id == rows[2].id)
                       .values(age_group=None, submitted_at=dt.datetime(2024, 12, 31, 18, tzinfo=UTC)))
    db.session.commit()
    cells = _exact()
    assert cells[(a.id, 0, "_all", False, False, rows[2].pattern, 20250101)] == 1
    marks = _marks()
    db.session.execute(sa.update(Response).values(comment="lần hai"))  # no cell changes: no unit marked
    db.session.commit()
    assert _marks() == marks
    # a moved response (another unit), ORM and Core deletes
    rows[1].unit_id = b.id
    db.session.commit()
    _exact()
    db.session.delete(rows[3])
    db.session.commit()
    db.session.execute(sa.delete(Response).where(Response.channel == "import", Response.unit_id == b.id))
    db.session.commit()
    cells = _exact()
    assert sum(cells.values()) == db.session.scalar(select(sa.func.count()).select_from(Response))
    # a rolled-back write leaves no trace
    make_response(a, {"overall": 1})
    db.session.rollback()
    _exact()
    # rebuild recounts the same cells
    kept = _exact()
    aggregates.rebuild()
    db.session.commit()
    assert _exact() == kept


def test_demo_seed_and_backup_restore_keep_the_cells(ctx, tmp_path):
    from survey_app.services import backup, demo

    demo.seed(400, 7, "demo-password-1")
    db.session.commit()
    kept = _exact()
    assert sum(kept.values()) == db.session.scalar(select(sa.func.count()).select_from(Response)) > 0
    path = tmp_path / "b.zip"
    backup.backup(db.engine, path)
    db.session.remove()
    backup.restore(db.engine, path, force=True)
    assert _exact() == kept
    import zipfile

    assert not [n for n in zipfile.ZipFile(path).namelist() if "response_cells" in n or "unit_marks" in n]


def test_the_index_from_the_cells_equals_the_index_from_the_responses(ctx):
    """The same figures whichever table `response_frame` reads (a whole-month
    period reads the cells, any other the responses)."""
    import pandas as pd

    from survey_app.services import demo, stats
    from survey_app.services.periods import resolve_period

    demo.seed(600, 11, "demo-password-1")
    db.session.commit()
    year = db.session.scalar(select(sa.func.max(Response.submitted_at))).year
    for label in (str(year), f"{year}-Q2", str(year - 1)):
        period = resolve_period(label)
        assert aggregates.aligned_buckets(period) is not None
        from_cells = stats.response_frame(period)
        from_rows = stats.response_frame(period, source="responses")
        pd.testing.assert_frame_equal(from_cells, from_rows)
        ids = sorted(db.session.scalars(select(Unit.id).where(Unit.kind == "commune")).all())[:5]
        pd.testing.assert_frame_equal(stats.response_frame(period, ids), stats.response_frame(period, ids,
                                                                                              source="responses"))
        pd.testing.assert_frame_equal(stats.response_frame(period, ids, by="counter"),
                                      stats.response_frame(period, ids, by="counter", source="responses"))
        assert stats.distribution(ids, period) == stats.distribution(ids, period, source="responses")
        raw = {uid: (int(n), int(x)) for uid, n, x in db.session.execute(
            select(Response.unit_id, sa.func.count(), sa.func.sum(sa.case((Response.excluded.is_(True), 1), else_=0)))
            .where(Response.unit_id.in_(ids), Response.submitted_at >= period.start,
                   Response.submitted_at < period.end).group_by(Response.unit_id))}
        assert aggregates.unit_counts(ids, period.start, period.end) == raw  # the integrity counts
    # a period that is not whole local months is read from the responses
    odd = resolve_period(f"{year}-01-03..{year}-02-20")
    assert aggregates.aligned_buckets(odd) is None
    assert len(stats.response_frame(odd)) == len(stats.response_frame(odd, source="responses"))
