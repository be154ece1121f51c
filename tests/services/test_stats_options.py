"""services.stats: options are built, never mutated; a misspelled option raises;
the answer distribution counts the responses the index counts."""
import dataclasses
import datetime as dt

import pytest

from analysis import IndexOptions
from tests.factories import make_response, make_unit, make_volume
from survey_app.extensions import db
from survey_app.services import periods, stats

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
