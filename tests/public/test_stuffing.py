"""Ballot stuffing (issue 11 holes 2 and 9), tried from outside as a script would:
invented and altered device cookies count as no device (the device limit falls
back to the IP, the response is stored as from an unknown device, a run of them
is flagged `no_device_burst`), the per-counter hourly ceiling sized from the
unit's volumes (flag `over_volume` above the busiest real hour, 429 beyond the
ceiling, a busy counter's real hour untouched), and Back + Send after the
thank-you page (same key: the same row; a fresh form: flagged `duplicate`).
The batch `flask responses flag` applies the same rules."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.factories import make_place, make_volume
from tests.helpers import ANSWERS, open_form, responses, submit, varied_answers


def _app(make_loaded_app, **config):
    app = make_loaded_app(**config)
    with app.app_context():
        place = make_place()
    return app, place


def _flags(app):
    return [set(filter(None, r.flags.split(";"))) for r in responses(app)]


def _clear_flags(app):
    from survey_app.extensions import db
    from survey_app.models import Response

    with app.app_context():
        db.session.query(Response).update({"flags": "", "flag_reason": None})
        db.session.commit()


def _rescan(app):
    """Clear every flag and run `flask responses flag`: what the batch rules give."""
    _clear_flags(app)
    result = app.test_cli_runner().invoke(args=["responses", "flag"])
    assert result.exit_code == 0, result.output
    return _flags(app)


# ------------------------------------------------------------------ the signed device token

def test_the_device_cookie_is_signed_and_an_invented_one_is_replaced(make_loaded_app):
    app, place = _app(make_loaded_app)
    client = app.test_client()
    r = client.get(place.url)
    issued = client.get_cookie("sipas_dev").value
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", issued)  # value.timestamp.signature
    assert client.get(place.url).headers.get("Set-Cookie", "").find("sipas_dev") == -1  # kept
    client.set_cookie("sipas_dev", "invented-by-a-script")
    r = client.get(place.url)
    assert "sipas_dev=" in r.headers.get("Set-Cookie", "")
    assert client.get_cookie("sipas_dev").value not in ("invented-by-a-script", issued)


@pytest.mark.parametrize("forge", ["made-up-cookie", "tampered", "other-key"])
def test_an_invented_or_altered_cookie_is_stored_as_an_unknown_device(make_loaded_app, forge):
    from itsdangerous import URLSafeTimedSerializer

    app, place = _app(make_loaded_app)
    client = app.test_client()
    hidden = open_form(client, place.url)
    token = client.get_cookie("sipas_dev").value
    value = {"made-up-cookie": "x" * 22,
             "tampered": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
             "other-key": URLSafeTimedSerializer("not-our-key", salt="device").dumps("abc")}[forge]
    client.set_cookie("sipas_dev", value)
    assert submit(client, place.url, hidden=hidden).status_code == 303
    honest = app.test_client()
    assert submit(honest, place.url, varied_answers(1)).status_code == 303
    rows = responses(app)
    assert rows[0].device_hash == "unknown"
    assert rows[1].device_hash not in (None, "unknown") and len(rows[1].device_hash) == 64


def test_rotating_invented_cookies_share_one_device_limit(make_loaded_app):
    """A new made-up cookie on every POST: the device limit falls back to the
    (hashed) IP at the counter, so rotation buys nothing."""
    app, place = _app(make_loaded_app, PUBLIC_LIMIT_DEVICE="3/minute")
    client = app.test_client()
    hidden = open_form(client, place.url)
    codes = []
    for i in range(5):
        client.set_cookie("sipas_dev", f"rotating-{i}")
        codes.append(submit(client, place.url, varied_answers(i), hidden=dict(hidden, k=f"{i:032x}")).status_code)
    assert codes == [303, 303, 303, 429, 429]
    # a real device behind the same IP is not blocked by them
    assert submit(app.test_client(), place.url, varied_answers(9)).status_code == 303


def test_a_valid_token_keeps_its_own_device_limit(make_loaded_app):
    app, place = _app(make_loaded_app, PUBLIC_LIMIT_DEVICE="2/minute")
    phone = app.test_client()
    codes = [submit(phone, place.url, varied_answers(i)).status_code for i in range(3)]
    assert codes == [303, 303, 429]
    assert len({r.device_hash for r in responses(app)}) == 1


def test_submissions_without_a_known_device_are_flagged_per_counter_not_dropped(make_loaded_app):
    app, place = _app(make_loaded_app, COLLECT_NO_DEVICE_COUNT=2)
    for i in range(5):
        c = app.test_client()
        hidden = open_form(c, place.url)
        c.set_cookie("sipas_dev", f"forged-{i}")
        assert submit(c, place.url, varied_answers(i), hidden=hidden).status_code == 303
    assert submit(app.test_client(), place.url, varied_answers(7)).status_code == 303  # a real device
    flags = _flags(app)
    assert len(flags) == 6  # all stored
    assert [("no_device_burst" in f) for f in flags] == [False, False, True, True, True, False]
    assert "thiết bị không xác định" in responses(app)[4].flag_reason
    assert _rescan(app) == flags  # the batch rule gives the same


# ------------------------------------------------------------------ hourly ceiling from the real volume

def _busy_volume(app, place, transactions):
    from survey_app.extensions import db
    from survey_app.models import Unit

    today = dt.date.today()
    with app.app_context():
        make_volume(db.session.get(Unit, place.unit_id), transactions, start=today - dt.timedelta(days=27),
                    end=today)
        db.session.commit()


def test_a_quiet_counter_flags_beyond_its_hour_and_refuses_beyond_the_ceiling(make_loaded_app):
    """Fresh server-issued tokens each time (a new phone per POST), varied answers:
    the per-counter hourly ceiling still applies."""
    app, place = _app(make_loaded_app, COLLECT_VOLUME_FLOOR=4, PUBLIC_CEILING_MULTIPLIER=2,
                      COLLECT_VOLUME_MINUTE_FLOOR=100)  # the hour's rule alone
    codes = [submit(app.test_client(), place.url, varied_answers(i)).status_code for i in range(10)]
    assert codes == [303] * 8 + [429, 429]
    flags = _flags(app)
    assert [("over_volume" in f) for f in flags] == [False] * 4 + [True] * 4
    assert "1 giờ" in responses(app)[5].flag_reason
    assert _rescan(app) == flags


def test_the_refused_form_keeps_the_answers(make_loaded_app):
    app, place = _app(make_loaded_app, COLLECT_VOLUME_FLOOR=1, PUBLIC_CEILING_MULTIPLIER=1)
    assert submit(app.test_client(), place.url, varied_answers(0)).status_code == 303
    r = submit(app.test_client(), place.url, varied_answers(1))
    assert r.status_code == 429 and r.headers["Retry-After"]
    html = r.get_data(as_text=True)
    assert re.search(r'name="overall" value="2"[^>]*checked', html)
    assert len(responses(app)) == 1


def test_a_busy_counter_real_hour_is_never_blocked_nor_flagged(make_loaded_app):
    """20 working days × 8 h, 1,200 dossiers: 7.5 an hour on average, peak 3× → 23
    an hour expected, ceiling 46: 23 honest people behind one IP, one every 10
    seconds, all pass clean; the same counter without volume data (floor 4) would
    flag them."""
    import time_machine

    app, place = _app(make_loaded_app, COLLECT_VOLUME_FLOOR=4, PUBLIC_CEILING_MULTIPLIER=2)
    _busy_volume(app, place, 1200)
    codes = []
    with time_machine.travel(dt.datetime.now(dt.timezone.utc), tick=False) as clock:
        for i in range(23):
            codes.append(submit(app.test_client(), place.url, varied_answers(i)).status_code)
            clock.shift(10)
    assert codes == [303] * 23
    assert _flags(app) == [set()] * 23
    assert _rescan(app) == [set()] * 23


def test_a_rush_beyond_the_busiest_minute_is_flagged_not_refused(make_loaded_app):
    """The same busy counter: more than max(10, 3 × 23 / 60) in one minute is a
    rush no real queue makes (fresh tokens, varied answers: only the rate shows)."""
    app, place = _app(make_loaded_app, COLLECT_VOLUME_FLOOR=4, PUBLIC_CEILING_MULTIPLIER=2)
    _busy_volume(app, place, 1200)
    codes = [submit(app.test_client(), place.url, varied_answers(i)).status_code for i in range(14)]
    assert codes == [303] * 14
    flags = _flags(app)
    assert [("over_volume" in f) for f in flags] == [False] * 10 + [True] * 4
    assert "1 phút" in responses(app)[12].flag_reason
    assert _rescan(app) == flags


# ------------------------------------------------------------------ HEAD

def test_head_with_a_form_body_stores_nothing_and_is_not_a_way_around(make_loaded_app):
    app, place = _app(make_loaded_app, COLLECT_VOLUME_FLOOR=1, PUBLIC_CEILING_MULTIPLIER=1)
    client = app.test_client()
    hidden = open_form(client, place.url)
    for i in range(5):
        r = client.head(place.url, data=dict(hidden, **varied_answers(i), k=f"{i:032x}"))
        assert r.status_code != 303  # never a thank-you
    assert responses(app) == []


# ------------------------------------------------------------------ hole 9: Back + Send

def test_resending_the_same_form_returns_the_same_row(make_loaded_app):
    app, place = _app(make_loaded_app)
    client = app.test_client()
    hidden = open_form(client, place.url)
    first = submit(client, place.url, hidden=hidden)
    again = submit(client, place.url, hidden=hidden)  # bfcache / resubmission: the same key
    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert len(responses(app)) == 1


def test_back_after_the_thank_you_page_and_send_again_is_flagged_duplicate(make_loaded_app):
    """The page is no-store, so Back loads a fresh form (a new key): the repeat is
    stored, but recognised and flagged `duplicate` (kept, not dropped)."""
    app, place = _app(make_loaded_app)
    client = app.test_client()
    r = submit(client, place.url)
    assert client.get(r.headers["Location"]).status_code == 200  # the thank-you page
    assert submit(client, place.url).status_code == 303  # Back, the same answers, Send
    other = dict(ANSWERS, comment="Lần khác, ý kiến khác.")
    assert submit(client, place.url, other).status_code == 303  # a real second opinion is not a duplicate
    flags = _flags(app)
    assert ["duplicate" in f for f in flags] == [False, True, False]
    assert "trùng toàn bộ nội dung" in responses(app)[1].flag_reason
    assert _rescan(app) == flags


# ------------------------------------------------------------------ a fresh token posted at once

def test_a_fresh_device_posting_at_once_gets_the_form_back_not_stored(make_loaded_app):
    """A script that fetches a new server-issued token and posts straight away
    (rotating real tokens): nothing is stored; a person, seconds later, is."""
    import time_machine

    app, place = _app(make_loaded_app, PUBLIC_MIN_FILL_SECONDS=3)
    with time_machine.travel(dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.timezone.utc), tick=False) as clock:
        codes = []
        for i in range(3):  # rotating fresh tokens, each posted at once
            c = app.test_client()
            codes.append(submit(c, place.url, varied_answers(i)).status_code)
        assert codes == [429, 429, 429]
        assert responses(app) == []
        person = app.test_client()
        hidden = open_form(person, place.url)
        r = submit(person, place.url, varied_answers(5), hidden=hidden)
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        html = r.get_data(as_text=True)
        assert re.search(r'name="overall" value="1"[^>]*checked', html) and "kiểm tra lại câu trả lời" in html
        clock.shift(4)
        assert submit(person, place.url, varied_answers(5), hidden=hidden).status_code == 303
        assert submit(person, place.url, varied_answers(6)).status_code == 303  # a known device: no wait
    assert len(responses(app)) == 2
