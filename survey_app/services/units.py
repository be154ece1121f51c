"""The unit tree: subtrees and a user's scope."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import select

from ..extensions import db
from ..models import Unit, User


def subtree_ids(root_id: int) -> set[int]:
    """Ids of `root_id` and all its descendants (by parent links, any date)."""
    rows = db.session.execute(select(Unit.id, Unit.parent_id)).all()
    children: dict[int, list[int]] = {}
    for uid, pid in rows:
        children.setdefault(pid, []).append(uid)
    out, stack = set(), [root_id]
    while stack:
        n = stack.pop()
        if n in out:
            continue
        out.add(n)
        stack.extend(children.get(n, []))
    return out


def scope_unit_ids(user: User) -> Optional[set[int]]:
    """Units a user may see: None = everything (admin, or no scope for analyst? no:
    a non-admin without a unit sees nothing)."""
    if user.role == "admin":
        return None
    if user.unit_id is None:
        return set()
    return subtree_ids(user.unit_id)
