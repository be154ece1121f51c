"""Helpers for the collection tests: a unit with a counter, form scraping, stored rows."""
from __future__ import annotations

import re
from dataclasses import dataclass


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
    from factories import make_counter, make_unit

    from survey_app.extensions import db
    from survey_app.services.tokens import counter_token

    unit = make_unit(code=code, name_vi=name_vi)
    counter = make_counter(unit, code=f"{code}-Q1", name_vi="Quầy 1 — Hộ tịch")
    db.session.commit()
    return Place(unit.id, counter.id, counter.code, counter_token(counter.id, counter.token_version))



_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_KEY = re.compile(r'name="k" value="([^"]+)"')


def scrape(html: str) -> dict:
    """The hidden fields of a rendered form."""
    out = {"csrf_token": _CSRF.search(html).group(1), "k": _KEY.search(html).group(1)}
    d = re.search(r'name="d" value="([^"]+)"', html)
    if d:
        out["d"] = d.group(1)
    return out


def open_form(client, url: str) -> dict:
    r = client.get(url)
    assert r.status_code == 200, r.status_code
    return scrape(r.get_data(as_text=True))


ANSWERS = {"overall": "5", "access": "4", "procedure": "3", "staff": "5", "result": "na", "feedback": "2",
           "stratum": "ho_tich", "age_group": "45_59", "gender": "female", "comment": "Cán bộ nhiệt tình."}


def submit(client, url: str, answers: dict | None = None, hidden: dict | None = None, **kw):
    hidden = hidden if hidden is not None else open_form(client, url)
    data = dict(hidden)
    data.update(ANSWERS if answers is None else answers)
    return client.post(url, data=data, **kw)


def responses(app):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import Response

    with app.app_context():
        rows = list(db.session.scalars(select(Response).order_by(Response.received_at)))
        for r in rows:
            r.answer_map = {a.item_key: a.value for a in r.answers}
        db.session.expunge_all()
        return rows
