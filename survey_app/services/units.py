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
from dataclasses import dataclass
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

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
    `unit_ids` when figures are mapped to the units of `as_of` — those of
    `unit_ids` not mapped away, and every retired unit whose successor chain
    ends in one of them.  Uses the mapping the index itself uses
    (`analysis.hierarchy.successor_map` on the tree as of `as_of`), so a
    scoped computation reads exactly the responses the whole-tree one puts
    into those units."""
    from analysis.hierarchy import successor_map, tree_as_of
    from analysis.io import prepare_units

    from .stats import units_frame

    ids = set(unit_ids)
    smap = successor_map(tree_as_of(prepare_units(units_frame()), as_of))
    if not smap:
        return ids
    id_of = dict(db.session.execute(select(Unit.code, Unit.id)).all())
    visible = {code for code, uid in id_of.items() if uid in ids}
    return {uid for code, uid in id_of.items() if smap.get(code, code) in visible}


# ---------------------------------------------------------------- the merge: one admin action (issue 14.4)

class MergeRefused(Exception):
    """A merge that cannot be made: `str(exc)` is the reader's message, `status` the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class MergeResult:
    successor: Unit
    created: bool
    predecessors: list[str]
    day: dt.date
    counters_moved: list[str]


#: Far enough in the future to stand for "every period from the merge on" (publishing.closed_period_for).
_OPEN_END = dt.date(3000, 1, 1)


def merge_units(predecessor_codes: Iterable[str], *, into: str, day: dt.date, name_vi: str = "",
                name_en: str = "", kind: str = "", parent_code: str = "", move_counters: bool = False,
                actor: Optional[User] = None, actor_name: str = "", dry_run: bool = False) -> MergeResult:
    """Merge the predecessors into the successor `into` from `day` (the first
    day the predecessors no longer exist), in ONE transaction with ONE audit
    entry (`unit_merge`): each predecessor gets `valid_to = day` and
    `successor`; the successor is created (valid from `day`, under
    `parent_code` or the predecessors' common parent) or, when it exists,
    renamed if a name is given; with `move_counters` the predecessors' own
    counters move to the successor (their QR tokens keep working and now
    record the successor).  Refused with `MergeRefused` (nothing written):
    an unknown or already retired unit, a successor among or under the
    predecessors or whose own successors lead back to one of them, a date
    that would change a closed period's figures, moving counters before the
    merge takes effect.  A merge recorded ahead of its date can be run again
    (same units, successor and date) on or after the day to move the counters.
    `dry_run`: check everything and say what would happen (the counters that
    would move), write nothing."""
    from .audit import record
    from .periods import local_today
    from .publishing import _, refusal

    def local_date(d: dt.date) -> str:  # dd/mm/yyyy, in a page or a command alike
        return d.strftime("%d/%m/%Y")

    codes = [c.strip() for c in predecessor_codes if c and c.strip()]
    into = (into or "").strip()
    if not codes:
        raise MergeRefused(_("Choose at least one unit to merge."))
    if len(set(codes)) != len(codes):
        raise MergeRefused(_("A unit is listed twice."))
    if not into or len(into) > 40:
        raise MergeRefused(_("Give the successor's code (at most 40 characters)."))
    if into in codes:
        raise MergeRefused(_("A unit cannot be merged into itself (%(c)s).", c=into))
    if not isinstance(day, dt.date):
        raise MergeRefused(_("Give the date of the merge (YYYY-MM-DD)."))
    by_code = {u.code: u for u in db.session.scalars(select(Unit).where(Unit.code.in_(codes + [into])))}
    missing = [c for c in codes if c not in by_code]
    if missing:
        raise MergeRefused(_("Unit %(c)s not found.", c=", ".join(missing)), 404)
    preds = [by_code[c] for c in codes]
    # Already merged into `into` on `day` (a merge recorded ahead of its date): run again on the day to move
    # the counters.
    already = [u.code for u in preds if u.valid_to == day and u.successor is not None and u.successor.code == into]
    for u in preds:
        if u.valid_to is not None and u.code not in already:
            raise MergeRefused(_("%(c)s already ends on %(d)s (merged or retired): it cannot be merged again.",
                                 c=u.code, d=local_date(u.valid_to)), 409)
        if u.valid_from is not None and day <= u.valid_from:
            raise MergeRefused(_("%(c)s only exists from %(d)s: the merge date must be later.",
                                 c=u.code, d=local_date(u.valid_from)))
    pred_ids = {u.id for u in preds}
    under_preds = set().union(*(subtree_ids(u.id) for u in preds))
    succ = by_code.get(into)
    created = succ is None
    if succ is not None:
        if succ.id in under_preds:
            raise MergeRefused(_("%(s)s lies under a unit being merged: a successor cannot be inside a "
                                 "predecessor's tree.", s=succ.code))
        if succ.valid_to is not None and succ.valid_to <= day:
            raise MergeRefused(_("%(s)s no longer exists on %(d)s: choose a unit that exists after the merge.",
                                 s=succ.code, d=local_date(day)), 409)
        if succ.valid_from is not None and succ.valid_from > day:
            raise MergeRefused(_("%(s)s only exists from %(d)s, after the merge date.",
                                 s=succ.code, d=local_date(succ.valid_from)))
        seen, nxt = set(), succ.successor
        while nxt is not None and nxt.id not in seen:  # the successor's own successors
            if nxt.id in pred_ids:
                raise MergeRefused(_("%(s)s is itself to be merged into %(p)s: the merge would make a cycle.",
                                     s=succ.code, p=nxt.code))
            seen.add(nxt.id)
            nxt = nxt.successor
    parent = None
    if created:
        from ..models import UNIT_KINDS

        if not name_vi.strip():
            raise MergeRefused(_("Give the Vietnamese name of the new unit %(c)s.", c=into))
        kind = kind or (preds[0].kind if len({u.kind for u in preds}) == 1 else "")
        if kind not in UNIT_KINDS:
            raise MergeRefused(_("Choose the kind of the new unit %(c)s.", c=into))
        parents = {u.parent_id for u in preds}
        if parent_code:
            parent = db.session.scalar(select(Unit).where(Unit.code == parent_code.strip()))
            if parent is None:
                raise MergeRefused(_("Parent unit %(c)s not found.", c=parent_code), 404)
        elif len(parents) == 1 and None not in parents:
            parent = db.session.get(Unit, parents.pop())
        if parent is not None:
            if parent.id in under_preds:
                raise MergeRefused(_("The new unit cannot be placed under a unit being merged (%(c)s).",
                                     c=parent.code))
            if is_retired(parent.valid_to, day):
                raise MergeRefused(_("The parent %(c)s no longer exists on %(d)s.", c=parent.code,
                                     d=local_date(day)), 409)
    if move_counters and day > local_today():
        raise MergeRefused(_("Counters can be moved only once the merge has taken effect (on or after %(d)s): "
                             "until then they still record %(c)s.", d=local_date(day), c=", ".join(codes)))
    changed = {u.id for u in preds if u.code not in already}
    touched = changed | ({succ.id} if succ is not None else set()) | ({parent.id} if parent is not None else set())
    if changed and (why := refusal("merge", touched, day, _OPEN_END)):  # a closed period whose tree this changes
        raise MergeRefused(why, 409)

    if dry_run:
        moving = list(db.session.scalars(select(Counter.code).where(Counter.unit_id.in_(pred_ids))
                                         .order_by(Counter.code))) if move_counters else []
        preview = succ if succ is not None else Unit(code=into, name_vi=name_vi.strip(), name_en=name_en.strip(),
                                                     kind=kind, valid_from=day)
        return MergeResult(successor=preview, created=created, predecessors=codes, day=day, counters_moved=moving)

    # ---- the change, one transaction
    if created:
        succ = Unit(code=into, name_vi=name_vi.strip(), name_en=name_en.strip(), kind=kind, parent=parent,
                    valid_from=day)
        db.session.add(succ)
    else:
        before_name = (succ.name_vi, succ.name_en)
        if name_vi.strip():
            succ.name_vi = name_vi.strip()
        if name_en.strip():
            succ.name_en = name_en.strip()
    for u in preds:
        u.valid_to, u.successor = day, succ
    moved: list[str] = []
    if move_counters:
        for c in db.session.scalars(select(Counter).where(Counter.unit_id.in_(pred_ids)).order_by(Counter.code)):
            c.unit = succ
            moved.append(c.code)
    details = {"predecessors": codes, "successor": into, "successor_name": succ.name_vi,
               "successor_created": created, "date": day.isoformat(), "counters_moved": moved}
    if created:
        details.update(kind=kind, parent=parent.code if parent is not None else None)
    elif (succ.name_vi, succ.name_en) != before_name:
        details["renamed_from"] = before_name[0]
    if already:
        details["already_merged"] = already
    details["summary"] = merge_summary(details)
    if len(already) == len(preds) and not moved and (created or "renamed_from" not in details):
        raise MergeRefused(_("%(u)s already merged into %(s)s from %(d)s: nothing to change.",
                             u=", ".join(codes), s=into, d=local_date(day)), 409)
    record(actor=actor.username if actor is not None else (actor_name or "cli"),
           user_id=actor.id if actor is not None else None, action="unit_merge", target_type="unit",
           target_id=into, details=details)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise MergeRefused(_("The change was refused by the database (duplicate code or invalid dates)."),
                           409) from None
    return MergeResult(successor=succ, created=created, predecessors=codes, day=day, counters_moved=moved)


def merge_summary(details: dict) -> str:
    """One sentence, in the default language (Vietnamese), saying what a
    `unit_merge` audit entry did (kept in the entry's details)."""
    from flask import current_app
    from flask_babel import force_locale, gettext

    day = dt.date.fromisoformat(details["date"]).strftime("%d/%m/%Y")
    moved = details.get("counters_moved") or []
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        made = gettext("new unit") if details.get("successor_created") else gettext("existing unit")
        text = gettext("%(units)s merged into %(s)s (%(name)s, %(made)s) from %(d)s.",
                       units=", ".join(details["predecessors"]), s=details["successor"],
                       name=details.get("successor_name", ""), made=made, d=day)
        text += " " + (gettext("Counters moved: %(c)s.", c=", ".join(moved)) if moved
                       else gettext("No counter moved."))
    return text
