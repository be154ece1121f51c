"""The form's hot path (issue 13 item 9, public/hotpath.py) with its caches on
(tests otherwise run with them off): every citizen still gets their own
CSRF token and idempotency key, the page's CSP still allows its inline
stylesheet, each language gets its own page, and the counter token is
verified once per request."""
from __future__ import annotations

import re

import pytest

from survey_app.public import hotpath
from tests.helpers import ANSWERS, responses, scrape

CACHED = {"COLLECT_PAGE_CACHE_SECONDS": 60, "COLLECT_COUNTER_CACHE_SECONDS": 60}


@pytest.fixture
def capp(make_loaded_app):
    hotpath._pages.clear()
    hotpath._counters.clear()
    yield make_loaded_app(**CACHED)
    hotpath._pages.clear()
    hotpath._counters.clear()


@pytest.fixture
def cplace(capp):
    from tests.factories import make_place

    with capp.app_context():
        return make_place()


def _strip(html: str) -> str:
    html = re.sub(r'name="csrf_token" value="[^"]+"', "CSRF", html)
    return re.sub(r'name="k" value="[^"]+"', "KEY", html)


def test_cached_form_gives_each_citizen_their_own_token_and_key(capp, cplace):
    a, b = capp.test_client(), capp.test_client()
    ra, rb = a.get(cplace.url), b.get(cplace.url)
    assert ra.status_code == rb.status_code == 200
    ha, hb = ra.get_data(as_text=True), rb.get_data(as_text=True)
    assert len(hotpath._pages) == 1                      # the second page came from the cache
    assert hotpath.CSRF_PLACEHOLDER not in hb and hotpath.KEY_PLACEHOLDER not in hb
    assert scrape(ha)["k"] != scrape(hb)["k"]
    assert _strip(ha) == _strip(hb)
    # the inline stylesheet stays allowed by its hash on the cached copy
    assert "'sha256-" in ra.headers["Content-Security-Policy"]
    assert rb.headers["Content-Security-Policy"] == ra.headers["Content-Security-Policy"]
    # both forms are accepted: the CSRF tokens filled into the cached page are valid
    for client, html in ((a, ha), (b, hb)):
        r = client.post(cplace.url, data=dict(scrape(html), **ANSWERS))
        assert r.status_code == 303, r.get_data(as_text=True)[:300]
    assert len(responses(capp)) == 2


def test_each_language_and_kind_has_its_own_page(capp, cplace):
    c = capp.test_client()
    vi = c.get(cplace.url).get_data(as_text=True)
    en = c.get(cplace.url + "?lang=en").get_data(as_text=True)
    assert 'lang="vi"' in vi and 'lang="en"' in en
    # the language kept in the cookie (no query) is part of the key too
    en_again = c.get(cplace.url).get_data(as_text=True)
    assert 'lang="en"' in en_again
    kiosk = c.get(cplace.kiosk_url).get_data(as_text=True)
    assert 'id="kiosk-queue"' in kiosk and 'id="kiosk-queue"' not in en_again
    assert len(hotpath._pages) == 4


def test_pages_with_answers_or_errors_are_never_cached(capp, cplace):
    c = capp.test_client()
    hidden = scrape(c.get(cplace.url).get_data(as_text=True))
    n = len(hotpath._pages)
    r = c.post(cplace.url, data=dict(hidden, overall="9", comment="Chỉ một góp ý riêng"))  # not a choice
    assert r.status_code == 400 and "Chỉ một góp ý riêng" in r.get_data(as_text=True)
    assert len(hotpath._pages) == n
    assert "Chỉ một góp ý riêng" not in c.get(cplace.url).get_data(as_text=True)


def test_counter_token_verified_once_per_request(capp, cplace, monkeypatch):
    calls = []
    real = hotpath.parse_counter_token
    monkeypatch.setattr(hotpath, "parse_counter_token", lambda t: calls.append(t) or real(t))
    c = capp.test_client()
    html = c.get(cplace.url).get_data(as_text=True)
    calls.clear()
    r = c.post(cplace.url, data=dict(scrape(html), **ANSWERS))
    assert r.status_code == 303
    assert len(calls) == 1


def test_counter_light_row_kept_for_its_ttl_only(capp, cplace, monkeypatch):
    c = capp.test_client()
    assert c.get(cplace.url).status_code == 200
    assert len(hotpath._counters) == 1
    monkeypatch.setitem(capp.config, "COLLECT_COUNTER_CACHE_SECONDS", 0)
    from survey_app.extensions import db
    from survey_app.models import Counter

    with capp.app_context():
        db.session.get(Counter, cplace.counter_id).active = False
        db.session.commit()
    assert c.get(cplace.url).status_code == 410          # no cache: seen at once


def test_thank_you_pages_name_the_unit_from_the_light_row_without_a_query(capp, cplace):
    from sqlalchemy import event

    from survey_app.extensions import db

    c = capp.test_client()
    r = c.post(cplace.url, data=dict(scrape(c.get(cplace.url).get_data(as_text=True)), **ANSWERS))
    thanks = r.headers["Location"]
    kiosk_thanks = cplace.kiosk_url + "/thanks"
    statements = []
    with capp.app_context():
        from survey_app.models import Unit

        unit = db.session.get(Unit, cplace.unit_id)
        names = {"vi": unit.name_vi, "en": unit.name("en")}
        engine = db.engine
    listen = lambda *a, **k: statements.append(a[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(engine, "before_cursor_execute", listen)
    try:
        for path in (thanks, kiosk_thanks, thanks + "&lang=en"):
            html = c.get(path).get_data(as_text=True)
            assert names["en" if path.endswith("lang=en") else "vi"] in html
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert statements == []
