"""Small data factories for tests (call inside an app context)."""
from __future__ import annotations

import datetime as dt
import itertools
import uuid

from survey_app.services.accounts import hash_password
from survey_app.extensions import db
from survey_app.services.instruments import latest
from survey_app.models import Answer, Counter, Response, Unit, User, Volume

_seq = itertools.count(1)
UTC = dt.timezone.utc


def make_unit(code=None, kind="commune", parent=None, name_vi=None, **kw) -> Unit:
    code = code or f"U{next(_seq):04d}"
    u = Unit(code=code, name_vi=name_vi or f"Đơn vị {code}", name_en=f"Unit {code}", kind=kind,
             parent=parent, **kw)
    db.session.add(u)
    db.session.flush()
    return u


def make_counter(unit: Unit, code=None, **kw) -> Counter:
    c = Counter(code=code or f"{unit.code}-Q{next(_seq)}", unit=unit, name_vi=kw.pop("name_vi", "Quầy 1"),
                name_en="Desk 1", token_version=kw.pop("token_version", 1), active=kw.pop("active", True), **kw)
    db.session.add(c)
    db.session.flush()
    return c


def make_response(unit: Unit, answers: dict[str, int] | None = None, *, counter: Counter | None = None,
                  submitted_at: dt.datetime | None = None, channel="qr", instrument="counter-quick",
                  stratum="_all", **kw) -> Response:
    inst = latest(db.session, instrument)
    r = Response(id=uuid.uuid4(), unit=unit, counter=counter, instrument_id=inst.id, channel=channel,
                 submitted_at=submitted_at or dt.datetime(2025, 6, 1, 3, 0, tzinfo=UTC), stratum=stratum, **kw)
    db.session.add(r)
    for key, value in (answers if answers is not None else {"overall": 4, "staff": 5}).items():
        db.session.add(Answer(response=r, item_key=key, value=value))
    db.session.flush()
    return r


def make_volume(unit: Unit, transactions: int, start=dt.date(2024, 12, 15), end=dt.date(2025, 12, 14),
                stratum="_all") -> Volume:
    v = Volume(unit=unit, period_start=start, period_end=end, stratum=stratum, transactions=transactions)
    db.session.add(v)
    db.session.flush()
    return v


def make_user(username=None, role="analyst", unit: Unit | None = None, password="correct horse 42") -> User:
    u = User(username=username or f"user{next(_seq)}", password_hash=hash_password(password), role=role,
             unit_id=unit.id if unit else None)
    db.session.add(u)
    db.session.flush()
    return u
