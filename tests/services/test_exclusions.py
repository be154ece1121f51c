"""Four-eyes exclusions (issue 11 hole 7; DESIGN.md "Integrity"): the rules
of `services.exclusions`, called as the staff pages and the CLI call them."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from survey_app.extensions import db
from survey_app.models import AuditLog, ExclusionRequest, Response, Unit, User
from survey_app.services import exclusions
from survey_app.services.exclusions import Refused


@pytest.fixture
def w(sapp, world):
    """The staff world in an app context: users by role, the flagged response of
    P-A, an unflagged one, and two more analysts (one inside P-A, one above it)."""
    from tests.factories import make_user

    with sapp.app_context():
        users = {role: db.session.scalar(select(User).where(User.username == name))
                 for role, name in world["users"].items()}
        a = db.session.scalar(select(Unit).where(Unit.code == "P-A"))
        p = db.session.scalar(select(Unit).where(Unit.code == "P"))
        users["analyst_in_unit"] = make_user("analyst-a", role="analyst", unit=a)
        users["analyst_2"] = make_user("analyst-p2", role="analyst", unit=p)
        db.session.commit()
        flagged = db.session.get(Response, uuid.UUID(world["flagged"]))
        plain = db.session.scalars(select(Response).where(Response.unit_id == a.id, Response.flags == "")
                                   .order_by(Response.submitted_at.desc())).first()
        yield dict(users=users, flagged=flagged, plain=plain, unit=a)


def _actions():
    return [a.action for a in db.session.scalars(select(AuditLog).order_by(AuditLog.id))]


def test_own_staff_may_not_ask_for_an_unflagged_response(w):
    leader = w["users"]["unit_leader"]
    with pytest.raises(Refused) as e:
        exclusions.request_change(leader, w["plain"], "exclude", "không thích phiếu này")
    assert e.value.status == 403
    assert db.session.scalar(select(ExclusionRequest)) is None and not w["plain"].excluded


def test_a_request_is_pending_and_changes_nothing_until_an_analyst_outside_approves(w):
    leader, analyst = w["users"]["unit_leader"], w["users"]["analyst"]
    req = exclusions.request_change(leader, w["flagged"], "exclude", "phiếu trùng lặp")
    assert req.status == "pending" and req.requested_by_id == leader.id
    db.session.refresh(w["flagged"])
    assert w["flagged"].excluded is False  # pending does not count
    assert exclusions.integrity_total({w["unit"].id}, *_year(w)).pending == 1
    # a leader cannot decide, nor an analyst of the unit itself
    for who, status in ((leader, 403), (w["users"]["analyst_in_unit"], 403), (w["users"]["counter_staff"], 403)):
        with pytest.raises(Refused) as e:
            exclusions.decide(who, req, True)
        assert e.value.status == status
    exclusions.decide(analyst, req, True, "đồng ý")
    db.session.refresh(w["flagged"])
    assert w["flagged"].excluded is True and w["flagged"].excluded_reason == "phiếu trùng lặp"
    assert (req.status, req.decided_by_id, req.decision_note) == ("approved", analyst.id, "đồng ý")
    counts = exclusions.integrity_total({w["unit"].id}, *_year(w))
    assert (counts.excluded, counts.pending) == (1, 0)
    assert _actions() == ["exclusion_request", "response_exclude"]
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "response_exclude")).one()
    assert entry.actor == analyst.username and entry.details["requested_by"] == leader.username


def _year(w):
    from survey_app.services.periods import current_report_year, resolve_period

    per = resolve_period(str(current_report_year()))
    return per.start, per.end


def test_the_requester_never_approves_their_own_request(w):
    analyst = w["users"]["analyst"]
    req = exclusions.request_change(analyst, w["plain"], "exclude", "nhập nhầm đơn vị")  # an analyst may ask
    with pytest.raises(Refused) as e:
        exclusions.decide(analyst, req, True)
    assert e.value.status == 403
    admin = w["users"]["admin"]
    with pytest.raises(Refused):
        exclusions.request_change(admin, w["plain"], "exclude", "lần thứ hai")  # one pending request at a time
    exclusions.decide(w["users"]["analyst_2"], req, False, "không đủ căn cứ")
    db.session.refresh(w["plain"])
    assert req.status == "rejected" and w["plain"].excluded is False
    with pytest.raises(Refused) as e:  # decided once
        exclusions.decide(admin, req, True)
    assert e.value.status == 409


def test_counting_again_follows_the_same_rule(w):
    leader, analyst = w["users"]["unit_leader"], w["users"]["analyst"]
    exclusions.decide(analyst, exclusions.request_change(leader, w["flagged"], "exclude", "phiếu trùng lặp"), True)
    with pytest.raises(Refused) as e:
        exclusions.request_change(leader, w["flagged"], "exclude", "lại lần nữa")
    assert e.value.status == 409  # already excluded
    back = exclusions.request_change(leader, w["flagged"], "include", "kiểm tra lại thấy hợp lệ")
    db.session.refresh(w["flagged"])
    assert w["flagged"].excluded is True  # still excluded while the undo waits
    with pytest.raises(Refused):
        exclusions.decide(leader, back, True)
    exclusions.decide(w["users"]["admin"], back, True)
    db.session.refresh(w["flagged"])
    assert w["flagged"].excluded is False and w["flagged"].excluded_reason is None
    # an unflagged response excluded by the analysts: its own unit may not ask to count it again
    exclusions.decide(w["users"]["analyst_2"],
                      exclusions.request_change(analyst, w["plain"], "exclude", "phiếu thử nghiệm"), True)
    with pytest.raises(Refused) as e:
        exclusions.request_change(leader, w["plain"], "include", "muốn tính lại")
    assert e.value.status == 403


@pytest.mark.parametrize("reason", [None, "", "   ", "abc", "x" * 501])
def test_a_reason_is_required_and_bounded(w, reason):
    with pytest.raises(Refused) as e:
        exclusions.request_change(w["users"]["unit_leader"], w["flagged"], "exclude", reason)
    assert e.value.status == 400
    assert db.session.scalar(select(ExclusionRequest)) is None


def test_withdraw_only_by_the_requester_and_outside_scope_is_not_found(w):
    from tests.factories import make_user

    leader = w["users"]["unit_leader"]
    req = exclusions.request_change(leader, w["flagged"], "exclude", "phiếu trùng lặp")
    with pytest.raises(Refused) as e:
        exclusions.withdraw(w["users"]["analyst"], req)
    assert e.value.status == 403
    exclusions.withdraw(leader, req)
    assert req.status == "withdrawn"
    with pytest.raises(Refused) as e:
        exclusions.decide(w["users"]["analyst"], req, True)
    assert e.value.status == 409
    # an analyst of another province neither sees nor decides P-A's requests
    other = make_user("analyst-q", role="analyst", unit=db.session.scalar(select(Unit).where(Unit.code == "Q")))
    req = exclusions.request_change(leader, w["flagged"], "exclude", "phiếu trùng lặp")
    with pytest.raises(Refused) as e:
        exclusions.decide(other, req, True)
    assert e.value.status == 404
    assert exclusions.pending_for(other) == [] and exclusions.decidable_count(other) == 0
    assert exclusions.decidable_count(w["users"]["analyst"]) == 1
    assert exclusions.decidable_count(w["users"]["analyst_in_unit"]) == 0
    with pytest.raises(Refused) as e:
        exclusions.get_response(other, w["flagged"].id)
    assert e.value.status == 404


def test_two_deciders_at_once_cannot_both_win(w):
    req = exclusions.request_change(w["users"]["unit_leader"], w["flagged"], "exclude", "phiếu trùng lặp")
    # another worker approved it a moment ago; this session still holds it as pending
    db.session.execute(ExclusionRequest.__table__.update().where(ExclusionRequest.id == req.id)
                       .values(status="rejected"))
    assert req.status == "pending"
    with pytest.raises(Refused) as e:
        exclusions.decide(w["users"]["analyst"], req, True)
    assert e.value.status == 409
    db.session.refresh(w["flagged"])
    assert w["flagged"].excluded is False


def test_integrity_counts_typed_share_per_unit(w):
    from tests.factories import make_response

    unit = w["unit"]
    start, end = _year(w)
    before = exclusions.integrity_by_unit({unit.id}, start, end)[unit.id]
    assert before.typed == 0 and before.typed_share == 0
    at = w["flagged"].submitted_at
    for channel in ("paper", "phone"):
        make_response(unit, {"overall": 5}, channel=channel, submitted_at=at)
    db.session.commit()
    after = exclusions.integrity_by_unit({unit.id}, start, end)[unit.id]
    assert (after.typed, after.total) == (2, before.total + 2)
    assert after.typed_share == pytest.approx(2 / (before.total + 2))
