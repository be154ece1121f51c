"""The unit tree: subtrees (one recursive query), a user's scope, the counters
under a unit.

Scope is by parent links at any date: a user scoped to a district keeps
seeing its former communes after a restructuring.
"""
from __future__ import annotations

from typing import Optional

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
