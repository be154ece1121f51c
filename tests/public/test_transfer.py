"""Transfer (issue 13 item 7): pages and scripts compressed for clients that
accept it, static files under versioned names with a long cache lifetime,
and the rating step within 14 KB on the wire."""
from __future__ import annotations

import gzip
import re

import brotli
import pytest

from survey_app.assets import IMMUTABLE, static_hash

BUDGET = 14 * 1024
_SCRIPTS = re.compile(r'<script src="([^"]+)"')


def test_form_page_compressed_with_brotli_or_gzip(client, place):
    plain = client.get(place.url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    br = client.get(place.url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert br.headers["Content-Encoding"] == "br"
    assert "Accept-Encoding" in br.headers["Vary"]
    html = brotli.decompress(br.data).decode()
    assert html.startswith("<!doctype html>") and 'name="csrf_token"' in html
    assert int(br.headers["Content-Length"]) == len(br.data) < len(plain.data) / 2
    gz = client.get(place.url, headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gz.data).decode().startswith("<!doctype html>")


def test_small_answers_are_sent_as_they_are(client):
    r = client.get("/healthz", headers={"Accept-Encoding": "br"})
    assert r.status_code == 200 and "Content-Encoding" not in r.headers


@pytest.mark.parametrize("filename", ["public.js", "kiosk.js", "staff.css"])
def test_static_files_versioned_and_cached_for_a_year(app, client, filename):
    with app.test_request_context():
        from flask import url_for

        url = url_for("static", filename=filename)
    version = static_hash(filename)
    assert re.fullmatch(r"[A-Za-z0-9_-]{10}", version)
    assert url == f"/static/{filename}?v={version}"
    r = client.get(url, headers={"Accept-Encoding": "br"})
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == IMMUTABLE
    assert "Expires" not in r.headers
    assert r.headers["Content-Encoding"] == "br"
    # no version or an old one: the browser must ask again (never a stale file for a year)
    for stale in (f"/static/{filename}", f"/static/{filename}?v=0000000000"):
        r = client.get(stale)
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"


def test_version_follows_the_content(tmp_path, monkeypatch):
    import survey_app.assets as assets

    (tmp_path / "x.js").write_text("one")
    monkeypatch.setattr(assets, "STATIC", tmp_path)
    first = assets.static_hash("x.js")
    (tmp_path / "x.js").write_text("two!")
    assert assets.static_hash("x.js") != first
    assert assets.static_hash("missing.js") == "" and assets.static_hash("../x.js") == ""


def _on_the_wire(client, url: str) -> int:
    """Bytes of the page and of every script it loads, as a browser that accepts brotli gets them
    (bodies plus the response headers)."""
    total = 0
    r = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    html = brotli.decompress(r.data).decode() if r.headers.get("Content-Encoding") == "br" else r.get_data(True)
    total += len(r.data) + sum(len(k) + len(v) + 4 for k, v in r.headers.items())
    for src in _SCRIPTS.findall(html):
        s = client.get(src.replace("&amp;", "&"), headers={"Accept-Encoding": "gzip, deflate, br"})
        assert s.status_code == 200
        total += len(s.data) + sum(len(k) + len(v) + 4 for k, v in s.headers.items())
    return total


@pytest.mark.parametrize("kind", ["phone", "kiosk"])
def test_rating_step_within_14_kb_on_the_wire(client, place, kind):
    url = place.url if kind == "phone" else place.kiosk_url
    assert _on_the_wire(client, url) <= BUDGET
