"""Back + Send in a real browser (Debian's headless Chromium, issue 11 hole 9):
after the thank-you page, going back and pressing Send again never leaves a
second, unflagged copy of the same response."""
from __future__ import annotations

import re

import pytest

from tests.helpers import responses


@pytest.mark.parametrize("js", [False, True], ids=["no-js", "js"])
def test_back_and_send_again_is_not_a_fresh_response(app, live_server, browser, place, js):
    ctx = browser.new_context(viewport={"width": 360, "height": 640}, java_script_enabled=js, locale="vi-VN")
    try:
        page = ctx.new_page()
        page.goto(live_server + place.url)
        for name, value in (("overall", "5"), ("access", "4"), ("staff", "5")):
            page.click(f'label:has(> input[name="{name}"][value="{value}"])')  # the visible choice
        page.click("button.btn[type=submit]")
        page.wait_for_url(re.compile(r".*/thanks(\?.*)?$"))
        page.go_back()
        page.wait_for_selector('input[name="overall"]')
        if not page.is_checked('input[name="overall"][value="5"]'):  # not restored: the citizen ticks again
            for name, value in (("overall", "5"), ("access", "4"), ("staff", "5")):
                page.click(f'label:has(> input[name="{name}"][value="{value}"])')
        page.click("button.btn[type=submit]")
        page.wait_for_url(re.compile(r".*/thanks(\?.*)?$"))
    finally:
        ctx.close()
    rows = responses(app)
    assert 1 <= len(rows) <= 2
    assert rows[0].flags == ""
    if len(rows) == 2:  # a fresh form (the page is no-store): recognised as the same response
        assert "duplicate" in rows[1].flags.split(";")
