"""The unit tree: subtrees (one recursive query), a user's scope, the counters
under a unit, and what a merge left behind (predecessors, successors).

Scope is by parent links at any date: a user scoped to a district keeps
seeing its former communes after a restructuring.  When figures are mapped
to today's units (`map_successors`), scope is applied AFTER the mapping
(`mapped_unit_ids`): the data of a unit in scope are its own responses and
those of every retired unit mapped into it, so a successor's leader and the
admin see the same figures for it (issue 14.4).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import select

from ..extensions import db
from ..models import Counter, Unit, User


def subtree_ids(root_id: int) -> set[int]:
    """Ids of `root_id` and all its descendants (by parent links, any date):
    one recursive CTE (UNION, so a cycle in the data cannot loop)."""
    tree = select(Unit.id).where(Unit.id == root_id).cte("subtree", recursive=True)
    tree = tree.union(select(Unit.id).join(tree, Unit.parent_id == tree.c.id))
    return set(db.session.scalars(select(tree.c.id)))


def scope_unit_ids(user: User) -> Optional[set[int]]:
    """Units a user may see: None = everything (admin); a non-admin without a
    unit sees nothing."""
    if user.role == "admin":
        return None
    if user.unit_id is None:
        return set()
    return subtree_ids(user.unit_id)


def counters_under(root_id: int, include_inactive: bool = False) -> list[Counter]:
    """The counters of `root_id`'s subtree, by code (active ones unless asked)."""
    q = select(Counter).where(Counter.unit_id.in_(subtree_ids(root_id))).order_by(Counter.code)
    if not include_inactive:
        q = q.where(Counter.active.is_(True))
    return list(db.session.scalars(q))


def is_retired(valid_to, day) -> bool:
    """Whether a unit whose end date is `valid_to` (exclusive; None = still
    exists) no longer exists on `day`."""
    return valid_to is not None and valid_to <= day


def successor_on(unit: Unit, day) -> Optional[Unit]:
    """The unit that carries on the work of `unit` on `day`: its successor,
    followed while that one is itself retired (a commune merged twice).
    None when there is no successor (or the links loop)."""
    seen = {unit.id}
    nxt = unit.successor
    while nxt is not None and is_retired(nxt.valid_to, day):
        if nxt.id in seen:
            return None
        seen.add(nxt.id)
        nxt = nxt.successor
    return nxt


def mapped_unit_ids(unit_ids: Iterable[int], as_of: Optional[dt.date]) -> set[int]:
    """Scope after mapping: the units whose responses count in the units
    `unit_ids` when figures are mapped to the units of `as_of` — `unit_ids`
    and every retired unit whose successor chain ends in one of them.  Uses
    the mapping the index itself uses (`analysis.hierarchy.successor_map` on
    the tree as of `as_of`), so a scoped computation reads exactly the
    responses the whole-tree one puts into those units."""
    from analysis.hierarchy import successor_map, tree_as_of
    from analysis.io import prepare_units

    from .stats import units_frame

    ids = set(unit_ids)
    smap = successor_map(tree_as_of(prepare_units(units_frame()), as_of))
    if not smap:
        return ids
    id_of = dict(db.session.execute(select(Unit.code, Unit.id)).all())
    visible = {code for code, uid in id_of.items() if uid in ids}
    return ids | {id_of[code] for code, to in smap.items() if to in visible and code in id_of}


def predecessors_of(unit: Unit) -> list[Unit]:
    """The units merged directly into `unit` (their `successor` is it), by end date and code."""
    q = select(Unit).where(Unit.successor_id == unit.id).order_by(Unit.valid_to, Unit.code)
    return list(db.session.scalars(q))
