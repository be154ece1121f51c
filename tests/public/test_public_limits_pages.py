"""Rate limits (also on CSRF failures, keyed by device and counter, loose per
IP, Redis storage), friendly error pages, page weight and markup checks."""
from __future__ import annotations

import gzip
import re
import socket
import uuid

import pytest

from tests.factories import make_place
from tests.helpers import ANSWERS, open_form, responses, submit


def _app_with(make_app, **config):
    app = make_app(**config)
    with app.app_context():
        from survey_app.extensions import db
        from survey_app.services.instruments import sync_instruments

        sync_instruments(db.session)
        db.session.commit()
        place = make_place()
    return app, place


def test_limiter_counts_csrf_failures_per_device(make_app):
    app, place = _app_with(make_app, PUBLIC_LIMIT_DEVICE="3/minute")
    client = app.test_client()
    hidden = open_form(client, place.url)
    bad = dict(hidden, csrf_token="forged")
    for _ in range(3):
        r = submit(client, place.url, hidden=bad)
        assert r.status_code == 400 and "<form" in r.get_data(as_text=True)
    r = submit(client, place.url, hidden=hidden)  # even a valid one now waits
    assert r.status_code == 429
    html = r.get_data(as_text=True)
    assert "Xin chờ một phút" in html and re.search(r'name="overall" value="5"[^>]*checked', html)
    assert r.headers["Retry-After"] == "60"
    assert responses(app) == []
    # another phone at the same counter (same public IP) is not blocked
    other = app.test_client()
    assert submit(other, place.url).status_code == 303


def test_counter_limit_and_loose_ip_ceiling(make_app):
    app, place = _app_with(make_app, PUBLIC_LIMIT_COUNTER="4/minute", PUBLIC_LIMIT_IP="7/minute")
    for _ in range(4):
        assert submit(app.test_client(), place.url).status_code == 303
    assert submit(app.test_client(), place.url).status_code == 429  # the counter's own limit
    with app.app_context():
        other = make_place(code="XA-B", name_vi="UBND xã B")
    assert submit(app.test_client(), other.url).status_code == 303
    assert submit(app.test_client(), other.url).status_code == 303
    r = submit(app.test_client(), other.url)  # 8th POST from this IP in a minute (the refused one counts)
    assert r.status_code == 429
    assert len(responses(app)) == 6


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_limits_shared_through_redis(make_app):
    prefix = f"sipas-test-{uuid.uuid4().hex[:8]}"
    cfg = dict(RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/15", RATELIMIT_KEY_PREFIX=prefix,
               PUBLIC_LIMIT_DEVICE="2/minute")
    app, place = _app_with(make_app, **cfg)
    client = app.test_client()
    hidden = open_form(client, place.url)
    assert submit(client, place.url, hidden=dict(hidden, csrf_token="x")).status_code == 400
    assert submit(client, place.url, hidden=dict(hidden, csrf_token="x")).status_code == 400
    assert submit(client, place.url, hidden=hidden).status_code == 429
    import redis

    r = redis.Redis(host="127.0.0.1", port=6379, db=15)
    keys = r.keys(f"*{prefix}*")
    assert keys  # the counts live in Redis, not in the process
    assert not any(b"127.0.0.1" in k for k in keys)  # the IP is hashed even there
    r.delete(*keys)


def test_friendly_error_pages(client, place):
    r = client.get("/no/such/page")
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert "Không tìm thấy trang" in html and '<html lang="vi">' in html and "Traceback" not in html
    r = client.get("/no/such/page?lang=en")
    assert "Page not found" in r.get_data(as_text=True)
    r = client.put(place.url)
    assert r.status_code == 405 and "Allow" in r.headers
    assert "<h1>" in r.get_data(as_text=True)
    r = client.get("/api/nothing", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json["error"] == 404
    r = client.get(f"{place.url}/thanks".replace(place.token, "bad"))
    assert r.status_code == 404


def test_server_error_page_never_shows_a_traceback(make_app):
    app = make_app(TESTING=False, PROPAGATE_EXCEPTIONS=False, JOBS_IN_PROCESS=False)  # no job thread left behind

    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("secret internals")

    r = app.test_client().get("/boom-for-test")
    assert r.status_code == 500
    html = r.get_data(as_text=True)
    assert "Đã có lỗi xảy ra" in html and "secret internals" not in html and "Traceback" not in html


def test_page_weight_and_no_external_assets(client, place):
    r = client.get(place.url)
    html = r.get_data(as_text=True)
    size = len(gzip.compress(r.data, 9))
    assert size <= 14 * 1024, size
    assert "<style>" in html  # the stylesheet is inline: one round trip
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not ref.startswith(("http:", "https:", "//")), ref
    csp = r.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'sha256-" in csp


def test_markup_is_accessible(client, place):
    html = client.get(place.url).get_data(as_text=True)
    assert '<html lang="vi">' in html and 'name="viewport"' in html
    fieldsets = re.findall(r"<fieldset.*?</fieldset>", html, re.S)
    assert len(fieldsets) == 6  # the rating step: overall + 5 elements
    for fs in fieldsets:
        assert "<legend>" in fs
        # every input sits inside its label; five faces with a text label, and "No opinion"
        assert fs.count("<input") == fs.count("<label") == 6
        assert fs.count('class="t"') == 5 and "Không ý kiến" in fs
    details = client.get(place.url + "/details").get_data(as_text=True)
    fieldsets = re.findall(r"<fieldset.*?</fieldset>", details, re.S)
    assert len(fieldsets) == 3  # field + age + gender
    for fs in fieldsets:
        assert "<legend>" in fs and fs.count("<input") == fs.count("<label")
    assert re.search(r'<label for="f-comment">', details) and 'id="f-comment"' in details
    assert 'maxlength="1000"' in details
    assert "Xin đừng ghi họ tên, số điện thoại" in details  # the privacy note beside the comment


def test_instrument_texts_in_both_languages(client, place):
    vi = client.get(place.url).get_data(as_text=True)
    assert "Nhìn chung, Ông/Bà hài lòng không?" in vi and "English" in vi
    en = client.get(place.url + "?lang=en").get_data(as_text=True)
    assert "Overall, are you satisfied?" in en and "Tiếng Việt" in en
    assert '<html lang="en">' in en
    # the choice is remembered
    assert "Overall, are you satisfied?" in client.get(place.url).get_data(as_text=True)


def test_answers_survive_language_of_error_messages(app, client, place):
    client.set_cookie("lang", "en")
    hidden = open_form(client, place.url)
    r = submit(client, place.url, answers=dict(ANSWERS, comment="y" * 1200), hidden=hidden)
    assert r.status_code == 400
    assert "Too long: at most 1,000 characters (now 1,200)" in r.get_data(as_text=True)
    assert responses(app) == []


def test_character_limit_uses_the_language_s_digit_grouping(client, place):
    """1.000 in Vietnamese, 1,000 in English (the English page once said "1.000 characters")."""
    vi = client.get(place.url + "/details?lang=vi").get_data(as_text=True)
    en = client.get(place.url + "/details?lang=en").get_data(as_text=True)
    assert "Tối đa 1.000 ký tự." in vi
    assert "At most 1,000 characters." in en and "1.000" not in en
