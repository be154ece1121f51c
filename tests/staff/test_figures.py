"""The staff pages show the figures `services.stats` computes (same scope,
same period), in the reader's language; the figures store keeps them in
Flask-Caching and a change invalidates the figures of the units it touches."""
import re

from analysis.schema import ITEM_KEYS


def _stats_rows(app, period_label, unit_ids):
    """{(unit_code, level): row} of `services.stats.compute_index` for these units."""
    from survey_app.services import stats
    from survey_app.services.periods import resolve_period

    res = stats.compute_index(resolve_period(period_label), unit_ids=None if unit_ids is None else sorted(unit_ids))
    return {(r["unit_code"], r["level"]): r for r in res.table.to_dict("records")}


def _ids(app, username=None, unit_code=None):
    from sqlalchemy import select

    from survey_app.extensions import db
    from survey_app.models import Unit, User
    from survey_app.services.units import scope_unit_ids, subtree_ids

    if username:
        return scope_unit_ids(db.session.scalar(select(User).where(User.username == username)))
    return subtree_ids(db.session.scalar(select(Unit.id).where(Unit.code == unit_code)))


def test_overview_and_unit_page_equal_services_stats(sapp, world, as_role):
    from survey_app.ui.format import pct

    c = as_role("analyst")
    year = str(world["year"])
    html = c.get(f"/staff/?period={year}").get_data(as_text=True)
    shown = {code: float(v) for code, v in re.findall(r'<tr data-unit="([^"]+)" data-index="([0-9.]+)"', html)}
    summary = float(re.search(r'id="summary-index" data-index="([0-9.]+)"', html).group(1))
    with sapp.test_request_context("/"):
        want = _stats_rows(sapp, year, _ids(sapp, username=world["users"]["analyst"]))
        texts = {code: (pct(want[(code, "unit")]["index"]), pct(want[(code, "unit")]["access_rate"]))
                 for code in shown}
    assert set(shown) == {"P-A", "P-B"}
    for code, value in shown.items():
        assert abs(value - want[(code, "unit")]["index"]) < 1e-6, code
        row_html = html[html.index(f'<tr data-unit="{code}"'):]
        row_html = row_html[:row_html.index("</tr>")]
        assert texts[code][0] in row_html and texts[code][1] in row_html, code  # formatted as stats says
    # the analyst's summary is their scope's province, pooled
    assert abs(summary - want[("P", "province")]["index"]) < 1e-6

    page = c.get(f"/staff/units/P-A?period={year}").get_data(as_text=True)
    on_page = float(re.search(r'id="unit-index" data-index="([0-9.]+)"', page).group(1))
    with sapp.test_request_context("/"):
        mine = _stats_rows(sapp, year, _ids(sapp, unit_code="P-A"))[("P-A", "unit")]
        lines = [pct(mine[f"{k}_rate"]) for k in ITEM_KEYS]
    assert abs(on_page - mine["index"]) < 1e-6
    elements = page[page.index('id="el-h"'):page.index('id="tr-h"')]
    for text in lines:
        assert text in elements

    # the same figures in English use the English separators
    en = c.get(f"/staff/units/P-A?period={year}&lang=en").get_data(as_text=True)
    with sapp.test_request_context("/?lang=en"):
        assert pct(mine["index"]) in en and "." in pct(mine["index"])


def test_the_period_is_part_of_the_figures(sapp, world, as_role):
    """A quarter shows that quarter's figures, not the year's (the cache key holds the period)."""
    c = as_role("analyst")
    year, quarter = str(world["year"]), f"{world['year']}-Q1"
    found = {}
    for label in (year, quarter):
        html = c.get(f"/staff/units/P-A?period={label}").get_data(as_text=True)
        found[label] = float(re.search(r'id="unit-index" data-index="([0-9.]+)"', html).group(1))
    with sapp.test_request_context("/"):
        ids = _ids(sapp, unit_code="P-A")
        want = {label: _stats_rows(sapp, label, ids)[("P-A", "unit")]["index"] for label in (year, quarter)}
    assert want[year] != want[quarter]
    for label in (year, quarter):
        assert abs(found[label] - want[label]) < 1e-6, label


def test_figures_store_uses_flask_caching_and_changes_invalidate_what_they_touch(sapp, world):
    import sqlalchemy as sa

    from survey_app.extensions import cache, db
    from survey_app.models import Response, Unit
    from survey_app.services.audit import record
    from survey_app.staff import figures

    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    with sapp.test_request_context("/"):
        a, y = (db.session.scalar(sa.select(Unit.id).where(Unit.code == c)) for c in ("P-A", "Q-Y"))
        assert figures.cached("probe", compute, "P-A", deps=[a]) == 1
        assert figures.cached("probe", compute, "P-A", deps=[a]) == 1  # a hit
        assert cache.get(figures.cache_key("probe", "P-A"))["v"] == 1  # in the app's Flask-Caching
        assert figures.cached("probe", compute, "Q-Y", deps=[y]) == 2  # another scope: another entry
    with sapp.test_request_context("/"):
        record(actor="t", action="login", target_type="user", target_id="t")  # reads change no figure
        db.session.commit()
        assert figures.cached("probe", compute, "P-A", deps=[a]) == 1
    with sapp.test_request_context("/"):
        # an exclusion at P-A: P-A's figures are recomputed, Q-Y's are not
        r = db.session.scalars(sa.select(Response).where(Response.unit_id == a)).first()
        r.excluded = True
        record(actor="t", action="response_exclude", target_type="response", target_id=str(r.id))
        db.session.commit()
        assert figures.cached("probe", compute, "P-A", deps=[a]) == 3
        assert figures.cached("probe", compute, "Q-Y", deps=[y]) == 2
    with sapp.test_request_context("/"):
        record(actor="t", action="target_set", target_type="target", target_id="2025")  # not through responses
        db.session.commit()
        assert figures.cached("probe", compute, "Q-Y", deps=[y]) == 4
    sapp.config["STAFF_CACHE_SECONDS"] = 0
    with sapp.test_request_context("/"):
        assert figures.cached("probe", compute, "P-A", deps=[a]) == 5  # caching off


def test_admin_unit_search_takes_percent_and_underscore_literally(sapp, world, as_role):
    from survey_app.extensions import db
    from tests.factories import make_unit

    with sapp.app_context():
        make_unit("X_1", kind="commune", name_vi="Xã Gạch Dưới")
        make_unit("XA1", kind="commune", name_vi="Xã Không Gạch")
        make_unit("Z-100%", kind="commune", name_vi="Xã Trăm Phần Trăm")
        db.session.commit()
    c = as_role("admin")

    def codes(q):
        html = c.get("/staff/admin/units", query_string={"q": q}).get_data(as_text=True)
        return set(re.findall(r'<th scope="row"><a href="[^"]+">([^<]+)</a></th>', html))

    assert codes("X_1") == {"X_1"}  # `_` is not "any character"
    assert codes("%") == {"Z-100%"}  # `%` is not "anything"
    assert codes("x_") == {"X_1"}  # still case-insensitive
    assert "P-A" in codes("p-")


def test_cache_outage_only_costs_speed(sapp, world, as_role, monkeypatch):
    """A cache backend that raises (Redis down) must not turn staff pages into 500s."""
    from survey_app.extensions import cache

    def down(*_a, **_k):
        raise ConnectionError("cache backend unreachable")

    monkeypatch.setitem(sapp.config, "STAFF_CACHE_SECONDS", 60)
    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)
    c = as_role("analyst")
    year = str(world["year"])
    resp = c.get(f"/staff/?period={year}")
    assert resp.status_code == 200
    assert 'id="summary-index"' in resp.get_data(as_text=True)
    assert c.get(f"/staff/units/P-A?period={year}").status_code == 200
