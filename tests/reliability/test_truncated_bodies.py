"""Truncated bodies (issue 11, hole 3): a form cut off in transit is never
stored as a shorter response.

- A body shorter than its Content-Length (the upload stopped mid-way) is
  refused with 400 and a clear message, nothing stored.
- A body re-framed by a proxy (its Content-Length matches what arrived) lacks
  the closing field, the idempotency key `k`, which the page puts LAST in its
  field order: refused, the form re-shown with the answers kept.
"""
from __future__ import annotations

import io
import re
from urllib.parse import urlencode

import pytest

from tests.helpers import ANSWERS, responses, scrape


def _page_body(client, url) -> bytes:
    """The body a browser sends for the rendered form, in the page's field order."""
    html = client.get(url).get_data(as_text=True)
    form = html[html.index('<form class="survey"'):html.index("</form>")]
    hidden = scrape(html)
    names = list(dict.fromkeys(re.findall(r'name="([^"]+)"', form)))
    assert names[-1] == "k", f"the idempotency key must be the last field: {names}"
    pairs = [(n, hidden.get(n, ANSWERS.get(n, ""))) for n in names]
    return urlencode(pairs).encode()


def _post_raw(client, url, body: bytes, content_length: int, terminated: bool = False):
    """POST `body` announcing `content_length` (werkzeug's builder would measure
    the stream, so the header is put into the WSGI environ directly).
    `terminated`: the server says it framed the body itself (gunicorn sets
    wsgi.input_terminated), so werkzeug reads the stream as it is."""
    env = {"CONTENT_LENGTH": str(content_length)}
    if terminated:
        env["wsgi.input_terminated"] = True
    return client.post(url, input_stream=io.BytesIO(body), content_type="application/x-www-form-urlencoded",
                       environ_overrides=env)


@pytest.mark.parametrize("terminated", [False, True], ids=["werkzeug-framed", "server-framed"])
@pytest.mark.parametrize("kind", ["qr", "kiosk"])
def test_body_shorter_than_content_length_is_refused(app, place, kind, terminated):
    client = app.test_client()
    url = place.url if kind == "qr" else place.kiosk_url
    body = _page_body(client, url)
    r = _post_raw(client, url, body[: len(body) // 2], len(body), terminated)
    assert r.status_code == 400
    text = r.get_data(as_text=True)
    assert "Phiếu gửi lên chưa đến đầy đủ" in text and "chưa có gì được lưu" in text
    assert responses(app) == []
    # the same body, whole, is stored once (the guard does not stop honest forms)
    assert _post_raw(client, url, body, len(body), terminated).status_code == 303
    assert len(responses(app)) == 1


def test_the_english_message(app, place):
    client = app.test_client()
    client.get(place.url + "?lang=en")
    body = _page_body(client, place.url)
    r = _post_raw(client, place.url, body[:-10], len(body), terminated=True)
    assert r.status_code == 400 and "did not arrive complete" in r.get_data(as_text=True)


@pytest.mark.parametrize("cut", [0.5, 0.8, 0.97])
def test_reframed_body_without_the_closing_key_is_refused_with_answers_kept(app, place, cut):
    client = app.test_client()
    body = _page_body(client, place.url)
    part = body[: int(len(body) * cut)]
    part = part[: part.rindex(b"&")]  # cut at a field boundary: what arrived parses cleanly
    r = _post_raw(client, place.url, part, len(part))
    assert r.status_code == 400
    assert responses(app) == []
    html = r.get_data(as_text=True)
    assert "Phiếu gửi lên không đúng dạng" in html
    assert re.search(r'name="overall" value="5"[^>]* checked', html)  # the answers are kept
