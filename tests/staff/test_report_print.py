"""The official annual report (issue 14.3) as the server writes it: the
issuing body's header and the national motto (configurable), element rates
with their intervals on the page and in the XLSX, integer ranks, the data
cut-off in local time, Vietnamese headers and values in the XLSX (no English
codes, no Python-style values), and the pooled "all units" row only when it
is not the province row again.  The printed PDF is tested in a real browser
(test_report_print_browser.py)."""
import io
import re

import openpyxl
import pytest

from analysis import METHOD_VERSION
from analysis.schema import ELEMENTS
from survey_app.services.reports import PARAMETER_LABELS
from tests.factories import PASSWORD, make_user, seed_ranking_province, seed_report_province
from tests.helpers import login

#: Element column headers of the XLSX (rate, interval low, interval high).
ELEMENT_HEADERS = {
    "access": "Tiếp cận dịch vụ", "procedure": "Thủ tục hành chính", "staff": "Công chức", "result": "Kết quả",
    "feedback": "Tiếp nhận, xử lý góp ý"}
#: Values that must never be written into the workbook: English codes and Python-style values.
NOT_WORDS = {"True", "False", "None", "nan", "NaN", "NaT", "_root", "low_n", "wide_ci", "unit", "commune",
             "province", "adequate", "inadequate", "met", "not_met", "inconclusive", "ranked", "sample_too_small",
             "above", "below", "not_different", "root"}


@pytest.fixture
def province(sapp):
    """Province M with six small communes (few responses: flagged `low_n`)."""
    data = seed_report_province(sapp, communes=6, per_unit=12)
    client = sapp.test_client()
    assert login(client, data["user"]).status_code == 302
    return client, data


def _workbook(client, url="/staff/report/2025.xlsx"):
    r = client.get(url)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return openpyxl.load_workbook(io.BytesIO(r.data))


def _table(ws):
    """(header row number, header, data rows as dicts of cells) of a report sheet."""
    hr = next(row[0].row for row in ws.iter_rows() if any(c.value == "Mã đơn vị" for c in row))
    header = [c.value for c in ws[hr]]
    rows = [dict(zip(header, row)) for row in ws.iter_rows(min_row=hr + 1)]
    return hr, header, rows


def test_xlsx_opens_with_the_official_header_and_a_local_time_cut_off(province):
    client, data = province
    ws = _workbook(client).worksheets[0]
    hr, header, rows = _table(ws)
    top = [c.value for row in ws.iter_rows(max_row=hr - 1) for c in row if c.value]
    assert "ỦY BAN NHÂN DÂN TỈNH MẪU IN" in top and "SỞ NỘI VỤ" in top
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in top and "Độc lập - Tự do - Hạnh phúc" in top
    assert any(str(v).startswith("Mẫu In, ngày ") for v in top)
    assert "Sự hài lòng của người dân đối với dịch vụ hành chính công, năm báo cáo 2025" in top
    period = next(v for v in top if str(v).startswith("Kỳ báo cáo"))
    # the last response: 1 March 2025 03:00 UTC + (5 * 11 + 6) hours = 3 March 16:00 UTC = 23:00 in Viet Nam
    assert "15/12/2024 – 14/12/2025" in period and "số liệu đến 03/03/2025 23:00 (giờ Việt Nam)" in period
    assert METHOD_VERSION in period and "+00:00" not in period
    assert {r["Mã đơn vị"].value for r in rows} == set(data["codes"])


def test_xlsx_has_each_element_rate_with_its_interval(province):
    client, _ = province
    hr, header, rows = _table(_workbook(client).worksheets[0])
    for e in ELEMENTS:
        name = ELEMENT_HEADERS[e]
        assert {name, f"{name}: cận dưới 95%", f"{name}: cận trên 95%"} <= set(header), e
        for r in rows:
            rate, low, high = r[name], r[f"{name}: cận dưới 95%"], r[f"{name}: cận trên 95%"]
            assert 0 <= low.value <= rate.value <= high.value <= 1, (e, r["Mã đơn vị"].value)
            assert rate.number_format == low.number_format == high.number_format == "0.0%"


def test_xlsx_writes_words_never_codes_or_python_values(province):
    client, _ = province
    wb = _workbook(client)
    strings = {c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    assert not strings & NOT_WORDS, strings & NOT_WORDS
    assert not [s for s in strings if re.fullmatch(r"\d{4}-\d{2}-\d{2}(T.*)?", s)]  # no ISO dates or timestamps
    assert not [s for s in strings if s.startswith(("{", "[", "("))]  # no JSON or Python reprs
    # the small samples' flag in words
    hr, header, rows = _table(wb.worksheets[0])
    assert all("ít phiếu" in (r["Cờ"].value or "") for r in rows), [r["Cờ"].value for r in rows]
    # the method sheet: parameter names and yes/no in Vietnamese
    method = {row[0]: row[1] for row in wb.worksheets[2].iter_rows(values_only=True) if row and row[0]}
    assert not set(method) & set(PARAMETER_LABELS), set(method) & set(PARAMETER_LABELS)
    assert method["Tính cả phiếu bị loại"] == "không" and method["Giới hạn cỡ mẫu hiệu dụng"]
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", method["Thời điểm chốt số liệu (phiếu cuối cùng)"])
    assert method["Ngày đầu (giờ Việt Nam)"] == "15/12/2024"


def test_the_province_is_not_repeated_as_all_units(province):
    client, _ = province
    html = client.get("/staff/report/2025").get_data(as_text=True)
    rollups = html[html.index('id="rollup-table"'):]
    assert 'data-unit="M"' in rollups and 'data-level="root"' not in rollups
    assert "Tất cả đơn vị" not in rollups
    _, _, rows = _table(_workbook(client).worksheets[1])
    assert [r["Mã đơn vị"].value for r in rows] == ["M"]


def test_all_units_row_stays_when_it_pools_two_provinces(sapp, world, as_role):
    html = as_role("admin").get(f"/staff/report/{world['year']}").get_data(as_text=True)
    rollups = html[html.index('id="rollup-table"'):]
    assert 'data-level="root"' in rollups and "Tất cả đơn vị" in rollups
    assert 'data-unit="P"' in rollups and 'data-unit="Q"' in rollups


def test_page_shows_element_rates_with_intervals_and_the_header(province):
    client, data = province
    html = client.get("/staff/report/2025").get_data(as_text=True)
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in html and "ỦY BAN NHÂN DÂN TỈNH MẪU IN" in html
    assert 'id="method-version"' in html and METHOD_VERSION in html
    row = re.search(r'<tr data-unit="M-X01".*?</tr>', html, re.S).group(0)
    cells = re.findall(r'<td class="num el" data-label="[^"]+" data-element="(\w+)">(.*?)</td>', row, re.S)
    assert [e for e, _ in cells] == list(ELEMENTS)
    for e, cell in cells:
        assert re.fullmatch(r"\d+,\d%\s*<span class=\"ci\">\d+,\d–\d+,\d</span>", cell.strip()), (e, cell)


def test_ranks_are_integers_on_the_page_and_in_the_xlsx(sapp):
    data = seed_ranking_province(sapp)
    client = sapp.test_client()
    assert login(client, data["user"]).status_code == 302
    html = client.get("/staff/report/2025").get_data(as_text=True)
    ranks = re.findall(r'<td class="num rank"[^>]*>([^<]*)</td>', html)
    assert ranks and all(re.fullmatch(r"\d+", r.strip()) for r in ranks), ranks
    hr, header, rows = _table(_workbook(client).worksheets[0])
    ranked = [r["Hạng"] for r in rows if r["Hạng"].value is not None]
    assert ranked and all(isinstance(c.value, int) and c.number_format == "0" for c in ranked)


def test_issuer_comes_from_the_configuration(make_loaded_app):
    app = make_loaded_app(WTF_CSRF_ENABLED=False, STAFF_LOGIN_RATE="1000 per minute",
                          REPORT_ISSUER="VĂN PHÒNG UBND TỈNH", REPORT_ISSUER_PARENT="UBND TỈNH MẪU IN",
                          REPORT_PLACE="Thành Mẫu")
    with app.app_context():
        from survey_app.extensions import db

        make_user("boss", role="admin", password=PASSWORD)
        db.session.commit()
    client = app.test_client()
    assert login(client, "boss").status_code == 302
    html = client.get("/staff/report/2025").get_data(as_text=True)
    header = html[html.index('id="report-header"'):html.index("</header>", html.index('id="report-header"'))]
    assert "VĂN PHÒNG UBND TỈNH" in header and "UBND TỈNH MẪU IN" in header and "Thành Mẫu, ngày " in header
    top = [c.value for row in _workbook(client).worksheets[0].iter_rows(max_row=3) for c in row if c.value]
    assert "VĂN PHÒNG UBND TỈNH" in top and "UBND TỈNH MẪU IN" in top


def test_a_biểu_06_table_per_field_on_the_page_and_in_the_xlsx(province):
    """Where dossier figures exist (here: the volumes per field), the report
    carries the Biểu 06-style table per field (services.bieu06 rows)."""
    client, data = province
    html = client.get("/staff/report/2025").get_data(as_text=True)
    table = html[html.index('id="fields-table"'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r'<tr data-unit="([^"]+)" data-field="([^"]*)">(.*?)</tr>', table, re.S)
    assert {code for code, _, _ in rows} == set(data["codes"])
    first = next(cells for code, _, cells in rows if code == "M-X01")
    assert "Chung (không phân lĩnh vực)" in first and ">210<" in first  # the unit's 210 dossiers
    wb = _workbook(client)
    assert wb.sheetnames[:3] == ["Đơn vị", "Tổng hợp", "Phương pháp"] and wb.sheetnames[3] == "Theo lĩnh vực"
    ws = wb["Theo lĩnh vực"]
    hr = next(row[0].row for row in ws.iter_rows() if any(c.value == "Lĩnh vực" for c in row))
    header = [c.value for c in ws[hr]]
    by_code = {r[0].value: dict(zip(header, r)) for r in ws.iter_rows(min_row=hr + 1)}
    assert set(by_code) == set(data["codes"])
    cell = by_code["M-X01"]
    assert cell["Số hồ sơ đã giải quyết: Tổng số"].value == 210
    assert cell["Lĩnh vực"].value == "Chung (không phân lĩnh vực)"
    assert 0 < cell["Chỉ số hài lòng"].value < 1 and cell["Chỉ số hài lòng"].number_format == "0.0%"
