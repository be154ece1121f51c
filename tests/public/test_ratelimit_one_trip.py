"""The citizen forms' rate limits counted in one storage round trip
(survey_app/public/ratelimit.py, issue 13 item 9): the same windows, order,
keys and refusals as the Flask-Limiter decorators they replace, in memory and
in Redis, one Redis call per request, and the in-memory fallback when Redis is
unreachable."""
from __future__ import annotations

import socket
import uuid

import pytest

from tests.factories import make_place
from tests.helpers import open_form, responses, submit, varied_answers


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")


@pytest.fixture
def make(make_loaded_app, monkeypatch):
    """An app and a counter; the limiter's key prefix is this test's own, set on the limiter for
    this test only (Flask-Limiter would keep an app's RATELIMIT_KEY_PREFIX for every later app of
    the process)."""
    from survey_app.extensions import limiter

    def factory(storage: str, **config):
        app, place, prefix = _app(make_loaded_app, storage, **config)
        monkeypatch.setattr(limiter, "_key_prefix", prefix)
        return app, place, prefix

    return factory


def _app(make_loaded_app, storage: str, **config):
    prefix = f"sipas-test-{uuid.uuid4().hex[:8]}"
    uri = "redis://127.0.0.1:6379/15" if storage == "redis" else "memory://"
    app = make_loaded_app(RATELIMIT_STORAGE_URI=uri, **config)
    with app.app_context():
        place = make_place()
    return app, place, prefix


def _redis_keys(prefix: str) -> list[str]:
    import redis

    r = redis.Redis(host="127.0.0.1", port=6379, db=15)
    return sorted(k.decode() for k in r.keys(f"*{prefix}*"))


def _drop_redis_keys(prefix: str) -> None:
    import redis

    r = redis.Redis(host="127.0.0.1", port=6379, db=15)
    keys = r.keys(f"*{prefix}*")
    if keys:
        r.delete(*keys)


STORAGES = ["memory", pytest.param("redis", marks=needs_redis)]


@pytest.mark.parametrize("storage", STORAGES)
def test_windows_are_counted_in_order_and_stop_at_the_first_breach(make, storage):
    """IP, counter and device per minute, then the counter's hour: a POST refused by the counter's
    minute limit has still counted for the IP (it comes first)."""
    app, place, prefix = make(storage, PUBLIC_LIMIT_COUNTER="2/minute",
                              PUBLIC_LIMIT_IP="5/minute", PUBLIC_LIMIT_DEVICE="3/minute")
    try:
        phone = app.test_client()
        codes = [submit(phone, place.url, varied_answers(i)).status_code for i in range(3)]
        assert codes == [303, 303, 429]                      # the counter's minute limit
        with app.app_context():
            other = make_place(code="XA-B", name_vi="UBND xã B")
        # the same phone at another counter: its device limit (3) is per counter, the IP's (5) is not
        codes = [submit(phone, other.url, varied_answers(10 + i)).status_code for i in range(3)]
        assert codes == [303, 303, 429]                      # IP: 3 + 2 = 5, the 6th is over
        assert len(responses(app)) == 4
    finally:
        if storage == "redis":
            _drop_redis_keys(prefix)


@pytest.mark.parametrize("storage", STORAGES)
def test_the_hourly_ceiling_is_a_window_of_the_same_check(make, storage):
    app, place, prefix = make(storage, COLLECT_VOLUME_FLOOR=2, PUBLIC_CEILING_MULTIPLIER=1.5,
                              COLLECT_VOLUME_MINUTE_FLOOR=100)
    try:
        codes = [submit(app.test_client(), place.url, varied_answers(i)).status_code for i in range(4)]
        assert codes == [303, 303, 303, 429]                 # ceil(1.5 * 2) = 3 an hour
        assert len(responses(app)) == 3
    finally:
        if storage == "redis":
            _drop_redis_keys(prefix)


@needs_redis
def test_one_redis_round_trip_per_request_with_flask_limiter_s_keys(make):
    from survey_app.extensions import limiter

    app, place, prefix = make("redis")
    try:
        phone = app.test_client()
        hidden = open_form(phone, place.url)
        conn = limiter.storage.get_connection()
        calls = []
        real = conn.execute_command

        def counting(*args, **kw):
            calls.append(args[0])
            return real(*args, **kw)

        conn.execute_command = counting
        try:
            assert submit(phone, place.url, hidden=hidden).status_code == 303
        finally:
            del conn.execute_command
        assert calls == ["EVALSHA"]                          # four windows, one call
        keys = _redis_keys(prefix)
        scopes = sorted(k.split("/")[3] for k in keys if "/public.form:" in k)
        # the GET's per-IP window and the POST's four, keyed as the Flask-Limiter decorators keyed them
        assert scopes == ["public.form:public-counter", "public.form:public-counter", "public.form:public-device",
                          "public.form:public-ip", "public.form:public-ip-get"]
        assert all(k.startswith(f"LIMITS:LIMITER/{prefix}/") for k in keys)
        assert not any("127.0.0.1" in k for k in keys)      # the IP is hashed even there
        hour = [k for k in keys if k.endswith("/hour")]
        assert len(hour) == 1 and "/counter:" in hour[0]
    finally:
        _drop_redis_keys(prefix)


def test_an_unreachable_redis_falls_back_to_memory_and_still_limits(make_loaded_app):
    from survey_app.extensions import limiter

    with socket.socket() as s:                               # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = make_loaded_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{port}/0", PUBLIC_LIMIT_DEVICE="2/minute",
                          CACHE_TYPE="SimpleCache")
    try:
        with app.app_context():
            place = make_place()
        phone = app.test_client()
        codes = [submit(phone, place.url, varied_answers(i)).status_code for i in range(3)]
        assert codes == [303, 303, 429]
        assert limiter._storage_dead
        assert len(responses(app)) == 2
    finally:
        limiter._storage_dead = False


def test_rate_limiting_switched_off_counts_nothing(make):
    app, place, _ = make("memory", RATELIMIT_ENABLED=False, PUBLIC_LIMIT_DEVICE="1/minute")
    phone = app.test_client()
    assert [submit(phone, place.url, varied_answers(i)).status_code for i in range(3)] == [303] * 3


def test_a_get_over_its_ip_limit_gets_the_plain_429_page(make):
    app, place, _ = make("memory", PUBLIC_LIMIT_IP_GET="2/minute")
    c = app.test_client()
    assert [c.get(place.url).status_code for _ in range(3)] == [200, 200, 429]
    html = c.get(place.url).get_data(as_text=True)
    assert "<form" not in html and "chờ một phút rồi thử lại" in html
