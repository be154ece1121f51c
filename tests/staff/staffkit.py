"""Helpers of the staff-page tests: a small province with two communes in
scope, one province outside it, users of every role."""
from __future__ import annotations

import datetime as dt
import random

PASSWORD = "correct horse 42"
ROLES = ("counter_staff", "unit_leader", "analyst", "admin")


def _ts(days_ago: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)


def seed_world(app) -> dict:
    """P(province) > A, B (communes); Q(province) > Y (commune, outside every
    scoped user).  A has 130 responses (one flagged duplicate, one comment that
    looks like a spreadsheet formula), B 40, Y 30 with a secret comment."""
    import uuid

    from factories import make_counter, make_unit, make_user, make_volume
    from survey_app.extensions import db
    from survey_app.instruments import latest
    from survey_app.models import Target, answer_pattern
    from survey_app.periods import current_report_year, resolve_period

    rng = random.Random(7)
    with app.app_context():
        year = current_report_year()
        per = resolve_period(str(year))
        prev = resolve_period(str(year - 1))
        P = make_unit("P", kind="province", name_vi="Tỉnh Phú Thịnh")
        A = make_unit("P-A", kind="commune", parent=P, name_vi="Xã An Phú")
        B = make_unit("P-B", kind="commune", parent=P, name_vi="Xã Bình Minh")
        Q = make_unit("Q", kind="province", name_vi="Tỉnh Khác")
        Y = make_unit("Q-Y", kind="commune", parent=Q, name_vi="Xã Ngoài Phạm Vi")
        ca1, ca2 = make_counter(A, code="P-A-Q1"), make_counter(A, code="P-A-Q2")
        cb = make_counter(B, code="P-B-Q1")
        cy = make_counter(Y, code="Q-Y-Q1")
        for u, n in ((A, 1000), (B, 500), (Y, 300)):
            make_volume(u, n, start=per.first, end=per.last)
            make_volume(u, n, start=prev.first, end=prev.last)
        db.session.add(Target(year=year, unit_kind="commune", target=0.8))
        days = max(2, (dt.datetime.now(dt.timezone.utc) - per.start).days - 1)

        inst_id = latest(db.session, "counter-quick").id
        resp_rows, ans_rows = [], []

        def make_response(unit, ans, counter=None, submitted_at=None, comment=None):
            rid = uuid.uuid4()
            resp_rows.append(dict(id=rid, unit_id=unit.id, counter_id=counter.id if counter else None,
                                  instrument_id=inst_id, channel="qr", submitted_at=submitted_at,
                                  received_at=submitted_at, stratum="_all", comment=comment, flags="",
                                  excluded=False, pattern=answer_pattern(ans)))
            ans_rows.extend({"response_id": rid, "item_key": k, "value": v} for k, v in ans.items())
            return resp_rows[-1]

        def answers(p):
            return {k: (rng.choice([4, 5]) if rng.random() < p else rng.choice([1, 2, 3]))
                    for k in ("overall", "access", "procedure", "staff", "result", "feedback")}

        flagged = None
        for i in range(130):
            r = make_response(A, answers(0.85), counter=ca1 if i % 2 else ca2,
                              submitted_at=_ts(rng.uniform(0.5, days)),
                              comment="=HYPERLINK(\"http://evil\")" if i == 3 else (
                                  "Cán bộ nhiệt tình" if i % 10 == 0 else None))
            if i == 5:
                r["flags"] = "duplicate"
                r["flag_reason"] = "same answers 4 s apart"
                flagged = r
        for i in range(60):  # previous year, lower satisfaction: a significant rise
            make_response(A, answers(0.45), counter=ca1, submitted_at=per.start - dt.timedelta(days=rng.uniform(2, 300)))
        for i in range(40):
            make_response(B, answers(0.7), counter=cb, submitted_at=_ts(rng.uniform(0.5, days)))
        for i in range(30):
            make_response(Y, answers(0.6), counter=cy, submitted_at=_ts(rng.uniform(0.5, days)),
                          comment="SECRET-Y comment" if i == 0 else None)
        from survey_app.dbutil import insert_responses

        insert_responses(resp_rows, ans_rows)
        users = {}
        for role in ROLES:
            scope = {"counter_staff": A, "unit_leader": A, "analyst": P, "admin": None}[role]
            users[role] = make_user(role, role=role, unit=scope, password=PASSWORD).username
        db.session.commit()
        return dict(year=year, flagged=str(flagged["id"]), users=users, inside="P-A", outside="Q-Y",
                    counter_in="P-A-Q1", counter_out="Q-Y-Q1")


def login(client, username, password=PASSWORD):
    return client.post("/staff/login", data={"username": username, "password": password})


