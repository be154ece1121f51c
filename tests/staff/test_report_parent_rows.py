"""The annual report when a parent unit also served people itself (a district
one-stop before 2025-07-01): its own `unit` row and its roll-up row share a
code, and both are shown with the figures `services.stats` computes."""
import datetime as dt
import re

from survey_app.extensions import db
from tests.factories import (
    PASSWORD,
    make_counter,
    make_response,
    make_unit,
    make_user,
    make_volume,
)
from tests.helpers import login

UTC = dt.timezone.utc


def _cells(html: str, table_id: str | None, code: str) -> list[list[str]]:
    """The text of the cells of every row of the report that shows `code`."""
    if table_id:
        html = html[html.index(f'id="{table_id}"'):]
        html = html[:html.index("</table>")]
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S):
        if f'<span class="code">{code}</span>' in tr:
            rows.append([re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr,
                                                                                flags=re.S)])
    return rows


def _figures(cells: list[str]) -> list[str]:
    """The leading figure of each cell ("50,0%" of "50,0% 34,9% – 65,1%": the index, then its interval)."""
    return [c.split()[0] for c in cells if c.split()]


def test_report_with_a_parent_that_has_its_own_responses(sapp):
    with sapp.app_context():
        prov = make_unit("P", kind="province")
        dist = make_unit("H", kind="district", parent=prov)
        com = make_unit("H-X", kind="commune", parent=dist)
        for u, satisfied in ((dist, 2), (com, 3)):  # different answers: different figures
            c = make_counter(u)
            make_volume(u, 500)
            for i in range(40):
                make_response(u, {"overall": 4 + i % 2, "staff": 3 + (i % satisfied > 0)}, counter=c,
                              submitted_at=dt.datetime(2025, 3, 1, 3, tzinfo=UTC) + dt.timedelta(hours=i))
        make_user("boss", role="admin", password=PASSWORD)
        db.session.commit()
    c = sapp.test_client()
    assert login(c, "boss").status_code == 302
    r = c.get("/staff/report/2025")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    html = r.get_data(as_text=True)

    from survey_app.services import stats
    from survey_app.services.periods import resolve_period
    from survey_app.ui.format import pct

    with sapp.test_request_context("/"):
        table = stats.compute_index(resolve_period("2025")).table
        want = {(row.unit_code, row.level): pct(row.index) for row in table.itertuples()}
    assert want[("H", "unit")] != want[("H", "district")]  # the two rows of H differ

    # H is ranked as a unit with its own responses, and listed again as the district roll-up
    ranked = _cells(html, "report-table", "H")
    assert len(ranked) == 1 and want[("H", "unit")] in _figures(ranked[0])
    assert len(_cells(html, "report-table", "H-X")) == 1
    rollup = _cells(html, "rollup-table", "H")  # (the table per field below lists H's field too)
    assert len(rollup) == 1 and want[("H", "district")] in _figures(rollup[0])
    assert c.get("/staff/report/2025.csv").status_code == 200
    assert c.get("/staff/report/2025.xlsx").status_code == 200
