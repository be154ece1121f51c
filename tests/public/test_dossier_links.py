"""Dossier-linked rating links (issue 11 hole 5): the link carries an opaque
signed reference, never the dossier code, so the code is in no URL and no log
line; links of the first format (code readable) get a clear 410 page."""
import logging
import re
from urllib.parse import unquote

import requests

from tests.helpers import ANSWERS, open_form, responses, scrape, submit

CODE = "HS-2025-000123"


def _mint(runner, place, code=CODE) -> str:
    res = runner.invoke(args=["qr", "link", "--counter", place.counter_code, "--dossier", code])
    assert res.exit_code == 0, res.output
    return res.output.strip()


def _hides(code: str, text: str) -> bool:
    """Whether `text` holds `code` in no spelling (as is, URL-decoded, without its separators)."""
    plain = re.sub(r"[^0-9A-Za-z]", "", code)
    decoded = unquote(unquote(text))
    return code not in decoded and plain not in re.sub(r"[^0-9A-Za-z]", "", decoded) and "000123" not in decoded


def test_minted_link_carries_no_dossier_code(app, runner, client, place):
    link = _mint(runner, place)
    assert link.startswith("http://sipas.test/c/") and "?d=" in link
    assert _hides(CODE, link), link
    other = _mint(runner, place, "HS-2025-000124")
    assert other != link  # one reference per dossier
    hidden = open_form(client, link.replace("http://sipas.test", ""))
    assert hidden["d"] == link.split("?d=", 1)[1] and _hides(CODE, hidden["d"])


def test_no_dossier_code_in_any_url_or_log_line_over_a_full_flow(app, runner, place, live_server, caplog):
    caplog.set_level(logging.DEBUG)
    link = _mint(runner, place).replace("http://sipas.test", live_server)
    s = requests.Session()
    page = s.get(link, timeout=10)
    assert page.status_code == 200
    data = dict(scrape(page.text), **ANSWERS)
    sent = s.post(live_server + f"/c/{place.token}", data=data, timeout=10, allow_redirects=False)
    assert sent.status_code == 303, sent.text[:300]
    assert s.get(live_server + sent.headers["Location"], timeout=10).status_code == 200
    again = s.get(link, timeout=10)
    assert again.status_code == 409  # one rating per dossier
    assert len(responses(app)) == 1
    lines = [r.getMessage() for r in caplog.records]
    assert any(f"/c/{place.token}" in line for line in lines), "the access log was not captured"
    for line in lines:
        assert _hides(CODE, line), line
    for url in [page.url, sent.headers["Location"], again.url]:
        assert _hides(CODE, url), url


def test_old_format_links_answer_a_clear_410(app, client, place):
    from survey_app.services import tokens

    with app.app_context():
        old = tokens._signer(tokens.LEGACY_DOSSIER_SALT).sign(f"{tokens._b36(place.counter_id)}~{CODE}").decode()
    r = client.get(f"{place.url}?d={old}")
    assert r.status_code == 410
    body = r.get_data(as_text=True)
    assert "Liên kết đánh giá này không còn được sử dụng" in body and "quét mã QR" in body
    hidden = open_form(client, place.url)  # a stale form still carrying an old reference
    r = submit(client, place.url, hidden=dict(hidden, d=old))
    assert r.status_code == 410 and responses(app) == []
    for bad in (old[:-2] + "xx", "1~" + CODE, "~", "." * 80):
        assert client.get(f"{place.url}?d={bad}").status_code == 404
