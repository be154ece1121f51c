"""THE test data builders (one module): database rows (call inside an app
context), the staff tests' small province, the collection tests' counter
("place"), and the pure-pandas frames of the analysis tests.

Non-factory helpers (form scraping, logins, fingerprints) live in
tests/helpers.py.
"""
from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from dataclasses import dataclass

from analysis.schema import ALL_STRATUM, ITEM_KEYS

_seq = itertools.count(1)
UTC = dt.timezone.utc
#: The password of every user the factories make.
PASSWORD = "correct horse 42"
#: The staff roles, least privileged first.
ROLES = ("counter_staff", "unit_leader", "analyst", "admin")


# ------------------------------------------------------------------ database rows

def make_unit(code=None, kind="commune", parent=None, name_vi=None, **kw):
    from survey_app.extensions import db
    from survey_app.models import Unit

    code = code or f"U{next(_seq):04d}"
    u = Unit(code=code, name_vi=name_vi or f"Đơn vị {code}", name_en=f"Unit {code}", kind=kind,
             parent=parent, **kw)
    db.session.add(u)
    db.session.flush()
    return u


def make_counter(unit, code=None, **kw):
    from survey_app.extensions import db
    from survey_app.models import Counter

    c = Counter(code=code or f"{unit.code}-Q{next(_seq)}", unit=unit, name_vi=kw.pop("name_vi", "Quầy 1"),
                name_en="Desk 1", token_version=kw.pop("token_version", 1), active=kw.pop("active", True), **kw)
    db.session.add(c)
    db.session.flush()
    return c


def make_response(unit, answers: dict[str, int] | None = None, *, counter=None,
                  submitted_at: dt.datetime | None = None, channel="qr", instrument="counter-quick",
                  stratum=ALL_STRATUM, **kw):
    from survey_app.extensions import db
    from survey_app.models import Answer, Response
    from survey_app.services.instruments import latest

    inst = latest(db.session, instrument)
    r = Response(id=uuid.uuid4(), unit=unit, counter=counter, instrument_id=inst.id, channel=channel,
                 submitted_at=submitted_at or dt.datetime(2025, 6, 1, 3, 0, tzinfo=UTC), stratum=stratum, **kw)
    db.session.add(r)
    for key, value in (answers if answers is not None else {"overall": 4, "staff": 5}).items():
        db.session.add(Answer(response=r, item_key=key, value=value))
    db.session.flush()
    return r


def make_exclusion_request(response, requested_by, action="exclude", reason="phiếu trùng lặp", status="pending"):
    """An exclusion request (services.exclusions makes them in the app; this writes the row as is)."""
    from survey_app.extensions import db
    from survey_app.models import ExclusionRequest

    req = ExclusionRequest(response_id=response.id, action=action, reason=reason, status=status,
                           requested_by_id=requested_by.id)
    db.session.add(req)
    db.session.flush()
    return req


def make_volume(unit, transactions: int, start=dt.date(2024, 12, 15), end=dt.date(2025, 12, 14),
                stratum=ALL_STRATUM):
    from survey_app.extensions import db
    from survey_app.models import Volume

    v = Volume(unit=unit, period_start=start, period_end=end, stratum=stratum, transactions=transactions)
    db.session.add(v)
    db.session.flush()
    return v


def make_user(username=None, role="analyst", unit=None, password=PASSWORD):
    from survey_app.extensions import db
    from survey_app.models import User
    from survey_app.services.accounts import hash_password

    u = User(username=username or f"user{next(_seq)}", password_hash=hash_password(password), role=role,
             unit_id=unit.id if unit else None)
    db.session.add(u)
    db.session.flush()
    return u


# ------------------------------------------------------------------ a counter with its link (collection tests)

@dataclass
class Place:
    unit_id: int
    counter_id: int
    counter_code: str
    token: str

    @property
    def url(self) -> str:
        return f"/c/{self.token}"

    @property
    def kiosk_url(self) -> str:
        return f"/k/{self.token}"


def make_place(code: str = "XA-TP", name_vi: str = "UBND xã Tân Phú") -> Place:
    """A commune with one counter, committed; its citizen link."""
    from survey_app.extensions import db
    from survey_app.services.tokens import counter_token

    unit = make_unit(code=code, name_vi=name_vi)
    counter = make_counter(unit, code=f"{code}-Q1", name_vi="Quầy 1 — Hộ tịch")
    db.session.commit()
    return Place(unit.id, counter.id, counter.code, counter_token(counter.id, counter.token_version))


# ------------------------------------------------------------------ a small province (staff tests)

def _ts(days_ago: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)


def seed_world(app) -> dict:
    """P(province) > A, B (communes); Q(province) > Y (commune, outside every
    scoped user).  A has 130 responses (one flagged duplicate, one comment that
    looks like a spreadsheet formula), B 40, Y 30 with a secret comment.

    The responses lie between the start of the current report year and now:
    call it under the `frozen_clock` fixture (the `world` fixture does), or in
    the first days after the 15/12 cut-off some fall into the previous year."""
    from survey_app.extensions import db
    from survey_app.models import Target, answer_pattern
    from survey_app.services.instruments import latest
    from survey_app.services.periods import current_report_year, resolve_period
    from survey_app.services.responses import insert_responses

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

        def add_response(unit, ans, counter=None, submitted_at=None, comment=None):
            rid = uuid.uuid4()
            resp_rows.append(dict(id=rid, unit_id=unit.id, counter_id=counter.id if counter else None,
                                  instrument_id=inst_id, channel="qr", submitted_at=submitted_at,
                                  received_at=submitted_at, stratum=ALL_STRATUM, comment=comment, flags="",
                                  excluded=False, pattern=answer_pattern(ans)))
            ans_rows.extend({"response_id": rid, "item_key": k, "value": v} for k, v in ans.items())
            return resp_rows[-1]

        def answers(p):
            return {k: (rng.choice([4, 5]) if rng.random() < p else rng.choice([1, 2, 3])) for k in ITEM_KEYS}

        flagged = None
        for i in range(130):
            r = add_response(A, answers(0.85), counter=ca1 if i % 2 else ca2,
                             submitted_at=_ts(rng.uniform(0.5, days)),
                             comment="=HYPERLINK(\"http://evil\")" if i == 3 else (
                                 "Cán bộ nhiệt tình" if i % 10 == 0 else None))
            if i == 5:
                r["flags"] = "duplicate"
                r["flag_reason"] = "same answers 4 s apart"
                flagged = r
        for _ in range(60):  # previous year, lower satisfaction: a significant rise
            add_response(A, answers(0.45), counter=ca1, submitted_at=per.start - dt.timedelta(days=rng.uniform(2, 300)))
        for _ in range(40):
            add_response(B, answers(0.7), counter=cb, submitted_at=_ts(rng.uniform(0.5, days)))
        for i in range(30):
            add_response(Y, answers(0.6), counter=cy, submitted_at=_ts(rng.uniform(0.5, days)),
                         comment="SECRET-Y comment" if i == 0 else None)
        insert_responses(resp_rows, ans_rows)
        users = {}
        for role in ROLES:
            scope = {"counter_staff": A, "unit_leader": A, "analyst": P, "admin": None}[role]
            users[role] = make_user(role, role=role, unit=scope, password=PASSWORD).username
        db.session.commit()
        return dict(year=year, flagged=str(flagged["id"]), users=users, inside="P-A", outside="Q-Y",
                    counter_in="P-A-Q1", counter_out="Q-Y-Q1")


#: The units of `seed_ranking_province`: code -> (kind, transactions N, responses n, share satisfied).
#: Adequate samples (Yamane, e = 0.05): R-A1..R-A3 (N 100, n 90 >= 80) and R-D1 (N 50, n 48 >= 45);
#: not adequate: R-ONE (one response, 100% satisfied: SE reported 0) and R-S (20 of 400).
RANKING_UNITS = {
    "R-A1": ("commune", 100, 90, 0.95), "R-A2": ("commune", 100, 90, 0.8), "R-A3": ("commune", 100, 90, 0.6),
    "R-ONE": ("commune", 500, 1, 1.0), "R-S": ("commune", 400, 20, 0.9), "R-D1": ("department", 50, 48, 0.85),
}


def seed_ranking_province(app, username: str = "boss") -> dict:
    """Province R with the units of RANKING_UNITS, report year 2025, and an
    admin `username`: the demo's ranking problem in small (a one-response
    commune at 100% beside adequate ones).  Returns {"adequate": codes,
    "inadequate": codes, "year": 2025, "user": username}."""
    from survey_app.extensions import db

    with app.app_context():
        prov = make_unit("R", kind="province", name_vi="Tỉnh Xếp Hạng")
        for code, (kind, N, n, share) in RANKING_UNITS.items():
            unit = make_unit(code, kind=kind, parent=prov)
            counter = make_counter(unit)
            make_volume(unit, N)
            happy = round(share * n)
            for i in range(n):
                value = 5 if i < happy else 2
                make_response(unit, {k: value for k in ITEM_KEYS}, counter=counter,
                              submitted_at=dt.datetime(2025, 3, 1, 3, tzinfo=UTC) + dt.timedelta(minutes=7 * i))
        make_user(username, role="admin", password=PASSWORD)
        db.session.commit()
    return {"adequate": ["R-A1", "R-A2", "R-A3", "R-D1"], "inadequate": ["R-ONE", "R-S"], "year": 2025,
            "user": username}


def seed_report_province(app, communes: int = 40, per_unit: int = 12, username: str = "printer") -> dict:
    """Province M ("Tỉnh Mẫu In") with `communes` communes M-X01… of
    `per_unit` responses each in report year 2025 (satisfaction varying by
    unit), volumes, and an admin `username`: enough rows for the printed
    report's pages (issue 14.3).  Returns {"codes", "year", "user"}."""
    from survey_app.extensions import db

    rng = random.Random(14)
    codes = []
    with app.app_context():
        prov = make_unit("M", kind="province", name_vi="Tỉnh Mẫu In")
        for i in range(1, communes + 1):
            unit = make_unit(f"M-X{i:02d}", kind="commune", parent=prov, name_vi=f"Xã Số {i}")
            codes.append(unit.code)
            counter = make_counter(unit)
            make_volume(unit, 200 + 10 * i)
            share = 0.5 + 0.45 * i / communes
            for j in range(per_unit):
                make_response(unit, {k: (rng.choice([4, 5]) if rng.random() < share else rng.choice([1, 2, 3]))
                                     for k in ITEM_KEYS}, counter=counter,
                              submitted_at=dt.datetime(2025, 3, 1, 3, tzinfo=UTC) + dt.timedelta(hours=5 * j + i))
        make_user(username, role="admin", password=PASSWORD)
        db.session.commit()
    return {"codes": codes, "year": 2025, "user": username}


# ------------------------------------------------------------------ analysis frames (pure pandas, no app)

ITEMS = list(ITEM_KEYS)


def make_responses(rows, ts="2025-03-01T10:00:00+07:00"):
    """A responses frame.  rows: list of dicts with unit_code and optional
    stratum, items, excluded, age_group, submitted_at."""
    import pandas as pd

    out = []
    for i, r in enumerate(rows):
        rec = {"response_id": f"r{i}", "unit_code": r.get("unit_code", "U"), "submitted_at": r.get("submitted_at", ts),
               "channel": "qr", "instrument": "counter-quick/1", "stratum": r.get("stratum", ""),
               "excluded": r.get("excluded", ""), "age_group": r.get("age_group", "")}
        for k in ITEMS:
            rec[k] = r.get(k, "")
        for k, v in r.items():
            if k not in rec:
                rec[k] = v
        out.append(rec)
    return pd.DataFrame(out).astype(str).replace({"nan": ""})


def make_volumes(rows):
    """A volumes frame.  rows: (unit, stratum, transactions[, start, end])."""
    import pandas as pd

    recs = []
    for r in rows:
        u, s, t = r[:3]
        start, end = (r[3], r[4]) if len(r) > 3 else ("2024-12-15", "2025-12-14")
        recs.append({"unit_code": u, "period_start": start, "period_end": end, "stratum": s, "transactions": t})
    return pd.DataFrame(recs)


def make_units(rows):
    """A units frame.  rows: (code, kind, parent[, valid_from, valid_to, successor])."""
    import pandas as pd

    recs = []
    for r in rows:
        code, kind, parent = r[:3]
        vf, vt, succ = (list(r[3:]) + ["", "", ""])[:3]
        recs.append({"code": code, "name_vi": code, "name_en": code, "kind": kind, "parent_code": parent,
                     "valid_from": vf, "valid_to": vt, "successor_code": succ})
    return pd.DataFrame(recs)


def uniform_rows(unit, n, value=5, stratum="", **extra):
    """n response rows of `unit` answering `value` to every item."""
    return [dict(unit_code=unit, stratum=stratum, **{k: value for k in ITEMS}, **extra) for _ in range(n)]


def unit_estimates(m=40, seed=1, **extra):
    """A table of `m` unit rows as compute_index gives them (index, index_se, n),
    random but seeded; `extra` adds constant columns (e.g. adequacy="adequate")."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    p = rng.uniform(0.70, 0.95, m)
    n = rng.integers(20, 300, m)
    return pd.DataFrame({"unit_code": [f"U{i:03d}" for i in range(m)], "level": "unit", "index": p,
                         "index_se": np.sqrt(p * (1 - p) / n), "n": n, **extra})


# ------------------------------------------------------------------ API v1 (issue 12)

def make_api_client(unit, name=None, rights=("events", "volumes", "links", "results")):
    """An API client of `unit` (committed) and its key."""
    from survey_app.services.integration import create_client

    client, key = create_client(name or f"client{next(_seq)}", unit, list(rights), actor="test")
    return client, key


def dossier_event(code="HS-0001", event="tiep_nhan", unit="XA-TP", **fields):
    """One event in the portal's field names; the times default by event
    (received 01/03/2025 08:30, due 10/03, returned 05/03/2025 16:00 local)."""
    ev = {"MaHoSo": code, "SuKien": event, "MaDonVi": unit, "MaTTHC": "1.001234", "MaLinhVuc": "ho_tich",
          "HinhThuc": "1", "TrangThaiHoSo": "2", "NgayTiepNhan": "20250301083000", "NgayHenTra": "20250310170000"}
    if event == "tra_ket_qua":
        ev.update(NgayTra="20250305160000", TrangThaiHoSo="10")
    if event in ("cap_nhat", "phan_anh"):
        ev["ThoiDiemXuLy"] = "20250304090000"
    ev.update(fields)
    return {k: v for k, v in ev.items() if v is not None}


# ------------------------------------------------------------------ a closed report year (publishing tests)

#: The units of `seed_publishing`: code -> (parent, transactions N, responses n, share satisfied).
#: P-C has fewer responses than PUBLIC_MIN_N (30): the public pages show it without a figure.
PUBLISHING_UNITS = {"P-A": ("P", 1000, 120, 0.85), "P-B": ("P", 400, 80, 0.7), "P-C": ("P", 300, 10, 0.9),
                    "Q-Y": ("Q", 300, 40, 0.6)}


def seed_publishing(app) -> dict:
    """Provinces P (communes P-A, P-B, P-C) and Q (Q-Y) with responses and
    volumes in report year 2025 (over, so it can be closed), a 2025 target of
    0.8 for communes, and users: leader_a (unit leader of P-A), analyst_p
    (analyst of P), analyst_a (analyst scoped to P-A itself), analyst_q
    (analyst of Q), admin.  Returns {"year", "period", "users", "response"
    (the id of one response of P-A)}."""
    from survey_app.extensions import db
    from survey_app.models import Target, answer_pattern
    from survey_app.services.instruments import latest
    from survey_app.services.responses import insert_responses

    rng = random.Random(15)
    with app.app_context():
        units = {"P": make_unit("P", kind="province", name_vi="Tỉnh Phú Thịnh"),
                 "Q": make_unit("Q", kind="province", name_vi="Tỉnh Khác")}
        inst = latest(db.session, "counter-quick").id
        resp_rows, ans_rows = [], []
        start = dt.datetime(2025, 1, 5, 2, tzinfo=UTC)
        for code, (parent, N, n, share) in PUBLISHING_UNITS.items():
            unit = units[code] = make_unit(code, kind="commune", parent=units[parent],
                                           name_vi=f"Xã {code[-1]}")
            make_volume(unit, N, start=dt.date(2024, 12, 15), end=dt.date(2025, 12, 14))
            for i in range(n):
                ans = {k: (rng.choice([4, 5]) if rng.random() < share else rng.choice([1, 2, 3])) for k in ITEM_KEYS}
                rid = uuid.uuid4()
                at = start + dt.timedelta(hours=rng.uniform(0, 24 * 320))
                resp_rows.append(dict(id=rid, unit_id=unit.id, counter_id=None, instrument_id=inst, channel="qr",
                                      submitted_at=at, received_at=at, stratum=ALL_STRATUM, comment=None, flags="",
                                      excluded=False, pattern=answer_pattern(ans)))
                ans_rows.extend({"response_id": rid, "item_key": k, "value": v} for k, v in ans.items())
        insert_responses(resp_rows, ans_rows)
        db.session.add(Target(year=2025, unit_kind="commune", target=0.8))
        users = {"leader_a": ("unit_leader", "P-A"), "analyst_p": ("analyst", "P"), "analyst_a": ("analyst", "P-A"),
                 "analyst_q": ("analyst", "Q"), "admin": ("admin", None)}
        for name, (role, code) in users.items():
            make_user(name, role=role, unit=units[code] if code else None)
        db.session.commit()
        return {"year": 2025, "period": "2025", "users": list(users), "response": str(resp_rows[0]["id"])}


def make_snapshot(unit, period="2025", version=1, status="draft", **kw):
    """A closed version of `period` for `unit`'s subtree with one row and its approval (no computation)."""
    from survey_app.extensions import db
    from survey_app.models import PeriodSnapshot, UnitApproval

    fields = dict(period=period, scope=unit.code, unit_id=unit.id, version=version, state="closed",
                  closed_by="test", closed_at=dt.datetime(2025, 12, 16, 2, tzinfo=UTC), input_hash="f" * 64,
                  method_version="sipas-index/2.0", meta={"n_used": 1, "n_left_out": {"excluded": 0}},
                  table=[{"unit_code": unit.code, "level": "unit", "kind": unit.kind, "index": 0.8125,
                          "index_ci_low": 0.7, "index_ci_high": 0.9, "n": 40, "trend_change": None}])
    snap = PeriodSnapshot(**dict(fields, **kw))
    db.session.add(snap)
    db.session.add(UnitApproval(snapshot=snap, unit_id=unit.id, status=status, acceptances=[]))
    db.session.flush()
    return snap


def make_webhook_delivery(client, unit, status="dead"):
    """A delivery of `client`'s webhook (committed by the caller), e.g. a dead letter to re-send."""
    from survey_app.extensions import db
    from survey_app.models import WebhookDelivery

    d = WebhookDelivery(client_id=client.id, unit_id=unit.id, event_type="rating.dissatisfied", body="{}",
                        status=status, attempts=6 if status == "dead" else 0)
    db.session.add(d)
    db.session.flush()
    return d


def make_case(unit, response=None, kind="dissatisfied", status="new", due_on=dt.date(2026, 6, 24), **kw):
    """A case (services.cases opens them in the app; this writes the row as is)."""
    from survey_app.extensions import db
    from survey_app.models import Case

    case = Case(unit_id=unit.id, kind=kind, response_id=response.id if response is not None else None,
                status=status, due_on=due_on, **kw)
    db.session.add(case)
    db.session.flush()
    return case


# ------------------------------------------------------------------ the 2025 restructuring (issue 14.4)

#: `seed_merged_province`'s responses per unit: code -> (responses in report year 2025, in 2024, share satisfied).
MERGED_UNITS = {"M-D": (20, 10, 0.7), "M-D-1": (60, 40, 0.6), "M-D-2": (50, 30, 0.8), "M-D-3": (40, 30, 0.75),
                "M-S": (70, 0, 0.9), "M-T": (30, 0, 0.85)}
#: The day of the merge in `seed_merged_province`.
MERGE_DAY = dt.date(2025, 7, 1)


def seed_merged_province(app) -> dict:
    """Province M > district M-D (ends 01/07/2025, merged into M-S) > communes
    M-D-1, M-D-2 (merged into M-S) and M-D-3 (merged into M-T); M-S and M-T
    are new communes of M from 01/07/2025.  Responses of report years 2024 and
    2025 (MERGED_UNITS), before the merge at the old units and after it at the
    new ones; a volume row per unit and year.  Users: admin `boss`, leaders
    `lead-s` (M-S), `lead-t` (M-T), `lead-d` (the former district)."""
    from survey_app.extensions import db
    from survey_app.services.instruments import latest
    from survey_app.services.periods import resolve_period
    from survey_app.services.responses import insert_responses

    rng = random.Random(14)
    with app.app_context():
        m = make_unit("M", kind="province", name_vi="Tỉnh Mới Hợp")
        s = make_unit("M-S", parent=m, name_vi="Xã Sông Hợp", valid_from=MERGE_DAY)
        t = make_unit("M-T", parent=m, name_vi="Xã Tân Hợp", valid_from=MERGE_DAY)
        d = make_unit("M-D", kind="district", parent=m, name_vi="Huyện Cũ", valid_to=MERGE_DAY, successor=s)
        units = {"M": m, "M-S": s, "M-T": t, "M-D": d}
        for code, succ, name in (("M-D-1", s, "Xã Một"), ("M-D-2", s, "Xã Hai"), ("M-D-3", t, "Xã Ba")):
            units[code] = make_unit(code, parent=d, name_vi=name, valid_to=MERGE_DAY, successor=succ)
        counters = {code: make_counter(u, code=f"{code}-Q1", active=u.valid_to is None)
                    for code, u in units.items() if code != "M"}
        inst_id = latest(db.session, "counter-quick").id
        resp_rows, ans_rows = [], []
        for year in (2024, 2025):
            per = resolve_period(str(year))
            for code, (n25, n24, p) in MERGED_UNITS.items():
                u = units[code]
                make_volume(u, 400, start=per.first, end=per.last)
                n = n25 if year == 2025 else n24
                if u.valid_to:  # before the merge
                    lo, hi = per.start, dt.datetime(2025, 6, 30, 10, tzinfo=UTC)
                else:
                    lo, hi = dt.datetime(2025, 7, 1, 3, tzinfo=UTC), dt.datetime(2025, 12, 1, tzinfo=UTC)
                for _ in range(n):
                    rid = uuid.uuid4()
                    at = lo + (min(hi, per.end) - lo) * rng.random()
                    resp_rows.append(dict(id=rid, unit_id=u.id, counter_id=counters[code].id, instrument_id=inst_id,
                                          channel="qr", submitted_at=at, received_at=at, stratum=ALL_STRATUM,
                                          comment=None, flags="", excluded=False))
                    ans_rows.extend({"response_id": rid, "item_key": k,
                                     "value": rng.choice([4, 5]) if rng.random() < p else rng.choice([1, 2, 3])}
                                    for k in ITEM_KEYS)
        insert_responses(resp_rows, ans_rows)
        users = {"boss": make_user("boss", role="admin"), "lead-s": make_user("lead-s", role="unit_leader", unit=s),
                 "lead-t": make_user("lead-t", role="unit_leader", unit=t),
                 "lead-d": make_user("lead-d", role="unit_leader", unit=d)}
        db.session.commit()
        return {"users": {k: u.username for k, u in users.items()},
                "ids": {code: u.id for code, u in units.items()}}
