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
    for m in re.finditer(r'<tr data-unit="([^"]+)"(?: data-index="([^"]+)")?>.*?<td class="num">([^<]*)</td>',
                         html, re.S):
        out[m.group(1)] = (m.group(2), m.group(3))
    return out


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
