"""The figures store (issue 14): figures are served from the shared cache or
its database copy, a change at one unit makes stale only the figures of the
scopes containing it, a stale figure is served while `figures.recompute`
(services/jobs.py) computes it again, and every figures page says when its
figures were computed."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from survey_app.extensions import cache, db
from survey_app.models import FigureEntry, Job, Response, Unit
from survey_app.services import jobs
from survey_app.services.periods import resolve_period
from survey_app.services.units import subtree_ids
from survey_app.staff import figures


def _ids(code):
    return sorted(subtree_ids(db.session.scalar(sa.select(Unit.id).where(Unit.code == code))))


def _n(res, code):
    return int(figures.unit_row(res.table, code)["n"])


def _entry(key):
    return db.session.get(FigureEntry, key)


def _later(seconds=60):
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)


@pytest.fixture
def bg(sapp, world):
    sapp.config["FIGURES_BACKGROUND"] = True
    return sapp


def test_a_change_in_one_province_leaves_the_other_untouched(bg, world):
    with bg.test_request_context("/"):
        period = resolve_period(str(world["year"]))
        p_ids, q_ids = _ids("P"), _ids("Q")
        res_p, res_q = figures.index_result(period, p_ids), figures.index_result(period, q_ids)
        res_all = figures.index_result(period, None)
        n_a = _n(res_p, "P-A")
        keys = {s: figures.cache_key("index", period, ids, {}) for s, ids in (("P", p_ids), ("Q", q_ids),
                                                                            ("all", None))}
        at = {s: _entry(k).computed_at for s, k in keys.items()}
    with bg.test_request_context("/"):  # an exclusion at commune P-A
        a = db.session.scalar(sa.select(Unit.id).where(Unit.code == "P-A"))
        r = db.session.scalars(sa.select(Response).where(Response.unit_id == a, Response.excluded.is_(False),
                                                         Response.submitted_at >= period.start)).first()
        r.excluded = True
        db.session.commit()
    with bg.test_request_context("/"):
        # Q's figures are fresh: served, nothing queued; P's and the whole tree's are stale: served as they
        # were while a job recomputes them
        assert _n(figures.index_result(period, q_ids), "Q-Y") == _n(res_q, "Q-Y")
        assert _n(figures.index_result(period, p_ids), "P-A") == n_a
        assert _n(figures.index_result(period, None), "P-A") == _n(res_all, "P-A")
        assert figures.queue_scheduled() == 2  # what a staff request does when it ends
        queued = {j.key for j in db.session.scalars(sa.select(Job).where(Job.kind == figures.RECOMPUTE_JOB))}
        assert queued == {keys["P"], keys["all"]}
    with bg.app_context():
        assert jobs.run_due(now=_later()) == 2
    with bg.test_request_context("/"):
        assert _n(figures.index_result(period, p_ids), "P-A") == n_a - 1
        assert _n(figures.index_result(period, None), "P-A") == n_a - 1
        assert _entry(keys["Q"]).computed_at == at["Q"]  # never recomputed
        assert _entry(keys["P"]).computed_at > at["P"] and _entry(keys["all"]).computed_at > at["all"]
        assert not db.session.scalars(sa.select(Job).where(Job.status == "pending")).all()


def test_pages_serve_stale_figures_with_their_time_until_the_job_ran(bg, world, as_role):
    from survey_app.services.periods import local_zone
    from tests.factories import make_response

    c = as_role("analyst")
    year = str(world["year"])

    def page():
        html = c.get(f"/staff/units/P-A?period={year}").get_data(as_text=True)
        index = float(re.search(r'id="unit-index" data-index="([0-9.]+)"', html).group(1))
        stamp = re.search(r'id="figures-as-of">([^<]+)<', html)
        return index, stamp.group(1) if stamp else None

    first, stamp = page()
    with bg.app_context():
        entry = db.session.scalars(sa.select(FigureEntry).where(FigureEntry.name == "index")).first()
        hhmm = entry.computed_at.astimezone(local_zone()).strftime("%H:%M")
    assert stamp == f"số liệu đến {hhmm}"
    with bg.app_context():
        a = db.session.scalar(sa.select(Unit).where(Unit.code == "P-A"))
        make_response(a, {"overall": 5, "access": 5, "procedure": 5, "staff": 5, "result": 5, "feedback": 5},
                      submitted_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))
        db.session.commit()
    stale, stale_stamp = page()
    assert stale == first and stale_stamp == stamp  # served as it was, while the job is queued
    with bg.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.status == "pending")) > 0
        assert jobs.run_due(now=_later()) > 0
    fresh, _ = page()
    assert fresh > first  # the new response (all answers 5) counts
    en = c.get(f"/staff/units/P-A?period={year}&lang=en").get_data(as_text=True)
    assert re.search(r'id="figures-as-of">figures as of \d\d:\d\d<', en)
    for path in ("/staff/", f"/staff/report/{year}"):
        assert 'id="figures-as-of">số liệu đến ' in as_role("admin").get(path).get_data(as_text=True), path


def test_a_restarted_server_answers_from_the_database_copy(sapp, world, make_loaded_app):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    with sapp.test_request_context("/"):
        assert figures.cached("probe", compute, "x", deps=_ids("P"), recipe=("probe", ())) == {"value": 1}
    other = make_loaded_app(WTF_CSRF_ENABLED=False)  # a new process: its own empty in-process cache
    with other.test_request_context("/"):
        assert cache.get(figures.cache_key("probe", "x")) is None
        assert figures.cached("probe", compute, "x", deps=_ids("P")) == {"value": 1}
        assert calls == [1]
        assert cache.get(figures.cache_key("probe", "x"))["v"] == {"value": 1}  # back in the shared cache


def test_integrity_counts_are_stored_and_follow_the_requests(sapp, world):
    """The exclusion counts of a unit page come from the store, and a new
    pending request (no response changes) makes them stale all the same."""
    from survey_app.models import User
    from survey_app.services import exclusions
    from tests.factories import make_exclusion_request

    with sapp.test_request_context("/"):
        period = resolve_period(str(world["year"]))
        ids = _ids("P-A")
        before = figures.integrity_total(ids, period.start, period.end)
        assert before == exclusions.integrity_total(ids, period.start, period.end)
        assert db.session.scalars(sa.select(FigureEntry).where(FigureEntry.name == "integrity_total")).all()
        a = db.session.scalar(sa.select(Unit.id).where(Unit.code == "P-A"))
        r = db.session.scalars(sa.select(Response).where(Response.unit_id == a,
                                                         Response.submitted_at >= period.start)).first()
        leader = db.session.scalar(sa.select(User).where(User.username == world["users"]["unit_leader"]))
        make_exclusion_request(r, leader)
        db.session.commit()
    with sapp.test_request_context("/"):
        after = figures.integrity_total(ids, period.start, period.end)
        assert after.pending == before.pending + 1 and after.total == before.total
