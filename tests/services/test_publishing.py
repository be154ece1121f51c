"""Closing a period (frozen, verifiable snapshot), versions not edits (the guard,
reopening, the diff) and the approval chain's states and permissions."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from tests.factories import seed_publishing


@pytest.fixture
def pub(sapp):
    data = seed_publishing(sapp)
    with sapp.app_context():
        yield sapp, data


def _user(name):
    from survey_app.extensions import db
    from survey_app.models import User

    return db.session.scalar(sa.select(User).where(User.username == name))


def _live(code):
    from survey_app.services import stats
    from survey_app.services.publishing import scope_of
    from survey_app.services.units import subtree_ids

    unit, _ = scope_of("P")
    res = stats.compute("2025", unit_ids=sorted(subtree_ids(unit.id)))
    return stats.unit_row(res.table, code)


def _row(snap, code):
    return next(r for r in snap.table if r["unit_code"] == code and r["level"] == "unit")


def _exclude(rid):
    from survey_app.extensions import db
    from survey_app.models import Response

    r = db.session.get(Response, uuid.UUID(rid))
    r.excluded, r.excluded_reason = True, "test"
    db.session.commit()


def test_close_freezes_every_row_with_method_and_hash(pub, backend):
    from survey_app.models import UnitApproval
    from survey_app.services import publishing

    app, data = pub
    snap = publishing.close_period("2025", "P", user=_user("analyst_p"))
    assert snap.version == 1 and snap.state == "closed" and len(snap.input_hash) == 64
    codes = {(r["unit_code"], r["level"]) for r in snap.table}
    assert {("P-A", "unit"), ("P-B", "unit"), ("P-C", "unit")} <= codes
    assert not any(c == "Q-Y" for c, _ in codes)  # another province is not in P's snapshot
    assert any(level != "unit" and c == "P" for c, level in codes)  # P's roll-up row
    a = _row(snap, "P-A")
    for col in ("index", "index_ci_low", "index_ci_high", "n", "N", "adequacy", "target", "target_status",
                "staff_rate", "trend_direction"):
        assert col in a
    assert a["n"] == 120 and a["target"] == 0.8
    assert snap.meta["method_version"].startswith("sipas-index/") and snap.method_version == snap.meta[
        "method_version"]
    assert snap.meta["parameters"]["ci"] == "wilson" and snap.data_cutoff
    assert snap.meta["input_counts"]["responses"] == 210 and snap.meta["input_counts"]["answers"] == 210 * 6
    assert "excluded" in snap.meta["n_left_out"]
    assert sorted(a.unit.code for a in snap.approvals) == ["P", "P-A", "P-B", "P-C"]
    assert {a.status for a in snap.approvals} == {"draft"}
    assert UnitApproval.query.count() == 4


def test_closed_period_refuses_changes_and_reopening_makes_version_2(pub):
    from survey_app.extensions import db
    from survey_app.models import Response
    from survey_app.services import publishing

    app, data = pub
    analyst = _user("analyst_p")
    v1 = publishing.close_period("2025", "P", user=analyst)
    frozen = dict(_row(v1, "P-A"))
    resp = db.session.get(Response, uuid.UUID(data["response"]))
    with pytest.raises(publishing.PeriodClosed) as exc:
        publishing.guard_change("exclusion", resp.unit_id, resp.submitted_at)
    assert "2025" in str(exc.value) and "P" in str(exc.value) and exc.value.status == 409
    with pytest.raises(publishing.PeriodClosed):
        publishing.guard_change("target", None, year=2025)
    publishing.guard_change("target", None, year=2026)  # another year: allowed
    q_y = db.session.scalar(sa.select(Response.unit_id).join(Response.unit).where(sa.text("units.code = 'Q-Y'"))
                            .limit(1))
    publishing.guard_change("exclusion", q_y, resp.submitted_at)  # another province: not closed

    with pytest.raises(publishing.PublishingError):
        publishing.reopen_period("2025", "P", reason="", user=analyst)
    v2 = publishing.reopen_period("2025", "P", reason="Phiếu trùng lặp phát hiện sau khi khoá sổ", user=analyst)
    assert v2.version == 2 and v2.state == "open"
    publishing.guard_change("exclusion", resp.unit_id, resp.submitted_at)  # open again: allowed
    for rid in [data["response"]] + [str(r) for r in db.session.scalars(
            sa.select(Response.id).where(Response.unit_id == resp.unit_id).order_by(Response.id).limit(9))]:
        _exclude(rid)
    live = _live("P-A")
    assert live["n"] < 120  # the live view changed ...
    assert _row(publishing.get_version("2025", "P", 1), "P-A") == frozen  # ... version 1 did not
    v2 = publishing.close_period("2025", "P", user=analyst)
    assert v2.version == 2 and _row(v2, "P-A")["n"] == live["n"]
    va, vb, rows = publishing.diff("2025", "P", 1, 2)
    moved = {r["unit_code"]: r for r in rows if r["level"] == "unit"}
    assert moved["P-A"]["change"] == "changed" and moved["P-A"]["n_a"] == 120
    assert moved["P-A"]["index_change"] == pytest.approx(moved["P-A"]["index_b"] - moved["P-A"]["index_a"])
    assert "n 120" in moved["P-A"]["why"] and "Phiếu trùng lặp" in moved["P-A"]["why"]
    assert moved["P-B"]["change"] == "same" and moved["P-B"]["why"] == ""
    csv_text = publishing.diff_csv(rows)
    assert csv_text.splitlines()[0].startswith("unit_code,level,name_vi,change,index_a,index_b")
    assert "P-A,unit" in csv_text
    # both versions stay readable
    assert [v.version for v in publishing.versions("2025", "P")] == [1, 2]


def test_verify_reproduces_exactly_and_reports_a_changed_input(pub):
    from survey_app.extensions import db
    from survey_app.models import Response
    from survey_app.services import publishing

    app, data = pub
    publishing.close_period("2025", "P")
    v = publishing.verify("2025", "P")
    assert v.ok and v.hash_ok and v.differences == [] and v.current_hash == v.stored_hash
    # A change behind the guard's back (straight SQL) is found, to the cell.
    db.session.execute(sa.update(Response).where(Response.id == uuid.UUID(data["response"]))
                       .values(excluded=True))
    db.session.commit()
    v = publishing.verify("2025", "P")
    assert not v.ok and not v.hash_ok
    cells = {(d["unit_code"], d["column"]) for d in v.differences}
    assert ("P-A", "n") in cells and ("P-A", "index") in cells
    assert not any(code == "P-B" for code, _ in cells)


def test_close_refusals(pub):
    from survey_app.services import publishing

    app, data = pub
    with pytest.raises(publishing.PublishingError) as exc:
        publishing.close_period("2025", "P", user=_user("analyst_q"))
    assert exc.value.status == 403
    with pytest.raises(publishing.PublishingError) as exc:
        publishing.close_period("2025", "P", user=_user("leader_a"))
    assert exc.value.status == 403
    with pytest.raises(publishing.PublishingError) as exc:
        publishing.close_period("2999", "P")
    assert exc.value.status == 409 and "2999" in str(exc.value)
    publishing.close_period("2025", "P")
    with pytest.raises(publishing.PublishingError) as exc:
        publishing.close_period("2025", "P")
    assert exc.value.status == 409 and "1" in str(exc.value)
    with pytest.raises(publishing.PublishingError) as exc:
        publishing.close_period("2025-13", "P")
    assert exc.value.status == 400


def test_approval_chain_states_and_permissions(pub):
    from survey_app.services import publishing

    app, data = pub
    snap = publishing.close_period("2025", "P")
    a = publishing.approval_for(snap, "P-A")
    leader, analyst, member, outsider = (_user(n) for n in ("leader_a", "analyst_p", "analyst_a", "analyst_q"))
    with pytest.raises(publishing.PublishingError):  # draft: nothing to accept yet
        publishing.accept(a, analyst)
    with pytest.raises(publishing.PublishingError) as exc:  # another unit's leader
        publishing.submit(publishing.approval_for(snap, "P-B"), leader, "Chúng tôi đã cải thiện thủ tục.")
    assert exc.value.status == 403
    with pytest.raises(publishing.PublishingError) as exc:
        publishing.submit(a, leader, "ngắn")
    assert exc.value.status == 400
    publishing.submit(a, leader, "Thời gian chờ giảm; sẽ cải thiện kênh góp ý.")
    assert a.status == "submitted" and a.submitted_by == "leader_a"
    for who in (outsider, member, leader):  # outside the scope, a member of the unit, the rated unit's leader
        with pytest.raises(publishing.PublishingError) as exc:
            publishing.accept(a, who)
        assert exc.value.status == 403
    with pytest.raises(publishing.PublishingError) as exc:
        publishing.publish(a, leader)  # a unit leader cannot publish
    assert exc.value.status == 403
    with pytest.raises(publishing.PublishingError):
        publishing.publish(a, analyst)  # not accepted yet
    publishing.request_changes(a, analyst, "Giải thích số phiếu giấy.")
    assert a.status == "changes_requested"
    publishing.submit(a, leader, "Đã bổ sung giải thích về phiếu giấy.")
    publishing.accept(a, analyst)
    assert a.status == "accepted" and a.acceptances[0]["by"] == "analyst_p"
    with pytest.raises(publishing.PublishingError) as exc:
        publishing.publish(a, outsider)
    assert exc.value.status == 403
    publishing.publish(a, analyst)
    assert a.status == "published" and a.published_by == "analyst_p"
    assert publishing.statuses("2025", None)["P-A"] == {"status": "published", "version": 1}
    assert publishing.statuses("2025", None)["P-B"]["status"] == "draft"


def test_two_approval_levels(make_loaded_app):
    from tests.factories import make_user

    app = make_loaded_app(PUBLISH_APPROVAL_LEVELS=2)
    seed_publishing(app)
    with app.app_context():
        from survey_app.extensions import db
        from survey_app.services import publishing

        make_user("analyst_a2", role="analyst", unit=publishing.scope_of("P")[0])
        db.session.commit()
        a = publishing.approval_for(publishing.close_period("2025", "P"), "P-A")
        publishing.submit(a, _user("leader_a"), "Phản hồi của đơn vị về kết quả.")
        publishing.accept(a, _user("analyst_p"))
        assert a.status == "submitted" and len(a.acceptances) == 1
        with pytest.raises(publishing.PublishingError):  # the same level again
            publishing.accept(a, _user("analyst_a2"))
        publishing.accept(a, _user("admin"))
        assert a.status == "accepted"


def test_every_action_is_audited(pub):
    from survey_app.models import AuditLog
    from survey_app.services import publishing

    publishing.close_period("2025", "P")
    publishing.verify("2025", "P")
    publishing.reopen_period("2025", "P", reason="Sửa số giao dịch")
    actions = [a.action for a in AuditLog.query.order_by(AuditLog.id)]
    assert actions == ["period_close", "period_verify", "period_reopen"]


def test_batch_refusal_names_an_import_that_would_alter_a_closed_period(pub):
    import datetime as dt

    from survey_app.extensions import db
    from survey_app.models import ImportBatch, Unit
    from survey_app.services import publishing
    from tests.factories import make_response, make_volume

    app, data = pub
    publishing.close_period("2025", "P")
    unit = db.session.scalar(sa.select(Unit).where(Unit.code == "P-B"))
    other = db.session.scalar(sa.select(Unit).where(Unit.code == "Q-Y"))

    def batch(n):
        b = ImportBatch(kind="responses", sha256=f"{n}" * 64, filename="x.csv", rows=1, actor="t")
        db.session.add(b)
        db.session.flush()
        return b.id

    late = batch(1)  # a 2025 response of P-B: P's 2025 is closed
    make_response(unit, submitted_at=dt.datetime(2025, 11, 30, 3, tzinfo=dt.timezone.utc), import_batch_id=late)
    assert "2025" in publishing.batch_refusal(late)
    elsewhere = batch(2)  # Q's 2025 is not closed; P's 2026 neither
    make_response(other, submitted_at=dt.datetime(2025, 11, 30, 3, tzinfo=dt.timezone.utc), import_batch_id=elsewhere)
    make_response(unit, submitted_at=dt.datetime(2026, 1, 5, 3, tzinfo=dt.timezone.utc), import_batch_id=elsewhere)
    assert publishing.batch_refusal(elsewhere) is None
    vols = batch(3)
    make_volume(unit, 10, start=dt.date(2025, 9, 15), end=dt.date(2025, 12, 14)).import_batch_id = vols
    db.session.flush()
    assert publishing.batch_refusal(vols) is not None
    db.session.rollback()


def test_an_import_into_a_closed_period_is_refused_whole(pub):
    """The import services call the guard: a responses or volumes file that would
    alter a closed period is rejected and writes nothing; after reopening it goes in."""
    import io

    from survey_app.extensions import db
    from survey_app.models import ImportBatch, Response, Volume
    from survey_app.services import csv_import, publishing

    publishing.close_period("2025", "P")
    before = (db.session.scalar(sa.select(sa.func.count()).select_from(Response)),
              db.session.scalar(sa.select(sa.func.count()).select_from(Volume)))
    responses = ("response_id,unit_code,counter_code,submitted_at,channel,instrument,stratum,excluded,overall\n"
                 ",P-B,,2025-11-30T09:00:00+07:00,paper,,,,5\n")
    volumes = "unit_code,period_start,period_end,stratum,transactions\nP-B,2025-09-15,2025-12-14,_all,10\n"
    with pytest.raises(csv_import.ImportRejected) as rej:
        csv_import.import_responses(io.BytesIO(responses.encode()), "late.csv")
    assert "2025" in str(rej.value.summary)
    with pytest.raises(csv_import.ImportRejected):
        csv_import.import_volumes(io.BytesIO(volumes.encode()), "late-volumes.csv", replace=True)
    after = (db.session.scalar(sa.select(sa.func.count()).select_from(Response)),
             db.session.scalar(sa.select(sa.func.count()).select_from(Volume)))
    assert after == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportBatch)) == 0

    publishing.reopen_period("2025", "P", reason="Bổ sung phiếu giấy")
    assert csv_import.import_responses(io.BytesIO(responses.encode()), "late.csv").rows == 1


def test_an_exclusion_waits_while_closed_and_after_reopening_changes_live_not_published(pub):
    """Through the real four-eyes service: closing freezes the figures; a later exclusion changes the live
    view, never the published version."""
    from survey_app.extensions import db
    from survey_app.models import Response
    from survey_app.services import exclusions, publishing

    app, data = pub
    analyst, leader, admin = _user("analyst_p"), _user("leader_a"), _user("admin")
    snap = publishing.close_period("2025", "P", user=analyst)
    a = publishing.approval_for(snap, "P-A")
    publishing.submit(a, leader, "Nhận xét của lãnh đạo xã về kết quả năm.")
    publishing.accept(a, analyst)
    publishing.publish(a, analyst)
    published = publishing.public_rows("P", 2025)[1][0]
    resp = db.session.get(Response, uuid.UUID(data["response"]))
    req = exclusions.request_change(analyst, resp, "exclude", "Phiếu trùng lặp phát hiện muộn")
    assert req.status == "pending"  # asking is allowed: it changes nothing
    with pytest.raises(exclusions.Refused) as exc:
        exclusions.decide(admin, req, True)
    assert exc.value.status == 409 and "2025" in str(exc.value)
    db.session.refresh(req)
    assert req.status == "pending" and not db.session.get(Response, resp.id).excluded
    publishing.reopen_period("2025", "P", reason="Phiếu trùng lặp phát hiện muộn", user=analyst)
    exclusions.decide(admin, req, True)
    assert _live("P-A")["n"] == 119  # the live view moved ...
    assert publishing.public_rows("P", 2025)[1][0] == published  # ... the published figure did not
    assert published["n"] == 120 and published["version"] == 1
