"""The annual report ranks only units with an adequate sample (METHODOLOGY 6,
issue 10): the page, its XLSX and its CSV list the ranked units first with
rank and rank interval, then the others as "not ranked: sample too small"
without a rank number; every output names the method version and the rule."""
import csv
import html as htmlmod
import io
import re

import openpyxl
import pytest

from analysis import METHOD_VERSION
from analysis.ranking import rank_status_label, ranking_note
from tests.factories import RANKING_UNITS, seed_ranking_province
from tests.helpers import login

NOT_RANKED_VI = rank_status_label("sample_too_small", "vi")
NOT_RANKED_EN = rank_status_label("sample_too_small", "en")
_ROW = re.compile(r'<tr data-unit="([^"]+)" data-rank-status="([^"]*)">(.*?)</tr>', re.S)
_RANK_CELL = re.compile(r'<td class="num rank"[^>]*>([^<]*)</td>')


@pytest.fixture
def seeded(sapp):
    data = seed_ranking_province(sapp)
    client = sapp.test_client()
    assert login(client, data["user"]).status_code == 302
    return client, data


def page_rows(page: str) -> list[tuple[str, str, str]]:
    """(unit code, rank status, row html) of the report table, in page order."""
    return _ROW.findall(page)


def get_text(client, url: str) -> str:
    r = client.get(url)
    assert r.status_code == 200, r.get_data(as_text=True)[:400]
    return r.get_data(as_text=True)


def test_page_ranks_adequate_units_first_and_never_gives_a_small_sample_a_rank(seeded):
    client, data = seeded
    page = get_text(client, "/staff/report/2025")
    rows = page_rows(page)
    assert {code for code, _, _ in rows} == set(RANKING_UNITS)
    status = {code: st for code, st, _ in rows}
    assert {c for c, s in status.items() if s == "ranked"} == set(data["adequate"])
    for code, st, cells in rows:
        if code in data["inadequate"]:
            assert st == "sample_too_small"
            assert not _RANK_CELL.search(cells), cells  # no rank number, no rank interval
            assert "rank-interval" not in cells and NOT_RANKED_VI in cells
        else:
            assert re.fullmatch(r"\d+", _RANK_CELL.search(cells).group(1).strip())
            assert re.search(r'class="num rank-interval"[^>]*>\d+–\d+ / \d+<', cells)
    # communes: the ranked ones by rank, then the others (by code, implying no order)
    communes = [code for code, _, _ in rows if RANKING_UNITS[code][0] == "commune"]
    ranked = [c for c in communes if status[c] == "ranked"]
    assert communes == ranked + sorted(c for c in communes if status[c] != "ranked")
    ranks = [int(_RANK_CELL.search(cells).group(1)) for c, _, cells in rows if c in ranked]
    assert ranks == sorted(ranks) == list(range(1, len(ranked) + 1))
    # higher satisfaction ranks better among the adequate communes (95% > 80% > 60%)
    assert ranked == sorted(ranked, key=lambda c: -RANKING_UNITS[c][3])
    # the method version and the ranking rule are on the page
    text = htmlmod.unescape(page)
    assert METHOD_VERSION in text and ranking_note("adequate", "vi") in text


def test_page_in_english_says_not_ranked_sample_too_small(seeded):
    client, data = seeded
    text = htmlmod.unescape(get_text(client, "/staff/report/2025?lang=en"))
    assert NOT_RANKED_EN in text and ranking_note("adequate", "en") in text and METHOD_VERSION in text
    assert NOT_RANKED_VI not in text


def test_rank_among_all_ranks_every_unit_and_says_so(seeded):
    client, data = seeded
    page = get_text(client, "/staff/report/2025?rank_among=all")
    rows = page_rows(page)
    assert {st for _, st, _ in rows} == {"ranked"} and len(rows) == len(RANKING_UNITS)
    assert ranking_note("all", "vi") in htmlmod.unescape(page)
    text = get_text(client, "/staff/report/2025.csv?rank_among=all").lstrip("\ufeff")
    table = list(csv.DictReader(io.StringIO(text)))
    units = [r for r in table if r["unit_code"] in RANKING_UNITS]
    assert all(r["rank"] and r["rank_status"] == "ranked" for r in units) and len(units) == len(RANKING_UNITS)
    assert {r["rank_among"] for r in table} == {"all"}
    # an unknown value is the default rule, not an error
    rows = page_rows(get_text(client, "/staff/report/2025?rank_among=%3Cb%3E"))
    assert {c for c, st, _ in rows if st == "ranked"} == set(data["adequate"])


def test_csv_has_no_rank_for_small_samples_and_names_method_and_rule(seeded):
    client, data = seeded
    r = client.get("/staff/report/2025.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    units = [row for row in table if row["level"] == "unit"]
    assert {row["unit_code"] for row in units} == set(RANKING_UNITS)
    # the data are what the fixture says: adequacy decides who is ranked
    assert {row["unit_code"] for row in units if row["adequacy"] == "adequate"} == set(data["adequate"])
    for row in units:
        if row["unit_code"] in data["inadequate"]:
            assert row["rank"] == row["rank_low"] == row["rank_high"] == ""
            assert row["rank_status"] == "sample_too_small" and row["rank_note"] == NOT_RANKED_VI
        else:
            assert float(row["rank"]) >= 1 and int(row["rank_low"]) <= float(row["rank"]) <= int(row["rank_high"])
            assert row["rank_status"] == "ranked"
    order = [row["unit_code"] for row in units]
    first_unranked = min(order.index(c) for c in data["inadequate"] if RANKING_UNITS[c][0] == "commune")
    assert all(order.index(c) < first_unranked for c in data["adequate"] if RANKING_UNITS[c][0] == "commune")
    assert {row["method"] for row in table} == {METHOD_VERSION}
    assert {row["rank_among"] for row in table} == {"adequate"}
    assert {row["ranking_rule"] for row in table} == {ranking_note("adequate", "vi")}
    en = list(csv.DictReader(io.StringIO(get_text(client, "/staff/report/2025.csv?lang=en").lstrip("\ufeff"))))
    assert {row["ranking_rule"] for row in en} == {ranking_note("adequate", "en")}
    assert {row["rank_note"] for row in en if row["unit_code"] in data["inadequate"]} == {NOT_RANKED_EN}


def _workbook(client, url):
    r = client.get(url)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return openpyxl.load_workbook(io.BytesIO(r.data))


def _sheet_rows(ws):
    """(header, data rows as dicts) of a report sheet: the header is the row holding 'Unit code'."""
    rows = list(ws.iter_rows(values_only=True))
    h = next(i for i, row in enumerate(rows) if "Unit code" in row)
    return rows[h], [dict(zip(rows[h], row)) for row in rows[h + 1:]]


def test_xlsx_has_no_rank_for_small_samples_and_a_method_sheet_with_version_and_rule(seeded):
    client, data = seeded
    wb = _workbook(client, "/staff/report/2025.xlsx?lang=en")
    header, rows = _sheet_rows(wb.worksheets[0])
    assert "Rank" in header and "Rank status" in header
    by_code = {r["Unit code"]: r for r in rows}
    assert set(by_code) == set(RANKING_UNITS)
    for code in data["inadequate"]:
        r = by_code[code]
        assert r["Rank"] is None and r["Rank interval: best"] is None and r["Rank interval: worst"] is None
        assert r["Rank status"] == NOT_RANKED_EN
    for code in data["adequate"]:
        r = by_code[code]
        assert isinstance(r["Rank"], (int, float))
        assert r["Rank interval: best"] <= r["Rank"] <= r["Rank interval: worst"]
    order = [r["Unit code"] for r in rows]
    assert max(order.index(c) for c in ("R-A1", "R-A2", "R-A3")) < min(order.index(c) for c in ("R-ONE", "R-S"))
    method = {row[0]: row[1] for row in wb.worksheets[2].iter_rows(values_only=True) if row and row[0]}
    assert method["Method"] == METHOD_VERSION
    assert method["Ranking rule"] == ranking_note("adequate", "en")
    assert "n_kish" in method["Effective sample size cap"]
    assert METHOD_VERSION in wb.worksheets[0]["A5"].value  # the period line below the official header
    # in Vietnamese (the default; ?lang=en above is remembered in a cookie)
    vi = _workbook(client, "/staff/report/2025.xlsx?lang=vi")
    values = {v for ws in vi.worksheets for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str)}
    assert NOT_RANKED_VI in values and ranking_note("adequate", "vi") in values and METHOD_VERSION in values


def test_overview_and_unit_page_name_the_method_version(seeded):
    client, data = seeded
    for url in ("/staff/?period=2025", "/staff/units/R-A1?period=2025"):
        assert METHOD_VERSION in get_text(client, url), url


def test_demo_annual_report_ranks_no_unit_with_an_inadequate_sample(sapp):
    """The demo's 2026 report (issue 10: a one-response commune at 100% used to be ranked #1, interval 1–1)."""
    res = sapp.test_cli_runner().invoke(args=["demo", "seed", "--responses", "6000", "--seed", "2025",
                                              "--password", "demo-pass-123"])
    assert res.exit_code == 0, res.output
    client = sapp.test_client()
    assert login(client, "admin", "demo-pass-123").status_code == 302
    table = list(csv.DictReader(io.StringIO(get_text(client, "/staff/report/2026.csv?lang=vi").lstrip("\ufeff"))))
    units = [r for r in table if r["level"] == "unit"]
    adequate = {r["unit_code"] for r in units if r["adequacy"] == "adequate"}
    assert adequate and len(adequate) < len(units)  # the demo has both kinds of sample
    for r in units:
        assert (r["rank"] != "") == (r["unit_code"] in adequate), r
        assert (r["rank_status"] == "ranked") == (r["unit_code"] in adequate), r
    rows = page_rows(get_text(client, "/staff/report/2026"))
    assert {c for c, st, _ in rows if st == "ranked"} == adequate
    assert all(not _RANK_CELL.search(cells) for c, st, cells in rows if c not in adequate)
    wb = _workbook(client, "/staff/report/2026.xlsx?lang=en")
    _, xrows = _sheet_rows(wb.worksheets[0])
    assert {r["Unit code"] for r in xrows if r["Rank"] is not None} == adequate
    assert {r["Rank status"] for r in xrows if r["Unit code"] not in adequate} <= {
        NOT_RANKED_EN, rank_status_label("no_estimate", "en")}
