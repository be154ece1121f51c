"""The public results page in Chromium: 0 axe-core violations (WCAG 2.1 A/AA),
and at 320 px with JavaScript off it fits the screen and sorts by links."""
from __future__ import annotations

import pytest

from tests.factories import seed_publishing
from tests.helpers import axe_report
from tests.public.test_results_pages import publish_units


@pytest.fixture
def published(app):
    seed_publishing(app)
    publish_units(app, ["P-A", "P-B", "P-C"])
    return app


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_public_page_without_javascript_at_320px_and_axe_clean(published, live_server, browser, axe_violations,
                                                                 lang, screenshot_dir):
    ctx = browser.new_context(viewport={"width": 320, "height": 640}, java_script_enabled=False, locale=lang)
    try:
        page = ctx.new_page()
        page.goto(f"{live_server}/public/P/2025?lang={lang}")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 320  # no sideways page scroll
        assert page.locator("table.results tbody tr").count() == 3
        small = page.locator("table.results tbody tr", has_text="P-C")
        assert ("chưa đủ mẫu" if lang == "vi" else "not enough responses yet") in small.inner_text()
        violations = axe_violations(page)
        assert violations == [], axe_report(violations)
        page.screenshot(path=str(screenshot_dir / f"public-results-320-{lang}.png"), full_page=True)

        # Sorting is a plain link: it works with JavaScript off.
        page.locator("table.results thead a").nth(1).click()
        page.wait_for_load_state()
        assert "sort=index" in page.url
        cells = [c.strip() for c in page.locator("table.results tbody td.num strong").all_inner_texts()]
        values = [float(c.rstrip("%").replace(",", ".")) for c in cells]
        assert len(values) == 2 and values == sorted(values, reverse=True)
        assert page.locator("th[aria-sort=descending]").count() == 1

        page.goto(f"{live_server}/public/?lang={lang}")
        violations = axe_violations(page)
        assert violations == [], axe_report(violations)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 320
    finally:
        ctx.close()
