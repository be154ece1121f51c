"""The kiosk's offline outbox (issue 13 item 6), in Debian's Chromium against a
live server: ratings made while the tablet is offline are kept on it (service
worker + IndexedDB), the screen says how many wait, and after the network
returns each one is stored exactly once.  Plus the plain-HTTP side: the
service worker's headers and scope, and the phone form untouched."""
from __future__ import annotations

import re

import pytest

from tests.helpers import responses

TABLET = {"width": 800, "height": 1280}
WAITING = {"vi": "{n} đánh giá đang chờ gửi", "en": "{n} ratings waiting to be sent"}
WAITING_ONE = {"vi": "1 đánh giá đang chờ gửi", "en": "1 rating waiting to be sent"}
#: One answer pattern per offline rating (told apart in the database by them).
PATTERNS = [{"overall": "5", "access": "4"}, {"overall": "4", "staff": "5"}, {"overall": "3", "result": "2"}]


def _waiting(lang: str, n: int) -> str:
    return WAITING_ONE[lang] if n == 1 else WAITING[lang].format(n=n)


def _rate(page, answers: dict) -> None:
    for item, value in answers.items():
        page.locator(f'input[name="{item}"][value="{value}"]').check(force=True)
    page.locator("form.survey button.btn[type=submit]").click()
    page.wait_for_url(re.compile(r".*/k/[^/]+/thanks(\?.*)?$"))


def _queue_text(page) -> str:
    return page.evaluate("() => { const e = document.getElementById('kiosk-queue'); "
                         "return e && !e.hidden ? e.textContent.trim() : ''; }")


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_ratings_made_offline_are_stored_once_when_the_network_returns(
        app, live_server, browser, place, screenshot_dir, lang):
    ctx = browser.new_context(viewport=TABLET, locale="vi-VN", service_workers="allow")
    try:
        page = ctx.new_page()
        form = f"{live_server}{place.kiosk_url}?lang={lang}"
        page.goto(form)
        # the worker controls the page and has kept what the kiosk needs offline
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30000)
        page.wait_for_function(
            "async () => { const urls = document.getElementById('kiosk-queue').dataset.pages.split(' '); "
            "for (const u of urls) if (!(await caches.match(u, {ignoreVary: true}))) return false; "
            "return true; }", timeout=30000)
        assert _queue_text(page) == ""

        ctx.set_offline(True)
        for i, answers in enumerate(PATTERNS, start=1):
            if i > 1:
                page.goto(form)      # the next citizen's form, from the tablet's copy
            _rate(page, answers)
            page.wait_for_function(
                f"() => document.getElementById('kiosk-queue').textContent.trim() === {_waiting(lang, i)!r}",
                timeout=30000)
        assert responses(app) == []  # nothing reached the server
        page.goto(form)
        page.wait_for_function(
            f"() => document.getElementById('kiosk-queue').textContent.trim() === {_waiting(lang, 3)!r}",
            timeout=30000)
        page.screenshot(path=str(screenshot_dir / f"kiosk-offline-waiting-{lang}.png"))
        keys = page.evaluate("() => document.querySelector('input[name=k]').value")
        assert re.fullmatch(r"[0-9a-f]{32}", keys)

        ctx.set_offline(False)       # the `online` event sends the outbox
        page.wait_for_function("() => document.getElementById('kiosk-queue').hidden", timeout=30000)
        rows = responses(app)
        assert len(rows) == len(PATTERNS)
        assert sorted(r.answer_map["overall"] for r in rows) == [3, 4, 5]
        assert {r.channel for r in rows} == {"kiosk"}
        assert len({r.idempotency_key for r in rows}) == len(PATTERNS)

        # sending again (a reload asks the worker to flush) adds nothing
        page.reload()
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        page.evaluate("() => navigator.serviceWorker.controller.postMessage({type: 'flush'})")
        page.wait_for_timeout(500)
        assert len(responses(app)) == len(PATTERNS)
        assert _queue_text(page) == ""
    finally:
        ctx.close()


def test_service_worker_served_at_the_kiosk_scope(client):
    r = client.get("/k/sw.js")
    assert r.status_code == 200
    assert r.mimetype == "text/javascript"
    assert r.headers["Service-Worker-Allowed"] == "/k/"
    assert r.headers["Cache-Control"] == "no-cache"
    assert b"indexedDB" in r.data


def test_outbox_only_on_the_kiosk(client, place):
    kiosk = client.get(place.kiosk_url).get_data(as_text=True)
    phone = client.get(place.url).get_data(as_text=True)
    assert 'id="kiosk-queue"' in kiosk and "kiosk.js" in kiosk and 'data-sw="/k/sw.js"' in kiosk
    assert "kiosk.js" not in phone and "kiosk-queue" not in phone
    thanks = client.get(place.kiosk_url + "/thanks").get_data(as_text=True)
    assert 'id="kiosk-queue"' in thanks
