"""Real browser (Debian's headless Chromium) at 360x640: the form filled and
sent with JavaScript disabled and enabled, the kiosk reset, layout checks.
Screenshots go to test-artifacts/ (the `screenshot_dir` fixture)."""
from __future__ import annotations

import re

import pytest

from tests.helpers import responses

PHONE = {"width": 360, "height": 640}


@pytest.fixture
def page_factory(browser):
    contexts = []

    def make(js: bool, viewport=PHONE):
        ctx = browser.new_context(viewport=viewport, java_script_enabled=js, is_mobile=True, has_touch=True,
                                  locale="vi-VN")
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for c in contexts:
        c.close()


def _fill(page):
    page.check('input[name="overall"][value="5"]')
    page.check('input[name="access"][value="4"]')
    page.check('input[name="procedure"][value="4"]')
    page.check('input[name="staff"][value="5"]')
    page.check('input[name="result"][value="na"]')
    page.check('input[name="feedback"][value="3"]')
    page.check('input[name="stratum"][value="dat_dai"]')
    page.check('input[name="age_group"][value="60_plus"]')
    page.fill("#f-comment", "Cán bộ hướng dẫn tận tình, gọi 0987654321 nếu cần.")


@pytest.mark.parametrize("js", [False, True], ids=["no-js", "js"])
def test_fill_and_send_on_a_phone(app, live_server, page_factory, place, screenshot_dir, js):
    page = page_factory(js)
    page.goto(live_server + place.url)
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("h1").inner_text().startswith("Đánh giá nhanh sự hài lòng")
    # the inline stylesheet is allowed by the page's CSP (no external assets)
    assert page.evaluate("getComputedStyle(document.querySelector('.bar')).backgroundColor") == "rgb(11, 79, 138)"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # touch targets: every answer row and the button at least 44 px high
    heights = page.evaluate(
        "[...document.querySelectorAll('.opts label, .btn')].map(e => e.getBoundingClientRect().height)")
    assert heights and min(heights) >= 44
    _fill(page)
    if js:
        assert re.search(r"Còn 95\d ký tự", page.locator("#comment-count").inner_text())
    page.screenshot(path=str(screenshot_dir / f"public-form-{'js' if js else 'nojs'}.png"), full_page=True)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/thanks$"))
    assert "Cảm ơn Ông/Bà đã đánh giá!" in page.inner_text("h1")
    page.screenshot(path=str(screenshot_dir / f"public-thanks-{'js' if js else 'nojs'}.png"))
    rows = responses(app)
    assert len(rows) == 1
    row = rows[0]
    assert row.channel == "qr" and row.stratum == "dat_dai" and row.age_group == "60_plus"
    assert row.answer_map == {"overall": 5, "access": 4, "procedure": 4, "staff": 5, "feedback": 3}
    assert "0987654321" not in row.comment and "[số điện thoại]" in row.comment


def test_errors_english_and_narrow_screen(app, live_server, page_factory, place, screenshot_dir):
    page = page_factory(False, viewport={"width": 320, "height": 640})
    page.goto(live_server + place.url)
    page.click("text=English")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Overall, how satisfied" in page.inner_text("main")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.click("button[type=submit]")  # nothing chosen
    assert "Please choose at least one rating" in page.inner_text(".errs")
    page.screenshot(path=str(screenshot_dir / "public-errors-en-320.png"))
    # keyboard: focus is visible (outline) on an answer
    page.keyboard.press("Tab")
    page.focus('input[name="overall"][value="1"]')
    outline = page.evaluate("getComputedStyle(document.querySelector('.opts label')).outlineStyle")
    assert outline == "solid"
    assert responses(app) == []


def test_kiosk_resets_to_an_empty_form(app, live_server, page_factory, place, screenshot_dir):
    app.config["KIOSK_RESET_SECONDS"] = 1
    page = page_factory(False, viewport={"width": 800, "height": 1280})
    page.goto(live_server + place.kiosk_url)
    page.check('input[name="overall"][value="2"]')
    page.check('input[name="staff"][value="1"]')
    page.fill("#f-comment", "Người trước viết góp ý này")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/thanks$"))
    page.screenshot(path=str(screenshot_dir / "public-kiosk-thanks.png"))
    page.wait_for_url(re.compile(r".*/k/[^/]+\?lang=vi$"), timeout=10_000)
    page.wait_for_selector("form.survey")
    assert page.locator("input:checked").count() == 0
    assert page.input_value("#f-comment") == ""
    for _ in range(2):  # going back never shows the previous person's answers
        page.go_back()
        page.wait_for_load_state()
        if page.locator("form.survey").count():
            assert page.locator("input:checked").count() == 0
            assert page.input_value("#f-comment") == ""
    rows = responses(app)
    assert [r.channel for r in rows] == ["kiosk"] and rows[0].answer_map == {"overall": 2, "staff": 1}


def test_staff_keyboard_entry(app, live_server, browser, place, screenshot_dir):
    """Digits typed one after another fill consecutive fields; Enter saves; the next sheet is empty."""
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import Unit
    from tests.factories import make_user

    with app.app_context():
        user = make_user(role="counter_staff", unit=db.session.scalar(select(Unit).where(Unit.code == "XA-TP")))
        db.session.commit()
        cookie = app.session_interface.get_signing_serializer(app).dumps(
            {"_user_id": f"{user.id}:{user.session_version}", "_fresh": True,
             "login_at": int(__import__("time").time()), "seen_at": int(__import__("time").time())})
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    try:
        ctx.add_cookies([{"name": app.config.get("SESSION_COOKIE_NAME", "session"), "value": cookie,
                          "url": live_server}])
        page = ctx.new_page()
        page.goto(f"{live_server}/staff/entry/form?counter={place.counter_code}&instrument=counter-quick"
                  f"&channel=paper&batch=L%C3%B4%203")
        page.wait_for_selector("form.sheet")
        page.focus("#f-overall")
        page.keyboard.type("45342")  # overall, access, procedure, staff, result
        assert page.evaluate("document.activeElement.id") == "f-feedback"
        page.keyboard.type("1")
        page.screenshot(path=str(screenshot_dir / "entry-sheet.png"), full_page=True)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*saved=1.*"))
        assert "Đã lưu" in page.inner_text("main")
        assert page.input_value("#f-overall") == ""
    finally:
        ctx.close()
    rows = responses(app)
    assert len(rows) == 1 and rows[0].channel == "paper"
    assert (rows[0].paper_batch, rows[0].entered_by_user_id) == ("Lô 3", user.id)
    assert rows[0].answer_map == {"overall": 4, "access": 5, "procedure": 3, "staff": 4, "result": 2, "feedback": 1}
