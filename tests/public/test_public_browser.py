"""Real browser (Debian's headless Chromium): the staff keyboard entry sheet.
The citizen pages' browser tests are in test_rating_browser.py.
Screenshots go to test-artifacts/ (the `screenshot_dir` fixture)."""
from __future__ import annotations

import re

from tests.helpers import responses


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
