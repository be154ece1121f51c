"""Phones first for staff (issue 14.2), in real Chromium: at 390×844 and at
1366×768 the overview, a province's and a commune's unit page and the annual
report never scroll sideways; on the phone the wide tables are cards whose
first line is the unit and its index, and the charts are served in their
phone layout with labels of at least 11 CSS px.  Screenshots of every page at
both sizes go to the screenshot_dir for review."""
import re

import pytest

from tests.factories import PASSWORD, seed_world

PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1366, "height": 768}


def _shots(screenshot_dir):
    """test-artifacts/screenshots/: the pictures of issue 14 for review."""
    path = screenshot_dir / "screenshots"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def site(app, live_server, frozen_clock):
    return live_server, seed_world(app)


def _signed_in(browser, base, username, viewport):
    ctx = browser.new_context(viewport=viewport, locale="vi-VN")
    page = ctx.new_page()
    page.goto(base + "/staff/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/(\?.*)?$"))
    return ctx, page


def _pages(world):
    return {"overview": "/staff/", "province": "/staff/units/P", "commune": "/staff/units/P-A",
            "report": f"/staff/report/{world['year']}"}


def _overflow(page):
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def _chart_fonts(page):
    """(currentSrc, smallest text size in CSS px as displayed) of every chart on the page."""
    out = []
    for img in page.query_selector_all("figure.chart img"):
        src, shown = img.evaluate("e => [e.currentSrc, e.getBoundingClientRect().width]")
        svg = page.request.get(src).text()
        box = float(re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1))
        sizes = [float(s) for s in re.findall(r"font[^;\"]*?([\d.]+)px", svg)]
        assert sizes, (src, svg[:400])
        out.append((src, min(sizes) * shown / box))
    return out


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1366"])
def test_no_page_scrolls_sideways(site, browser, screenshot_dir, viewport):
    base, world = site
    ctx, page = _signed_in(browser, base, world["users"]["admin"], viewport)
    for name, path in _pages(world).items():
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        width, inner = _overflow(page)
        page.screenshot(path=str(_shots(screenshot_dir) / f"staff-{name}-{viewport['width']}.png"), full_page=True)
        assert width <= inner, (name, width, inner)
    ctx.close()


def test_phone_tables_are_cards_with_the_unit_and_index_first(site, browser):
    base, world = site
    ctx, page = _signed_in(browser, base, world["users"]["analyst"], PHONE)
    for path, table in (("/staff/", "#overview-table"), (f"/staff/report/{world['year']}", "#report-table")):
        page.goto(base + path)
        assert page.eval_on_selector(f"{table} thead", "e => getComputedStyle(e).display") == "none"
        row = page.locator(f"{table} tbody tr").first
        name, idx = row.locator("th").bounding_box(), row.locator("td.idx").bounding_box()
        assert name["x"] >= 0 and name["x"] + name["width"] <= PHONE["width"], name
        assert idx["x"] >= 0 and idx["x"] + idx["width"] <= PHONE["width"], idx
        # the index comes right after the unit's name (the rank before it in the report)
        tops = row.evaluate("r => [...r.children].filter(c => getComputedStyle(c).display !== 'none')"
                            ".map(c => [c.className, c.getBoundingClientRect().top])")
        first = sorted(tops, key=lambda t: t[1])
        assert "key" in first[0][0] and any("idx" in c for c, _ in first[:4]), first
        assert row.locator("td.idx").evaluate("e => getComputedStyle(e, '::before').content") != "none"
    ctx.close()
    # at 1366 the overview is a table again, its unit column sticky
    ctx, page = _signed_in(browser, base, world["users"]["analyst"], DESKTOP)
    assert page.eval_on_selector("#overview-table thead", "e => getComputedStyle(e).display") != "none"
    assert page.eval_on_selector("#overview-table tbody th", "e => getComputedStyle(e).position") == "sticky"
    ctx.close()


def test_charts_scale_with_readable_labels(site, browser, screenshot_dir):
    base, world = site
    for viewport, least in ((PHONE, 11.0), (DESKTOP, 10.0)):
        ctx, page = _signed_in(browser, base, world["users"]["admin"], viewport)
        page.goto(base + "/staff/units/P-A")
        page.wait_for_load_state("networkidle")
        fonts = _chart_fonts(page)
        assert len(fonts) >= 3, fonts
        for src, px in fonts:
            assert ("size=phone" in src) == (viewport is PHONE), src
            assert px >= least, (viewport["width"], src, round(px, 2))
        ctx.close()
