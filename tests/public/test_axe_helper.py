"""The accessibility helper itself: axe-core finds a known violation, with and
without JavaScript in the page (so a clean result elsewhere means something)."""
from __future__ import annotations

import pytest

BAD = ("<!doctype html><html lang='en'><head><title>t</title></head><body><main><h1>t</h1>"
       "<img src='/x.png'><p style='color:#bbb;background:#fff'>faint text</p></main></body></html>")
GOOD = BAD.replace("<img src='/x.png'>", "<img src='/x.png' alt='a dot'>").replace("#bbb", "#333")


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_axe_finds_violations_and_passes_a_clean_page(browser, axe_violations, js):
    ctx = browser.new_context(viewport={"width": 360, "height": 640}, java_script_enabled=js)
    try:
        page = ctx.new_page()
        pages = {"http://axe.test/bad": BAD, "http://axe.test/good": GOOD}
        page.route(lambda url: url in pages, lambda r: r.fulfill(
            body=pages[r.request.url], content_type="text/html",
            headers={"Content-Security-Policy": "script-src 'self'"}))
        page.route("http://axe.test/x.png", lambda r: r.fulfill(status=404))
        page.goto("http://axe.test/bad")
        assert {v["id"] for v in axe_violations(page)} == {"image-alt", "color-contrast"}
        page.goto("http://axe.test/good")
        assert axe_violations(page) == []
    finally:
        ctx.close()
