"""The public results pages: only published figures, small samples
suppressed, versions named, CSV/JSON equal to the page, cached, no login."""
from __future__ import annotations

import csv
import io
import json
import re
import uuid

import pytest
import sqlalchemy as sa

from tests.factories import seed_publishing


def publish_units(app, codes, *, version=None):
    """Close 2025 for P (unless a version is open or closed already) and take `codes` through the chain."""
    with app.app_context():
        from survey_app.extensions import db
        from survey_app.models import User
        from survey_app.services import publishing

        users = {u.username: u for u in db.session.scalars(sa.select(User))}
        current = publishing.latest("2025", "P")
        if current is None or current.state == "open":
            publishing.close_period("2025", "P")
        snap = publishing.get_version("2025", "P", version)
        for code in codes:
            a = publishing.approval_for(snap, code)
            if code == "P":
                a.status = "submitted"  # the province's own figures: its leader is not in the test world
                db.session.commit()
            else:
                leader = users["leader_a"] if code == "P-A" else _leader(code)
                publishing.submit(a, leader, "Nhận xét của đơn vị về kết quả.")
            publishing.accept(a, users["admin"] if code == "P" else users["analyst_p"])
            publishing.publish(a, users["admin"] if code == "P" else users["analyst_p"])


def _leader(code):
    from survey_app.extensions import db
    from survey_app.models import Unit
    from tests.factories import make_user

    unit = db.session.scalar(sa.select(Unit).where(Unit.code == code))
    u = make_user(f"leader_{code}", role="unit_leader", unit=unit)
    db.session.commit()
    return u


@pytest.fixture
def pubapp(make_loaded_app):
    app = make_loaded_app(WTF_CSRF_ENABLED=False, PUBLIC_CACHE_SECONDS=300)
    data = seed_publishing(app)
    return app, data


def _page(client, url):
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code, r.get_data(as_text=True)[:300])
    return r.get_data(as_text=True)


def _body_rows(html):
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", tr)).strip() for tr in body.split("<tr>")[1:]]


def test_only_published_units_and_small_samples_suppressed(pubapp, backend):
    app, data = pubapp
    c = app.test_client()
    assert c.get("/public/P/2025").status_code == 404  # nothing published yet
    assert "Chưa có kết quả nào được công bố" in _page(c, "/public/")
    publish_units(app, ["P-A", "P-C"])
    with app.app_context():  # P-B accepted but not published: not shown
        from survey_app.extensions import db
        from survey_app.models import User
        from survey_app.services import publishing

        b = publishing.approval_for(publishing.get_version("2025", "P"), "P-B")
        publishing.submit(b, _leader("P-B"), "Nhận xét của đơn vị về kết quả.")
        publishing.accept(b, db.session.scalar(sa.select(User).where(User.username == "analyst_p")))
        a_row = next(r for r in publishing.get_version("2025", "P").table if r["unit_code"] == "P-A")
    html = _page(c, "/public/P/2025")
    rows = _body_rows(html)
    assert len(rows) == 2
    assert any("P-A" in r for r in rows) and not any("P-B" in r for r in rows) and "Q-Y" not in html
    small = next(r for r in rows if "P-C" in r)
    assert "chưa đủ mẫu" in small and "%" not in small and "10" not in small.replace("P-C", "")
    assert "Phiên bản 1" in html and "khoảng" in html.lower()  # version named; the interval explained
    from babel.numbers import format_percent

    assert format_percent(a_row["index"], "#,##0.0%", locale="vi") in html
    assert "SECRET" not in html and "comment" not in html.lower()
    listing = _page(c, "/public/")
    assert "/public/P/2025" in listing and "Tỉnh Phú Thịnh" in listing
    en = _page(c, "/public/P/2025?lang=en")
    assert "not enough responses yet" in en and "Version 1" in en
    r = c.get("/public/P/2025")
    assert "public" in r.headers["Cache-Control"] and "Content-Security-Policy" in r.headers
    assert c.get("/public/NOPE/2025").status_code == 404 and c.get("/public/P/1999").status_code == 404


def test_csv_and_json_equal_the_page(pubapp):
    app, data = pubapp
    publish_units(app, ["P-A", "P-B", "P-C"])
    c = app.test_client()
    for sort in ("name", "index", "n"):
        html = _page(c, f"/public/P/2025?sort={sort}")
        doc = json.loads(_page(c, f"/public/P/2025.json?sort={sort}"))
        table = list(csv.DictReader(io.StringIO(_page(c, f"/public/P/2025.csv?sort={sort}").lstrip("\ufeff"))))
        page_codes = [re.search(r"· (P-\w)", r).group(1) for r in _body_rows(html)]
        assert [r["unit_code"] for r in doc["rows"]] == [r["unit_code"] for r in table] == page_codes
        for j, t in zip(doc["rows"], table):
            for col in ("index", "index_ci_low", "index_ci_high", "n", "version", "target_status"):
                assert (str(j[col]) if j[col] is not None else "") == t[col].replace("True", "true"), col
            if j["suppressed"]:
                assert j["index"] is None and j["n"] is None and t["index"] == "" and t["n"] == ""
        assert doc["method_version"].startswith("sipas-index/") and doc["method_note"]
        assert doc["versions"][0]["version"] == 1 and table[0]["method"] == doc["method_version"]
    by_index = json.loads(_page(c, "/public/P/2025.json?sort=index&order=desc"))["rows"]
    figures = [r["index"] for r in by_index if r["index"] is not None]
    assert figures == sorted(figures, reverse=True) and by_index[-1]["suppressed"]


def test_published_figures_do_not_move_until_a_new_version_is_published(pubapp):
    """A later exclusion (after reopening) changes the live view, not the published page."""
    app, data = pubapp
    publish_units(app, ["P-A"])
    c = app.test_client()
    before = json.loads(_page(c, "/public/P/2025.json"))["rows"][0]
    with app.app_context():
        from survey_app.extensions import db
        from survey_app.models import Response
        from survey_app.services import publishing, stats

        publishing.reopen_period("2025", "P", reason="Loại phiếu trùng lặp")
        db.session.execute(sa.update(Response).where(Response.id == uuid.UUID(data["response"]))
                           .values(excluded=True))
        db.session.commit()
        live = stats.unit_row(stats.compute("2025").table, "P-A")
    assert live["n"] == 119
    after = json.loads(_page(c, "/public/P/2025.json"))["rows"][0]
    assert after == before and after["n"] == 120 and after["version"] == 1
    publish_units(app, ["P-A"], version=2)
    v2 = json.loads(_page(c, "/public/P/2025.json"))
    assert v2["rows"][0]["n"] == 119 and v2["rows"][0]["version"] == 2
    assert v2["versions"][0]["reason"] == "Loại phiếu trùng lặp"
    assert "Loại phiếu trùng lặp" in _page(c, "/public/P/2025")
