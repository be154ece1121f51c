"""services.stats: options are built, never mutated; a misspelled option raises;
the answer distribution counts the responses the index counts."""
import dataclasses
import datetime as dt

import pytest

from analysis import IndexOptions
from survey_app.extensions import db
from survey_app.services import periods, stats
from tests.factories import make_response, make_unit, make_volume

UTC = dt.timezone.utc


def _seed():
    unit = make_unit("X1")
    make_volume(unit, 500)
    at = dt.datetime(2025, 6, 1, 3, tzinfo=UTC)
    for v in (5, 5, 4):
        make_response(unit, {"overall": v, "staff": v}, submitted_at=at)
    for _ in range(2):
        make_response(unit, {"overall": 1, "staff": 1}, submitted_at=at, age_group="under_18")
    make_response(unit, {"overall": 2, "staff": 2}, submitted_at=at, excluded=True)
    db.session.commit()
    return unit


def test_compute_leaves_the_callers_options_alone(ctx):
    _seed()
    opts = IndexOptions(ci="beta")
    before = dataclasses.asdict(opts)
    res = stats.compute("2025", options=opts, rollup="mean_of_units")
    assert dataclasses.asdict(opts) == before
    assert res.meta["parameters"]["rollup"] == "mean_of_units"
    assert res.meta["parameters"]["ci"] == "beta"


def test_a_misspelled_option_raises(ctx):
    _seed()
    with pytest.raises(TypeError, match="rollp"):
        stats.compute("2025", rollp="mean_of_units")
    with pytest.raises(TypeError, match="cii"):
        stats.compute_index("2025", cii="beta")


def test_distribution_counts_what_the_index_counts(ctx):
    unit = _seed()
    period = periods.resolve_period("2025")
    dist = stats.distribution([unit.id], period)
    assert dist["overall"] == [0, 0, 0, 1, 2]   # under-18 and excluded responses left out
    row = stats.unit_row(stats.compute("2025").table, "X1")
    assert sum(dist["overall"]) == row["n"]


def test_a_units_own_target_wins_over_its_kinds(ctx):
    from survey_app.models import Target

    unit = _seed()
    other = make_unit("X2")
    make_volume(other, 300)
    make_response(other, {"overall": 5, "staff": 5}, submitted_at=dt.datetime(2025, 6, 2, 3, tzinfo=UTC))
    db.session.add_all([Target(year=2025, unit_kind="commune", target=0.95),
                        Target(year=2025, unit_id=unit.id, target=0.10),
                        Target(year=2024, unit_id=other.id, target=0.20)])
    db.session.commit()
    t = stats.compute("2025").table
    rows = {r["unit_code"]: r for r in t[t["level"] == "unit"].to_dict("records")}
    assert rows["X1"]["target"] == pytest.approx(0.10)
    assert rows["X2"]["target"] == pytest.approx(0.95)   # its own target is for another year
    assert rows["X1"]["target_status"] in ("met", "inconclusive")
