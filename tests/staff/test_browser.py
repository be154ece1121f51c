"""Real-browser checks (headless Chromium via Playwright): sign in, overview,
sorting, the unit page, excluding a flagged response (asked, then approved by
another person), report downloads and
the printed report.  Screenshots of the main pages go to the screenshot_dir."""
import csv
import io
import re

import pytest
from openpyxl import load_workbook

from tests.factories import PASSWORD, seed_world


@pytest.fixture
def site(app, live_server, frozen_clock):
    world = seed_world(app)
    return live_server, world


def _login(page, base, username):
    page.goto(base + "/staff/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/(\?.*)?$"))


def test_staff_journey_in_browser(site, browser, screenshot_dir):
    base, world = site
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True, locale="vi-VN")
    page = ctx.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(base + "/staff/login")
    page.screenshot(path=str(screenshot_dir / "staff-login.png"))
    _login(page, base, world["users"]["analyst"])

    # overview, then sort by unit name both ways
    assert page.locator("#overview-table tbody tr").count() == 2
    page.screenshot(path=str(screenshot_dir / "staff-overview.png"), full_page=True)
    page.click("a.sort[data-sort=name]")
    page.wait_for_load_state()
    names = page.locator("#overview-table tbody th a").all_inner_texts()
    assert names == sorted(names)
    page.click("a.sort[data-sort=name]")
    page.wait_for_load_state()
    assert page.locator("#overview-table tbody th a").all_inner_texts() == sorted(names, reverse=True)

    # unit page: charts load as images, the plain-language sentence is there
    page.click("text=Xã An Phú")
    page.wait_for_url(re.compile(r".*/staff/units/P-A.*"))
    page.wait_for_load_state("networkidle")
    main = page.inner_text("main")
    assert "(bình quân 5 yếu tố) từ " in main and "khoảng tin cậy 95%: từ " in main
    widths = page.eval_on_selector_all("figure.chart img", "els => els.map(e => e.naturalWidth)")
    assert widths and all(w > 0 for w in widths), widths
    page.screenshot(path=str(screenshot_dir / "staff-unit.png"), full_page=True)
    before = float(page.get_attribute("#unit-index", "data-index"))

    # ask to exclude the flagged response: pending, the index does not move
    row = page.locator(f"tr[data-response='{world['flagged']}']")
    row.locator("input[name=reason]").fill("trùng lặp")
    row.locator("button.danger").click()
    page.wait_for_load_state()
    assert "chờ chuyên viên ngoài đơn vị duyệt" in page.inner_text("main")
    assert float(page.get_attribute("#unit-index", "data-index")) == before
    # the administrator approves it on the approval page (four eyes); then the index changes
    admin = browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN")
    apage = admin.new_page()
    _login(apage, base, world["users"]["admin"])
    apage.click("#menu-exclusions")
    apage.wait_for_load_state()
    apage.screenshot(path=str(screenshot_dir / "staff-exclusions.png"), full_page=True)
    apage.locator(f"tr[data-response='{world['flagged']}'] button[value=approve]").click()
    apage.wait_for_load_state()
    assert "Đã duyệt" in apage.inner_text("main")
    admin.close()
    page.reload()
    after = float(page.get_attribute("#unit-index", "data-index"))
    assert after != before

    # the responses CSV download
    with page.expect_download() as dl:
        page.click("#export-csv")
    text = open(dl.value.path(), encoding="utf-8-sig").read()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 130 and sum(r["excluded"] == "1" for r in rows) == 1

    # annual report: XLSX and CSV downloads, then print to PDF
    page.goto(f"{base}/staff/report/{world['year']}")
    page.screenshot(path=str(screenshot_dir / "staff-report.png"), full_page=True)
    with page.expect_download() as dl:
        page.click("#dl-xlsx")
    assert dl.value.suggested_filename.endswith(".xlsx")
    wb = load_workbook(io.BytesIO(open(dl.value.path(), "rb").read()))
    ws = wb.worksheets[0]
    hr = next(r for r in range(1, 12) if "Mã đơn vị" in [c.value for c in ws[r]])  # below the official header
    header = [c.value for c in ws[hr]]
    codes = {ws.cell(row=r, column=header.index("Mã đơn vị") + 1).value for r in range(hr + 1, ws.max_row + 1)}
    assert codes == {"P-A", "P-B"}
    assert wb.sheetnames[2] == "Phương pháp"
    with page.expect_download() as dl:
        page.click("#dl-csv")
    rows = list(csv.DictReader(io.StringIO(open(dl.value.path(), encoding="utf-8-sig").read())))
    assert {"P-A", "P-B", "P"} == {r["unit_code"] for r in rows}
    page.emulate_media(media="print")
    pdf = page.pdf(format="A4", landscape=True, print_background=True)
    (screenshot_dir / "staff-report.pdf").write_bytes(pdf)
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pdf[:4] == b"%PDF" and pages > 0
    page.emulate_media(media="screen")

    # English
    page.goto(base + "/staff/?lang=en")
    assert "Overview" in page.inner_text("h1")
    page.screenshot(path=str(screenshot_dir / "staff-overview-en.png"), full_page=True)

    # sign out: back to the sign-in page, and the overview needs signing in again
    page.click("header form button")
    page.wait_for_url(re.compile(r".*/staff/login.*"))
    page.goto(base + "/staff/")
    assert "/staff/login" in page.url
    assert not [e for e in errors if "Content Security Policy" in e], errors
    ctx.close()


def test_admin_pages_in_browser(site, browser, screenshot_dir):
    base, world = site
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    page = ctx.new_page()
    _login(page, base, world["users"]["admin"])
    page.goto(base + "/staff/admin/users")
    page.screenshot(path=str(screenshot_dir / "staff-admin-users.png"), full_page=True)
    page.goto(base + "/staff/data/import")
    page.set_input_files("#file", files=[{"name": "v.csv", "mimeType": "text/csv", "buffer":
                                          b"unit_code,period_start,period_end,stratum,transactions\n"
                                          b"NOPE,2026-01-01,2026-01-31,_all,x\n"}])
    page.click("button.primary")
    page.wait_for_load_state()
    assert page.locator("#import-errors tbody tr").count() >= 2
    page.screenshot(path=str(screenshot_dir / "staff-import-errors.png"), full_page=True)
    page.goto(base + "/staff/units/P-A/posters")
    page.screenshot(path=str(screenshot_dir / "staff-posters.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "/staff/units/P-A")
    page.screenshot(path=str(screenshot_dir / "staff-unit-phone.png"))
    ctx.close()
