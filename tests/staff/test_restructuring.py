"""The 2025 restructuring told plainly (issue 14.4): figures mapped to today's
units are the same for every user allowed to see the unit (scope applied
after the mapping), a successor's page names its predecessors, and trends
state their base."""
from __future__ import annotations

import re

import pytest

from tests.factories import MERGED_UNITS, seed_merged_province
from tests.helpers import login


@pytest.fixture
def merged(sapp):
    return seed_merged_province(sapp)


def _client(sapp, username):
    c = sapp.test_client()
    assert login(c, username).status_code == 302
    return c


def _overview_rows(client, **args) -> dict[str, tuple[str, str]]:
    """unit code -> (data-index, responses cell) of the overview table."""
    r = client.get("/staff/", query_string=dict(period="2025", **args))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    out = {}
    for m in re.finditer(r'<tr data-unit="([^"]+)"(?: data-index="([^"]+)")?>.*?<td class="num"[^>]*>([^<]*)</td>',
                         html, re.S):
        out[m.group(1)] = (m.group(2), m.group(3))
    return out


def _row_html(client, code, **args) -> str:
    html = client.get("/staff/", query_string=dict(period="2025", **args)).get_data(as_text=True)
    return re.search(rf'<tr data-unit="{code}".*?</tr>', html, re.S).group(0)


def _stats(sapp, unit_ids=None, **kw):
    from survey_app.services import stats
    from survey_app.services.periods import local_today

    with sapp.app_context():
        res = stats.compute("2025", unit_ids=unit_ids, map_successors=True, as_of=local_today(), **kw)
        return res.table.set_index(["unit_code", "level"])


def test_mapped_figures_are_the_same_for_the_admin_and_the_successors_leader(sapp, merged):
    from survey_app.services.units import subtree_ids

    with sapp.app_context():
        scope_s = subtree_ids(merged["ids"]["M-S"])
    whole, scoped = _stats(sapp), _stats(sapp, scope_s)
    n_s = MERGED_UNITS["M-S"][0] + MERGED_UNITS["M-D-1"][0] + MERGED_UNITS["M-D-2"][0] + MERGED_UNITS["M-D"][0]
    assert int(whole.loc[("M-S", "unit"), "n"]) == n_s  # the predecessors' responses count in M-S
    cols = ["n", "index", "index_ci_low", "index_ci_high", "N"]
    assert scoped.loc[("M-S", "unit"), cols].tolist() == whole.loc[("M-S", "unit"), cols].tolist()
    assert {c for c, _ in scoped.index} == {"M-S"}  # nothing outside the leader's units

    admin = _overview_rows(_client(sapp, merged["users"]["boss"]), units="today")
    leader = _overview_rows(_client(sapp, merged["users"]["lead-s"]), units="today")
    assert set(leader) == {"M-S"}
    assert leader["M-S"] == admin["M-S"] and leader["M-S"][1] == str(n_s)
    rows = [_row_html(_client(sapp, merged["users"][u]), "M-S", units="today") for u in ("boss", "lead-s")]
    assert rows[0] == rows[1]  # the whole row: index, interval, elements, adequacy, target, trend
    assert admin["M-T"][1] == str(MERGED_UNITS["M-T"][0] + MERGED_UNITS["M-D-3"][0])
    # As they were then: M-S has its own responses only, for both.
    then_admin = _overview_rows(_client(sapp, merged["users"]["boss"]))
    then_leader = _overview_rows(_client(sapp, merged["users"]["lead-s"]))
    assert then_leader["M-S"] == then_admin["M-S"] and then_leader["M-S"][1] == str(MERGED_UNITS["M-S"][0])


def test_a_leader_still_sees_nothing_outside_the_mapped_subtree(sapp, merged):
    leader_t = _client(sapp, merged["users"]["lead-t"])
    rows = _overview_rows(leader_t, units="today")
    assert set(rows) == {"M-T"}  # not M-S, though M-D-3 shared a district with M-S's predecessors
    assert leader_t.get("/staff/units/M-S?period=2025").status_code == 404
    assert leader_t.get("/staff/units/M-D-1?period=2025").status_code == 404
    # The former district's leader: mapped to today, its communes' responses belong to units outside its scope.
    lead_d = _client(sapp, merged["users"]["lead-d"])
    assert _overview_rows(lead_d, units="today") == {}
    assert set(_overview_rows(lead_d)) == {"M-D", "M-D-1", "M-D-2", "M-D-3"}  # as they were then: its own units


def test_the_cli_applies_scope_after_mapping_too(sapp, merged, tmp_path):
    import pandas as pd

    out = tmp_path / "s.csv"
    r = sapp.test_cli_runner().invoke(args=["index", "compute", "--period", "2025", "--unit", "M-S",
                                            "--map-successors", "--out", str(out)])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out)
    whole = _stats(sapp)
    row = t[(t["unit_code"] == "M-S") & (t["level"] == "unit")].iloc[0]
    assert int(row["n"]) == int(whole.loc[("M-S", "unit"), "n"])
    assert row["index"] == pytest.approx(float(whole.loc[("M-S", "unit"), "index"]), abs=1e-12)


def test_a_successors_page_says_what_it_was_formed_from_and_when(sapp, merged):
    admin = _client(sapp, merged["users"]["boss"])
    body = admin.get("/staff/units/M-S?period=2025").get_data(as_text=True)
    block = re.search(r'<div class="unit-history".*?</div>', body, re.S).group(0)
    assert "Thành lập từ" in block and "ngày 01/07/2025" in block
    for code in ("M-D", "M-D-1", "M-D-2"):
        assert f'href="/staff/units/{code}"' in block
    assert "M-D-3" not in block  # merged into M-T
    old = admin.get("/staff/units/M-D-1?period=2024").get_data(as_text=True)
    assert re.search(r'Đã sáp nhập vào <a href="/staff/units/M-S">Xã Sông Hợp</a> <span class="code">M-S</span> '
                     r'từ ngày 01/07/2025', old)
    en = admin.get("/staff/units/M-S?period=2025&lang=en").get_data(as_text=True)
    assert "Formed from" in en and "on 01/07/2025" in en
    # The successor's leader may not open the predecessors' pages: their names, without links that would 404.
    lead = _client(sapp, merged["users"]["lead-s"]).get("/staff/units/M-S?period=2025").get_data(as_text=True)
    block = re.search(r'<div class="unit-history".*?</div>', lead, re.S).group(0)
    assert "Xã Một" in block and "Xã Hai" in block and 'href="/staff/units/M-D-1"' not in block
    # A unit untouched by the restructuring has no such block.
    assert 'class="unit-history"' not in admin.get("/staff/units/M?period=2025").get_data(as_text=True)


def test_trends_always_state_their_base(sapp, merged):
    admin = _client(sapp, merged["users"]["boss"])
    then = admin.get("/staff/?period=2025").get_data(as_text=True)
    today = admin.get("/staff/?period=2025&units=today").get_data(as_text=True)
    assert "Xu hướng: so với năm 2024, theo đơn vị khi đó." in then
    assert "Xu hướng: so với năm 2024, theo đơn vị hiện nay" in today and "theo đơn vị khi đó" not in today
    quarter = admin.get("/staff/?period=2025-Q1").get_data(as_text=True)
    assert "so với quý 4/2024" in quarter
    unit = admin.get("/staff/units/M-S?period=2025").get_data(as_text=True)
    assert 'id="trend-base"' in unit and "so với năm 2024, theo đơn vị khi đó" in unit
    assert "Mỗi kỳ tính theo đơn vị khi đó." in unit and "Trước khi thành lập" in unit
    en = admin.get("/staff/?period=2025&units=today&lang=en").get_data(as_text=True)
    assert "Trend: compared with report year 2024, on today&#39;s units" in en


def test_the_public_results_state_the_trend_base(make_loaded_app):
    from tests.factories import seed_publishing
    from tests.public.test_results_pages import publish_units

    app = make_loaded_app(WTF_CSRF_ENABLED=False)
    seed_publishing(app)
    publish_units(app, ["P-A"])
    c = app.test_client()
    assert "Xu hướng: so với năm 2024, theo đơn vị khi đó." in c.get("/public/P/2025").get_data(as_text=True)
    assert "Trend: compared with report year 2024, with the units as they were then." in c.get(
        "/public/P/2025?lang=en").get_data(as_text=True)
