"""A merge of units is ONE admin action (issue 14.4): the page under
/staff/admin/merge and `flask units merge` set the predecessors' end date and
successor, create or rename the successor, move the counters on request (their
QR codes keep working and record the successor), in one transaction with one
audit entry; bad input is refused clearly with nothing written."""
from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
import sqlalchemy as sa

from tests.factories import UTC, make_counter, make_snapshot, make_unit, make_user, make_volume
from tests.helpers import login, submit

N_A, N_B = 40, 25


@pytest.fixture
def tree(sapp, frozen_clock):
    """P > A (counter A-Q1), B (counters B-Q1, B-Q2), K (keeps going); Q > Z.
    A and B have responses in the last weeks of the current report year."""
    from analysis.schema import ALL_STRATUM, ITEM_KEYS
    from survey_app.extensions import db
    from survey_app.services.instruments import latest
    from survey_app.services.periods import current_report_year, local_today, resolve_period
    from survey_app.services.responses import insert_responses

    rng = random.Random(3)
    with sapp.app_context():
        per = resolve_period(str(current_report_year()))
        p = make_unit("P", kind="province", name_vi="Tỉnh P")
        a = make_unit("P-A", parent=p, name_vi="Xã A", valid_from=dt.date(2020, 1, 1))
        b = make_unit("P-B", parent=p, name_vi="Xã B")
        k = make_unit("P-K", parent=p, name_vi="Xã K")
        q = make_unit("Q", kind="province", name_vi="Tỉnh Q")
        make_unit("Q-Z", parent=q, name_vi="Xã Z")
        counters = {"A-Q1": make_counter(a, code="A-Q1"), "B-Q1": make_counter(b, code="B-Q1"),
                    "B-Q2": make_counter(b, code="B-Q2"), "K-Q1": make_counter(k, code="K-Q1")}
        inst = latest(db.session, "counter-quick").id
        now = dt.datetime.now(UTC)
        rows, answers = [], []
        for unit, n, ctr in ((a, N_A, "A-Q1"), (b, N_B, "B-Q1"), (k, 10, "K-Q1")):
            make_volume(unit, 500, start=per.first, end=per.last)
            for _ in range(n):
                rid, at = uuid.uuid4(), max(per.start, now - dt.timedelta(days=20)) + dt.timedelta(hours=rng.random())
                rows.append(dict(id=rid, unit_id=unit.id, counter_id=counters[ctr].id, instrument_id=inst,
                                 channel="qr", submitted_at=at, received_at=at, stratum=ALL_STRATUM, flags="",
                                 excluded=False))
                answers.extend({"response_id": rid, "item_key": key, "value": rng.choice([2, 4, 5])}
                               for key in ITEM_KEYS)
        insert_responses(rows, answers)
        make_user("boss", role="admin")
        make_user("lead-a", role="unit_leader", unit=a)
        db.session.commit()
        tokens = {}
        from survey_app.services.tokens import counter_token

        for code, c in counters.items():
            tokens[code] = counter_token(c.id, c.token_version)
        return dict(today=local_today(), period=per.label, tokens=tokens)


def _state(sapp):
    """Units (code -> valid_to, successor, name) and counters (code -> unit) as they are stored."""
    from survey_app.extensions import db
    from survey_app.models import AuditLog, Counter, Unit

    with sapp.app_context():
        units = {u.code: (u.valid_to, u.successor.code if u.successor else None, u.name_vi, u.valid_from,
                          u.parent.code if u.parent else None) for u in db.session.scalars(sa.select(Unit))}
        counters = {c.code: c.unit.code for c in db.session.scalars(sa.select(Counter))}
        merges = sa.select(AuditLog).where(AuditLog.action == "unit_merge")
        audits = [(a.action, a.target_id, a.details) for a in db.session.scalars(merges)]
    return units, counters, audits


def _figures(sapp, period, unit_code, **kw):
    from survey_app.services import stats
    from survey_app.services.periods import local_today

    with sapp.app_context():
        t = stats.compute(period, map_successors=True, as_of=local_today(), **kw).table
        row = t[(t["unit_code"] == unit_code) & (t["level"] == "unit")]
        return None if row.empty else row.iloc[0].to_dict()


def _admin(sapp):
    c = sapp.test_client()
    assert login(c, "boss").status_code == 302
    return c


def _check_merged(sapp, tree, moved: bool):
    units, counters, audits = _state(sapp)
    today = tree["today"]
    assert units["P-A"][:2] == (today, "P-N") and units["P-B"][:2] == (today, "P-N")
    assert units["P-N"] == (None, None, "Xã Nhất Hợp", today, "P")
    assert units["P-K"][0] is None
    want = "P-N" if moved else None
    assert [counters[c] == want for c in ("A-Q1", "B-Q1", "B-Q2")] == [moved] * 3
    assert counters["K-Q1"] == "P-K"
    (action, target, details), = audits  # ONE audit entry, readable
    assert target == "P-N" and details["predecessors"] == ["P-A", "P-B"] and details["date"] == today.isoformat()
    assert details["successor_created"] is True and details["successor_name"] == "Xã Nhất Hợp"
    assert details["counters_moved"] == (["A-Q1", "B-Q1", "B-Q2"] if moved else [])
    day = today.strftime("%d/%m/%Y")
    assert details["summary"] == (f"Sáp nhập P-A, P-B vào P-N (Xã Nhất Hợp, đơn vị mới) từ ngày {day}. "
                                  + ("Đã chuyển quầy: A-Q1, B-Q1, B-Q2." if moved else "Không chuyển quầy nào."))
    # The successor's figures mapped to today: both predecessors' responses.
    row = _figures(sapp, tree["period"], "P-N")
    assert int(row["n"]) == N_A + N_B
    lead = _figures(sapp, tree["period"], "P-K")
    assert int(lead["n"]) == 10


def test_the_merge_page_checks_first_then_merges_in_one_action(sapp, tree):
    c = _admin(sapp)
    page = c.get("/staff/admin/merge")
    assert page.status_code == 200 and 'name="units"' in page.get_data(as_text=True)
    assert "/staff/admin/merge" in c.get("/staff/admin/units").get_data(as_text=True)
    form = {"units": "P-A, P-B", "day": tree["today"].isoformat(), "into": "P-N", "name_vi": "Xã Nhất Hợp",
            "move_counters": "y"}
    before = _state(sapp)
    r = c.post("/staff/admin/merge", data=form)
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="merge-preview"' in body and "A-Q1, B-Q1, B-Q2" in body
    assert _state(sapp) == before  # the check writes nothing
    r = c.post("/staff/admin/merge", data=dict(form, confirm="yes"))
    assert r.status_code == 302 and r.headers["Location"].endswith("/staff/admin/units/P-N")
    _check_merged(sapp, tree, moved=True)
    # The moved counters' QR codes keep working and now record the successor.
    public = sapp.test_client()
    assert submit(public, f"/c/{tree['tokens']['A-Q1']}").status_code == 303
    from survey_app.extensions import db
    from survey_app.models import Response, Unit

    with sapp.app_context():
        newest = db.session.scalars(sa.select(Unit.code).join(Response, Response.unit_id == Unit.id)
                                    .order_by(Response.received_at.desc())).first()
    assert newest == "P-N"
    # The successor's admin page links the merge page and names what it was formed from.
    admin_page = c.get("/staff/admin/units/P-N").get_data(as_text=True)
    assert 'id="merge-link"' in admin_page and "Thành lập từ" in admin_page and "Xã A" in admin_page
    # The audit log shows the merge.
    assert "P-A" in c.get("/staff/admin/audit?action=unit_merge").get_data(as_text=True)


def test_the_merge_command(sapp, tree):
    r = sapp.test_cli_runner().invoke(args=["units", "merge", "--into", "P-N", "--name", "Xã Nhất Hợp",
                                            "--date", tree["today"].isoformat(), "P-A", "P-B"])
    assert r.exit_code == 0, r.output
    assert "P-A, P-B" in r.output and "P-N" in r.output and "không chuyển quầy" in r.output
    _check_merged(sapp, tree, moved=False)
    # Counters left behind: from the merge their QR codes answer 410 and name the successor.
    public = sapp.test_client()
    gone = public.get(f"/c/{tree['tokens']['A-Q1']}")
    assert gone.status_code == 410 and "Xã Nhất Hợp" in gone.get_data(as_text=True)


def test_the_merge_command_moves_counters(sapp, tree):
    r = sapp.test_cli_runner().invoke(args=["units", "merge", "--into", "P-N", "--name", "Xã Nhất Hợp",
                                            "--date", tree["today"].isoformat(), "--move-counters", "P-A", "P-B"])
    assert r.exit_code == 0, r.output
    assert "A-Q1, B-Q1, B-Q2" in r.output
    _check_merged(sapp, tree, moved=True)
    assert sapp.test_client().get(f"/c/{tree['tokens']['B-Q2']}").status_code == 200


def test_merging_into_an_existing_unit_renames_it_if_asked(sapp, tree):
    r = sapp.test_cli_runner().invoke(args=["units", "merge", "--into", "P-K", "--name", "Xã K Mới",
                                            "--date", tree["today"].isoformat(), "--move-counters", "P-A"])
    assert r.exit_code == 0, r.output
    units, counters, audits = _state(sapp)
    assert units["P-K"][2] == "Xã K Mới" and units["P-A"][1] == "P-K" and counters["A-Q1"] == "P-K"
    assert audits[0][2]["successor_created"] is False and audits[0][2]["renamed_from"] == "Xã K"
    assert int(_figures(sapp, tree["period"], "P-K")["n"]) == N_A + 10


def _refused(sapp, tree, args, why, code=1):
    before = _state(sapp)
    r = sapp.test_cli_runner().invoke(args=["units", "merge", *args])
    assert r.exit_code == code, r.output
    assert why in r.output, r.output
    assert _state(sapp) == before  # nothing written


def test_bad_merges_are_refused_with_nothing_written(sapp, tree):
    today = tree["today"].isoformat()
    new = ["--into", "P-N", "--name", "Xã N", "--date", today]
    _refused(sapp, tree, [*new, "P-A", "NOPE"], "NOPE")
    _refused(sapp, tree, ["--into", "P-A", "--date", today, "P-A", "P-B"], "chính nó")
    _refused(sapp, tree, ["--into", "P-N", "--date", today, "P-A"], "tên tiếng Việt")  # a new unit needs its name
    _refused(sapp, tree, ["--into", "P-A", "--date", today, "P"], "không thể nằm trong cây")  # inside its tree
    _refused(sapp, tree, [*new, "--parent", "P-A", "P-A"], "không thể đặt dưới")  # under a unit being merged
    _refused(sapp, tree, [*new[:-1], "2019-06-01", "P-A"], "2020")  # before A existed
    later = (tree["today"] + dt.timedelta(days=30)).isoformat()
    _refused(sapp, tree, [*new[:-1], later, "--move-counters", "P-A"], "quầy")  # moving counters too early
    _refused(sapp, tree, [*new[:-1], "01/07/2025", "P-A"], "YYYY-MM-DD", code=2)
    # A unit already merged; a cycle through the successor's own successor.
    assert sapp.test_cli_runner().invoke(args=["units", "merge", *new, "P-A"]).exit_code == 0
    _refused(sapp, tree, ["--into", "P-K", "--date", today, "P-A"], "không thể sáp nhập lần nữa")
    from survey_app.extensions import db
    from survey_app.models import Unit

    with sapp.app_context():
        k = db.session.scalar(sa.select(Unit).where(Unit.code == "P-K"))
        b = db.session.scalar(sa.select(Unit).where(Unit.code == "P-B"))
        k.valid_to, k.successor = tree["today"] + dt.timedelta(days=60), b  # K is to be merged into B later
        db.session.commit()
    _refused(sapp, tree, ["--into", "P-K", "--date", today, "P-B"], "vòng lặp")


def test_a_merge_that_would_change_a_closed_period_is_refused(sapp, tree):
    from survey_app.extensions import db
    from survey_app.models import Unit

    with sapp.app_context():
        p = db.session.scalar(sa.select(Unit).where(Unit.code == "P"))
        make_snapshot(p, period=tree["period"])
        db.session.commit()
    _refused(sapp, tree, ["--into", "P-N", "--name", "Xã N", "--date", tree["today"].isoformat(), "P-A"],
             tree["period"])
    c = _admin(sapp)
    r = c.post("/staff/admin/merge", data={"units": "P-A", "day": tree["today"].isoformat(), "into": "P-N",
                                           "name_vi": "Xã N", "confirm": "yes"})
    assert r.status_code == 409 and tree["period"] in r.get_data(as_text=True)


def test_the_merge_page_refuses_clearly(sapp, tree):
    c = _admin(sapp)
    r = c.post("/staff/admin/merge", data={"units": "P-A", "day": "hôm qua", "into": "P-N"})
    assert r.status_code == 400 and "YYYY-MM-DD" in r.get_data(as_text=True)
    r = c.post("/staff/admin/merge", data={"units": "P-A P-ZZ", "day": tree["today"].isoformat(), "into": "P-N",
                                           "name_vi": "Xã N", "confirm": "yes"})
    assert r.status_code == 404 and "P-ZZ" in r.get_data(as_text=True)
    leader = sapp.test_client()
    assert login(leader, "lead-a").status_code == 302
    assert leader.get("/staff/admin/merge").status_code == 403
    assert leader.post("/staff/admin/merge", data={"units": "P-A", "day": tree["today"].isoformat(),
                                                   "into": "P-N", "name_vi": "X", "confirm": "yes"}).status_code == 403
    assert _state(sapp)[2] == []


def test_a_merge_recorded_ahead_moves_its_counters_when_run_again_on_the_day(sapp, tree, frozen_clock):
    day = tree["today"] + dt.timedelta(days=10)
    args = ["units", "merge", "--into", "P-N", "--name", "Xã Nhất Hợp", "--date", day.isoformat(), "P-A"]
    cli = sapp.test_cli_runner()
    assert cli.invoke(args=args).exit_code == 0
    assert sapp.test_client().get(f"/c/{tree['tokens']['A-Q1']}").status_code == 200  # still collecting
    r = cli.invoke(args=args)
    assert r.exit_code == 1 and "không có gì thay đổi" in r.output
    r = cli.invoke(args=[*args, "--move-counters"])
    assert r.exit_code == 1 and "từ ngày" in r.output  # too early
    frozen_clock.shift(dt.timedelta(days=10))
    r = cli.invoke(args=[*args, "--move-counters"])
    assert r.exit_code == 0, r.output
    units, counters, audits = _state(sapp)
    assert counters["A-Q1"] == "P-N" and units["P-A"][:2] == (day, "P-N")
    assert len(audits) == 2 and audits[1][2]["already_merged"] == ["P-A"]
    assert audits[1][2]["counters_moved"] == ["A-Q1"]
    assert sapp.test_client().get(f"/c/{tree['tokens']['A-Q1']}").status_code == 200  # now recording P-N
