"""The printed annual report (issue 14.3) from real Chromium (page.pdf, A4
landscape, print CSS): every page is numbered "Trang i / n" (CSS page margin
boxes), the first page carries the issuing body and the national motto, the
element rates with their intervals are printed, and a page holds at least 25
unit rows.  The PDF goes to the screenshot_dir for review."""
import io
import re

import pytest

from tests.factories import PASSWORD, seed_report_province

pypdf = pytest.importorskip("pypdf", reason="pypdf (requirements-dev.txt) reads the printed PDF")


def _shots(screenshot_dir):
    """test-artifacts/screenshots/: the pictures of issue 14 for review."""
    path = screenshot_dir / "screenshots"
    path.mkdir(exist_ok=True)
    return path


def pypdf_pages(pdf: bytes) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture
def site(app, live_server):
    return live_server, seed_report_province(app, communes=60, per_unit=3)


def test_printed_report_has_page_numbers_element_rates_and_25_rows_a_page(site, browser, screenshot_dir):
    base, data = site
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")
    page = ctx.new_page()
    page.goto(base + "/staff/login")
    page.fill("#username", data["user"])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/(\?.*)?$"))
    page.goto(f"{base}/staff/report/{data['year']}")
    access = page.inner_text("tr[data-unit='M-X01'] td[data-element='access']").split()[0]  # "66,7%"
    page.emulate_media(media="print")
    # the print DOM: no navigation, no integrity columns, the official header shown
    assert page.eval_on_selector("header.top", "e => getComputedStyle(e).display") == "none"
    assert page.eval_on_selector("#report-table th.integrity", "e => getComputedStyle(e).display") == "none"
    assert page.eval_on_selector("#report-header", "e => getComputedStyle(e).display") != "none"
    pdf = page.pdf(format="A4", landscape=True, print_background=True)
    (_shots(screenshot_dir) / "staff-report-print.pdf").write_bytes(pdf)
    page.evaluate("document.getElementById('fields').remove()")
    ranked_pdf = page.pdf(format="A4", landscape=True, print_background=True)
    ctx.close()

    pages = pypdf_pages(pdf)
    n = len(pages)
    assert n >= 2
    for i, text in enumerate(pages, start=1):
        assert f"Trang {i} / {n}" in text, (i, text[-300:])
    first = pages[0]
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in first and "Độc lập - Tự do - Hạnh phúc" in first
    assert "ỦY BAN NHÂN DÂN TỈNH MẪU IN" in first and "SỞ NỘI VỤ" in first
    # element rates: the five headers on the pages of the table, a unit's rate and its interval
    flat = re.sub(r"\s+", " ", first)
    for name in ("Tiếp cận dịch vụ", "Công chức", "Kết quả"):
        assert name in flat, name
    assert access in flat and re.search(r"\d+,\d–\d+,\d", flat)
    # rows a page of the ranked table: printed again without the table per field (which lists the units again)
    rows = [len(set(re.findall(r"M-X\d\d", text))) for text in pypdf_pages(ranked_pdf)]
    assert sum(rows) == 60, rows
    assert max(rows) >= 25, rows
    assert all(r >= 25 for r in rows[1:-1]), rows  # every full page in the middle
    assert "Hồ sơ và mức độ hài lòng theo lĩnh vực" in " ".join(pages)  # the table per field is printed too
