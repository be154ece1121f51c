"""Workflow gaps of issue 14: leaders and clerks reach paper entry from the menu and the unit page; the
entry pages carry the staff menu and sign-out; the flagged-responses table shows the answers and the
counter; the comments list shows each comment's overall rating."""
import re

import pytest

from analysis.schema import ELEMENTS, OVERALL
from tests.factories import PASSWORD


@pytest.mark.parametrize("role", ["unit_leader", "counter_staff"])
def test_leaders_and_clerks_have_a_link_to_paper_entry(sapp, world, as_role, role):
    c = as_role(role)
    home = c.get("/staff/").get_data(as_text=True)
    assert re.search(r'<a href="/staff/entry/" id="menu-entry"', home)
    unit = c.get("/staff/units/P-A").get_data(as_text=True)
    assert 'href="/staff/entry/?unit=P-A" id="unit-entry"' in unit
    start = c.get("/staff/entry/?unit=P-A").get_data(as_text=True)
    assert re.search(r'<option value="P-A-Q1" selected>', start)  # the unit's first counter chosen
    assert 'id="menu-entry" aria-current="page"' in start


@pytest.mark.parametrize("path", ["/staff/entry/", "/staff/entry/form?counter=P-A-Q1&instrument=counter-quick"
                                                   "&channel=paper&batch=L1"])
def test_entry_pages_have_the_staff_menu_and_sign_out(sapp, world, as_role, path):
    r = as_role("counter_staff").get(path)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'class="mainnav"' in html and 'action="/staff/logout"' in html and "Đăng xuất" in html
    assert "entry.css" in html and 'class="entry-page"' in html
    assert "quét lại mã QR" not in html


def test_entry_sheet_still_saves_inside_the_staff_layout(sapp, world, as_role):
    from survey_app.extensions import db
    from survey_app.models import Response

    c = as_role("counter_staff")
    url = "/staff/entry/form?counter=P-A-Q1&instrument=counter-quick&channel=paper&batch=L9"
    html = c.get(url).get_data(as_text=True)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    day = re.search(r'name="date" value="([^"]+)"', html).group(1)
    data = {**{k: v for k, v in hidden.items() if k != "csrf_token"}, "date": day, "batch": "L9",
            "overall": "4", "staff": "5"}
    r = c.post("/staff/entry/form", data=data)
    assert r.status_code == 303, r.get_data(as_text=True)[:400]
    with sapp.app_context():
        assert db.session.query(Response).filter_by(paper_batch="L9").count() == 1


def test_flagged_table_shows_answers_and_counter(sapp, world, as_role):
    import uuid

    from survey_app.extensions import db
    from survey_app.models import Answer, Response

    rid = world["flagged"]
    with sapp.app_context():
        resp = db.session.get(Response, uuid.UUID(rid))
        code = resp.counter.code
        ans = {a.item_key: a.value for a in db.session.query(Answer).filter_by(response_id=resp.id)}
    html = as_role("unit_leader").get("/staff/units/P-A").get_data(as_text=True)
    row = re.search(r'<tr class="[^"]*" data-response="' + rid + r'".*?</tr>', html, re.S).group(0)
    assert f'<td class="code">{code}</td>' in row
    want = ",".join(str(ans.get(k, "")) for k in ELEMENTS + (OVERALL,))
    assert f'data-answers="{want}"' in row
    assert f"Tiếp cận dịch vụ: </span>{ans['access']}" in row


def test_comments_show_their_overall_rating(sapp, world, as_role):
    import uuid

    from survey_app.extensions import db
    from survey_app.models import Answer

    html = as_role("unit_leader").get("/staff/units/P-A").get_data(as_text=True)
    items = re.findall(r'<li data-response="([0-9a-f-]+)"><p>(.*?)</p>', html, re.S)
    assert items
    words = {1: "1 Rất không hài lòng", 2: "2 Không hài lòng", 3: "3 Bình thường", 4: "4 Hài lòng",
             5: "5 Rất hài lòng"}
    with sapp.app_context():
        for rid, body in items:
            overall = db.session.query(Answer.value).filter_by(response_id=uuid.UUID(rid), item_key="overall").scalar()
            assert f'data-overall="{overall}"' in body, body
            assert words[overall] in body, body
    metas = re.findall(r'<li data-response="[0-9a-f-]+"><p>.*?</p><p class="muted small">(.*?)</p>', html, re.S)
    assert metas and all(m.rstrip().endswith("· mã QR") for m in metas), metas[:3]  # the channel in words


def test_entry_page_menu_in_a_browser(app, live_server, frozen_clock, browser, screenshot_dir):
    from tests.factories import seed_world

    world = seed_world(app)
    page = browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN").new_page()
    page.goto(live_server + "/staff/login")
    page.fill("#username", world["users"]["counter_staff"])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/(\?.*)?$"))
    page.click("#menu-entry")
    page.wait_for_url(re.compile(r".*/staff/entry/$"))
    assert page.locator("nav.mainnav a").count() >= 2
    assert page.locator("header button:has-text('Đăng xuất')").is_visible()
    page.fill("#f-batch", "LÔ-7")
    page.click("button.btn")
    page.wait_for_url(re.compile(r".*/staff/entry/form.*"))
    assert page.locator("nav.mainnav #menu-entry[aria-current=page]").count() == 1
    assert page.locator("#f-overall").is_visible()
    page.screenshot(path=str(screenshot_dir / "staff-entry-sheet.png"), full_page=True)
    page.click("header button:has-text('Đăng xuất')")
    page.wait_for_url(re.compile(r".*/staff/login.*"))
    page.context.close()
