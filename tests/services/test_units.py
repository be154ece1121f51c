"""services.units: one subtree implementation (a recursive CTE) and a user's scope."""
import datetime as dt

import sqlalchemy as sa

from survey_app.extensions import db
from survey_app.models import Unit
from survey_app.services import units
from tests.factories import make_counter, make_unit, make_user


def _tree():
    p = make_unit("P", kind="province")
    d = make_unit("D", kind="district", parent=p, valid_to=dt.date(2025, 7, 1))
    c1 = make_unit("C1", parent=d)
    c2 = make_unit("C2", parent=p)
    other = make_unit("Q", kind="province")
    make_unit("Q1", parent=other)
    return p, d, c1, c2, other


def test_subtree_has_every_descendant_at_any_date(ctx):
    p, d, c1, c2, other = _tree()
    assert units.subtree_ids(p.id) == {p.id, d.id, c1.id, c2.id}
    assert units.subtree_ids(d.id) == {d.id, c1.id}
    assert units.subtree_ids(c1.id) == {c1.id}


def test_a_parent_cycle_does_not_loop(ctx):
    a = make_unit("A")
    b = make_unit("B", parent=a)
    db.session.execute(sa.update(Unit).where(Unit.id == a.id).values(parent_id=b.id))
    assert units.subtree_ids(a.id) == {a.id, b.id}


def test_scope(ctx):
    p, d, c1, c2, other = _tree()
    assert units.scope_unit_ids(make_user(role="admin")) is None
    assert units.scope_unit_ids(make_user(role="analyst")) == set()
    assert units.scope_unit_ids(make_user(role="unit_leader", unit=d)) == {d.id, c1.id}


def test_counters_under(ctx):
    p, d, c1, c2, other = _tree()
    k1 = make_counter(c1, code="K1")
    k2 = make_counter(c2, code="K2", active=False)
    make_counter(other, code="K3")
    assert [c.code for c in units.counters_under(p.id)] == ["K1"]
    assert [c.code for c in units.counters_under(p.id, include_inactive=True)] == ["K1", "K2"]
    assert k1 and k2


def test_mapped_unit_ids_apply_scope_after_mapping(ctx):
    """Mapped to a day after the merge, S's data are S's own and those of the
    units merged into it; D's own communes, mapped away, are no longer D's."""
    day = dt.date(2025, 7, 1)
    p = make_unit("P", kind="province")
    s = make_unit("S", parent=p, valid_from=day)
    t = make_unit("T", parent=p, valid_from=day)
    d = make_unit("D", kind="district", parent=p, valid_to=day, successor=s)
    c1 = make_unit("C1", parent=d, valid_to=day, successor=s)
    c2 = make_unit("C2", parent=d, valid_to=day, successor=t)
    c3 = make_unit("C3", parent=d)  # not merged
    after, before = dt.date(2025, 8, 1), dt.date(2025, 6, 1)
    assert units.mapped_unit_ids({s.id}, after) == {s.id, d.id, c1.id}
    assert units.mapped_unit_ids({t.id}, after) == {t.id, c2.id}
    assert units.mapped_unit_ids(units.subtree_ids(d.id), after) == {c3.id}
    assert units.mapped_unit_ids({s.id}, before) == {s.id}  # before the merge nothing maps
    assert units.mapped_unit_ids(units.subtree_ids(p.id), after) == units.subtree_ids(p.id)
