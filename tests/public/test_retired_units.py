"""Retired units (issue 11 hole 8): from a merged commune's end date its
counters' QR and kiosk pages answer 410 (GET and POST, nothing stored), name
the successor and link to its form when it has exactly one active counter."""
import datetime as dt

import pytest

from tests.factories import make_counter, make_unit
from tests.helpers import open_form, responses, submit


def _merge(app, *, end_in_days=0, successor_counters=1, successor_retired=False):
    """Commune OLD (one counter) merged into NEW, which has `successor_counters`
    active counters (and an inactive one); OLD ends `end_in_days` from today.
    Returns (old counter path, {paths of NEW's counters}) for /c/ and /k/."""
    from survey_app.extensions import db
    from survey_app.services.periods import local_today
    from survey_app.services.tokens import counter_token

    with app.app_context():
        today = local_today()
        new = make_unit("XA-MOI", name_vi="UBND xã Hòa Bình Mới")
        target = new
        if successor_retired:  # OLD -> MID (itself merged later) -> NEW
            target = make_unit("XA-GIUA", name_vi="UBND xã Giữa", valid_to=today - dt.timedelta(days=3),
                               successor=new)
        old = make_unit("XA-CU", name_vi="UBND xã Hòa Bình", valid_from=dt.date(2020, 1, 1),
                        valid_to=today + dt.timedelta(days=end_in_days), successor=target)
        old_counter = make_counter(old)
        news = [make_counter(new) for _ in range(successor_counters)]
        make_counter(new, active=False)
        db.session.commit()
        token = counter_token(old_counter.id, old_counter.token_version)
        new_tokens = {counter_token(c.id, c.token_version) for c in news}
    return token, new_tokens


@pytest.mark.parametrize("prefix", ["c", "k"])
def test_retired_units_counters_answer_410_and_point_to_the_successor(app, prefix):
    token, new_tokens = _merge(app)
    client = app.test_client()
    r = client.get(f"/{prefix}/{token}")
    assert r.status_code == 410
    body = r.get_data(as_text=True)
    assert "UBND xã Hòa Bình Mới" in body and "UBND xã Hòa Bình" in body
    assert "Mã này đã được thay bằng mã mới" in body
    (new_token,) = new_tokens
    assert f'href="/{prefix}/{new_token}"' in body
    assert client.get(f"/{prefix}/{new_token}").status_code == 200  # the link works
    r = client.post(f"/{prefix}/{token}", data={"overall": "5", "k": "a" * 32})
    assert r.status_code == 410 and "UBND xã Hòa Bình Mới" in r.get_data(as_text=True)
    assert client.get(f"/{prefix}/{token}/thanks").status_code == 410
    assert responses(app) == []
    en = client.get(f"/{prefix}/{token}?lang=en").get_data(as_text=True)
    assert "has been merged into" in en and "Unit XA-MOI" in en


def test_form_opened_before_the_end_date_is_not_stored_after_it(app, client):
    token, _ = _merge(app, end_in_days=1)
    url = f"/c/{token}"
    hidden = open_form(client, url)  # the day before: still open
    from survey_app.extensions import db
    from survey_app.models import Unit
    from survey_app.services.periods import local_today

    with app.app_context():
        unit = db.session.query(Unit).filter_by(code="XA-CU").one()
        unit.valid_to = local_today()  # the end date has come
        db.session.commit()
    r = submit(client, url, hidden=hidden)
    assert r.status_code == 410 and responses(app) == []


def test_successor_with_several_counters_named_without_a_link(app, client):
    token, new_tokens = _merge(app, successor_counters=2)
    body = client.get(f"/c/{token}").get_data(as_text=True)
    assert "UBND xã Hòa Bình Mới" in body
    assert not any(t in body for t in new_tokens)


def test_successor_chain_and_no_successor(app, client):
    token, new_tokens = _merge(app, successor_retired=True)
    body = client.get(f"/c/{token}").get_data(as_text=True)
    (new_token,) = new_tokens
    assert "UBND xã Hòa Bình Mới" in body and f'href="/c/{new_token}"' in body  # past the retired middle one
    from survey_app.extensions import db
    from survey_app.models import Unit

    with app.app_context():
        db.session.query(Unit).filter_by(code="XA-CU").one().successor_id = None
        db.session.commit()
    r = client.get(f"/c/{token}")
    assert r.status_code == 410 and "không còn tồn tại" in r.get_data(as_text=True)


def test_units_ending_later_still_collect(app, client):
    token, _ = _merge(app, end_in_days=1)
    assert client.get(f"/c/{token}").status_code == 200
    assert submit(client, f"/c/{token}").status_code == 303
    assert len(responses(app)) == 1
