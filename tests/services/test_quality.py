import datetime as dt

from sqlalchemy import select

from survey_app.extensions import db
from survey_app.models import AuditLog, Response
from survey_app.services import quality
from tests.factories import make_counter, make_response, make_unit

T0 = dt.datetime(2025, 5, 5, 2, 0, tzinfo=dt.timezone.utc)


def _flags(r):
    db.session.refresh(r)
    return set(filter(None, r.flags.split(";")))


def test_scan_flags_burst_duplicates_and_identical_runs(ctx):
    u = make_unit("X1")
    c = make_counter(u)
    other = make_counter(u)
    burst = [make_response(u, {"overall": i % 5 + 1, "staff": 3}, counter=c, device_hash="dev-a",
                           submitted_at=T0 + dt.timedelta(seconds=20 * i)) for i in range(6)]
    # same device but spread over hours: not a burst
    calm = [make_response(u, {"overall": 4}, counter=other, device_hash="dev-b",
                          submitted_at=T0 + dt.timedelta(hours=i)) for i in range(5)]
    # an exact duplicate 5 s later
    orig = make_response(u, {"overall": 2, "access": 3}, counter=other, submitted_at=T0 + dt.timedelta(days=1),
                         comment="Chờ lâu")
    dup = make_response(u, {"overall": 2, "access": 3}, counter=other,
                        submitted_at=T0 + dt.timedelta(days=1, seconds=5), comment="Chờ lâu")
    # four identical answer vectors within 3 minutes, different comments
    ident = [make_response(u, {"overall": 5, "staff": 5}, counter=c, comment=f"c{i}",
                           submitted_at=T0 + dt.timedelta(days=2, seconds=30 * i)) for i in range(4)]
    db.session.commit()
    counts = quality.scan()
    assert [("burst" in _flags(r)) for r in burst] == [False, False, False, True, True, True]
    assert not any(_flags(r) for r in calm)
    assert not _flags(orig) and _flags(dup) == {"duplicate"}
    assert [("identical_answers" in _flags(r)) for r in ident] == [False, False, True, True]
    assert "burst" in burst[3].flag_reason
    assert counts["burst"] == 3 and counts["duplicate"] == 1 and counts["identical_answers"] == 2
    # nothing is excluded by a flag
    assert not db.session.scalars(select(Response).where(Response.excluded.is_(True))).all()
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "quality_scan")) is not None
    # idempotent
    again = quality.scan()
    assert again["responses_flagged"] == 0


def test_flag_command(runner, ctx):
    u = make_unit("X1")
    c = make_counter(u)
    for i in range(5):
        make_response(u, {"overall": 1}, counter=c, device_hash="d", submitted_at=T0 + dt.timedelta(seconds=i))
    db.session.commit()
    res = runner.invoke(args=["responses", "flag", "--period", "2025"])
    assert res.exit_code == 0 and "burst: 2" in res.output
    assert runner.invoke(args=["responses", "flag", "--period", "nope"]).exit_code == 2


def test_online_and_batch_flags_agree(app):
    """One rule set: a burst flagged as it arrives carries the reason the batch
    scan would write, and a scan afterwards adds nothing."""
    from survey_app.services import instruments, responses, submissions

    with app.app_context():
        u = make_unit("X1")
        c = make_counter(u)
        db.session.commit()
        inst = instruments.latest_instrument("counter-quick")
        outcomes = [responses.create_response(
            unit_id=u.id, counter_id=c.id, instrument=inst, channel="qr", dev_hash="dev-a",
            clean=submissions.Clean(answers={"overall": i % 5 + 1, "staff": (i + 2) % 5 + 1}),
            idempotency_key=submissions.new_key()) for i in range(5)]
        assert [o.flags for o in outcomes] == ["", "", "", "burst", "burst"]
        online = {r.id: r.flag_reason for r in db.session.scalars(select(Response).where(Response.flags != ""))}
        assert quality.scan()["responses_flagged"] == 0
        db.session.execute(Response.__table__.update().values(flags="", flag_reason=None))
        db.session.commit()
        assert quality.scan()["burst"] == 2
        batch = {r.id: r.flag_reason for r in db.session.scalars(select(Response).where(Response.flags != ""))}
        assert batch == online
        assert next(iter(online.values())) == quality.reason("burst", "qr")
