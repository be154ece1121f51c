"""Excluding a response from the figures, with four eyes (DESIGN.md "Integrity").

The rules, in one place (the staff pages and the CLI call these functions):

- Every exclusion, and every re-inclusion (undo), is a *request*; it changes
  nothing until it is approved.  Only an approved request sets
  `Response.excluded`, the state the statistics read, so a pending request
  never moves a figure.
- The rated unit's own staff (roles `counter_staff` / `unit_leader`, whose
  scope holds the response) may request it only for a response the system
  flagged, with a reason.  Anything else (an unflagged response) may only be
  requested by an analyst or administrator.
- A request is decided (approved or rejected, with an optional note) by an
  analyst or administrator who is outside the rated unit: the response's unit
  is in their scope but their own unit is not that unit nor inside it (an
  analyst scoped to the province decides for its communes; an analyst scoped
  to the commune itself does not).  The requester never decides their own
  request.  Because own-unit exclusions always wait for that decision, no
  exclusion by the rated unit can change a ranked or published figure unseen.
- At most one request per response is pending at a time; the requester may
  withdraw it while it is pending.
- Every request, decision and withdrawal is in the audit log
  (`services.audit`): `exclusion_request`, `response_exclude` /
  `response_include` (an approval: the figure changes), `exclusion_reject`,
  `exclusion_withdraw`.

`Refused(status, message)` is raised for every refusal: 403 not allowed,
404 not found or outside the scope, 409 the state changed, 400 bad input.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Iterable, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select, update

from analysis.schema import TYPED_CHANNELS

from ..extensions import db
from ..models import ExclusionRequest, Response, User, utcnow
from . import publishing, refusals
from .accounts import has_permission
from .audit import record
from .units import scope_unit_ids, subtree_ids

#: Roles that belong to the rated unit: they may ask only for flagged responses.
OWN_STAFF_ROLES = ("counter_staff", "unit_leader")
REASON_MIN, REASON_MAX, NOTE_MAX = 5, 500, 500
PENDING = "pending"


Refused = refusals.Refused  # (status, translated message): one class for every service


@dataclass(frozen=True)
class UnitIntegrity:
    """Per unit and period: responses excluded (approved), requests pending, typed share."""

    excluded: int = 0
    pending: int = 0
    typed: int = 0
    total: int = 0

    @property
    def typed_share(self) -> Optional[float]:
        return self.typed / self.total if self.total else None


# ------------------------------------------------------------------ who may do what

def _in_scope(user: User, unit_id: int) -> bool:
    scope = scope_unit_ids(user)
    return scope is None or unit_id in scope


def is_member(user: User, unit_id: int) -> bool:
    """Whether `user` belongs to the rated unit `unit_id`: their own unit is it or lies inside it."""
    return user.unit_id is not None and user.unit_id in subtree_ids(unit_id)


def may_see(user: User, req: ExclusionRequest) -> bool:
    """Whether the request's response is in `user`'s scope."""
    return _in_scope(user, req.response.unit_id)


def may_decide(user: Optional[User]) -> bool:
    """Whether `user`'s role decides requests at all (the approval page)."""
    return user is not None and user.active and has_permission(user, "approve_exclusions")


def why_not_decide(user: User, req: ExclusionRequest) -> Optional[str]:
    """Why `user` may not decide `req` (a translated sentence), or None when they may."""
    if not may_decide(user):
        return _l("Only an analyst or administrator outside the unit may approve exclusions.")
    if req.requested_by_id == user.id:
        return _l("You made this request: another analyst must decide it (four eyes).")
    if is_member(user, req.response.unit_id):
        return _l("You belong to the unit whose response this is: an analyst outside the unit must decide it.")
    return None


def _check_reason(text: Optional[str], *, required: bool, limit: int, what) -> str:
    text = (text or "").strip()
    if "\x00" in text:
        raise Refused(400, _l("The text contains a character that is not allowed."))
    if required and len(text) < REASON_MIN:
        raise Refused(400, _l("Give the reason (at least %(n)s characters).", n=REASON_MIN))
    if len(text) > limit:
        raise Refused(400, _l("%(what)s: at most %(n)s characters.", what=what, n=limit))
    return text


# ------------------------------------------------------------------ the requests

def get_response(user: User, rid) -> Response:
    """The response with id `rid` when it is in `user`'s scope; Refused(404) otherwise."""
    try:
        rid = rid if isinstance(rid, uuid.UUID) else uuid.UUID(str(rid))
    except ValueError:
        raise Refused(404, _l("There is no such response.")) from None
    resp = db.session.get(Response, rid)
    if resp is None or not _in_scope(user, resp.unit_id):
        raise Refused(404, _l("There is no such response."))
    return resp


def pending_request(response_id) -> Optional[ExclusionRequest]:
    return db.session.scalar(select(ExclusionRequest).where(
        ExclusionRequest.response_id == response_id, ExclusionRequest.status == PENDING))


def request_change(user: User, resp: Response, action: str, reason: Optional[str]) -> ExclusionRequest:
    """Ask to exclude (`action="exclude"`) or count again (`"include"`) a
    response; the request is pending until decided.  Audited and committed."""
    if action not in ("exclude", "include"):
        raise Refused(400, _l("Unknown action."))
    if not has_permission(user, "exclude"):
        raise Refused(403, _l("Your account may not ask for exclusions."))
    if not _in_scope(user, resp.unit_id):
        raise Refused(404, _l("There is no such response."))
    if user.role in OWN_STAFF_ROLES and not (resp.flags or "").strip():
        raise Refused(403, _l("The unit's own staff may only ask to exclude (or count again) a response "
                              "that the system flagged. Ask the provincial analyst for any other case."))
    reason = _check_reason(reason, required=True, limit=REASON_MAX, what=_l("Reason"))
    if (action == "exclude") == bool(resp.excluded):
        raise Refused(409, _l("This response is already excluded.") if resp.excluded
                      else _l("This response is already counted."))
    if pending_request(resp.id) is not None:
        raise Refused(409, _l("A request for this response is already waiting for a decision."))
    req = ExclusionRequest(response_id=resp.id, action=action, status=PENDING, reason=reason,
                           requested_by_id=user.id, requested_at=utcnow())
    db.session.add(req)
    db.session.flush()
    record(actor=user.username, user_id=user.id, action="exclusion_request", target_type="response",
           target_id=resp.id, details={"request": req.id, "do": action, "unit": resp.unit.code,
                                       "reason": reason, "flags": resp.flags, "role": user.role})
    db.session.commit()
    return req


def get_request(req_id) -> ExclusionRequest:
    try:
        key = int(req_id)
    except (TypeError, ValueError):
        key = 0
    req = db.session.get(ExclusionRequest, key) if 0 < key < 2 ** 31 else None  # an INTEGER key
    if req is None:
        raise Refused(404, _l("There is no such request."))
    return req


def _claim(req: ExclusionRequest, status: str, user: User, note: Optional[str]) -> dt.datetime:
    """Move `req` from pending to `status` in one conditional UPDATE, so two
    deciders at once cannot both win (the second gets 409)."""
    now = utcnow()
    done = db.session.execute(
        update(ExclusionRequest)
        .where(ExclusionRequest.id == req.id, ExclusionRequest.status == PENDING)
        .values(status=status, decided_by_id=user.id, decided_at=now, decision_note=note or None)
        .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        db.session.rollback()
        raise Refused(409, _l("This request has already been decided or withdrawn."))
    return now


def decide(user: User, req: ExclusionRequest, approve: bool, note: Optional[str] = None) -> ExclusionRequest:
    """Approve or reject a pending request (four eyes).  An approval sets the
    response's effective state.  Audited and committed."""
    if req.status != PENDING:
        raise Refused(409, _l("This request has already been decided or withdrawn."))
    if not may_see(user, req):
        raise Refused(404, _l("There is no such request."))
    why = why_not_decide(user, req)
    if why is not None:
        raise Refused(403, why)
    note = _check_reason(note, required=False, limit=NOTE_MAX, what=_l("Note"))
    if approve and (closed := publishing.refusal("exclusion", req.response.unit_id, req.response.submitted_at)):
        raise Refused(409, closed)  # a closed period (issue 15): the request stays pending until it is reopened
    _claim(req, "approved" if approve else "rejected", user, note)
    resp = req.response
    details = {"request": req.id, "do": req.action, "unit": resp.unit.code, "reason": req.reason,
               "requested_by": req.requested_by.username, "note": note, "flags": resp.flags}
    if approve:
        before = bool(resp.excluded)
        resp.excluded = req.action == "exclude"
        resp.excluded_reason = req.reason if resp.excluded else None
        action = "response_exclude" if req.action == "exclude" else "response_include"
        details["was_excluded"] = before
    else:
        action = "exclusion_reject"
    record(actor=user.username, user_id=user.id, action=action, target_type="response", target_id=resp.id,
           details=details)
    db.session.commit()
    db.session.refresh(req)
    return req


def withdraw(user: User, req: ExclusionRequest) -> ExclusionRequest:
    """The requester takes back a pending request.  Audited and committed."""
    if req.status != PENDING:
        raise Refused(409, _l("This request has already been decided or withdrawn."))
    if req.requested_by_id != user.id:
        raise Refused(403, _l("Only the person who asked may withdraw a request."))
    _claim(req, "withdrawn", user, None)
    record(actor=user.username, user_id=user.id, action="exclusion_withdraw", target_type="response",
           target_id=req.response_id, details={"request": req.id, "do": req.action})
    db.session.commit()
    db.session.refresh(req)
    return req


# ------------------------------------------------------------------ lists and counts

def _pending_in_scope(user: User):
    q = (select(ExclusionRequest).join(Response, Response.id == ExclusionRequest.response_id)
         .where(ExclusionRequest.status == PENDING))
    scope = scope_unit_ids(user)
    if scope is not None:
        q = q.where(Response.unit_id.in_(scope or [-1]))
    return q


def pending_for(user: User) -> list[ExclusionRequest]:
    """Pending requests of responses in `user`'s scope, oldest first."""
    return list(db.session.scalars(_pending_in_scope(user).order_by(ExclusionRequest.requested_at,
                                                                    ExclusionRequest.id)))


def decidable_count(user: Optional[User]) -> int:
    """How many pending requests `user` may decide (the staff menu's badge)."""
    if not may_decide(user):
        return 0
    return sum(1 for req in pending_for(user) if why_not_decide(user, req) is None)


def pending_ids(response_ids: Iterable) -> dict:
    """{response id: its pending request} for these responses."""
    ids = list(response_ids)
    if not ids:
        return {}
    return {r.response_id: r for r in db.session.scalars(select(ExclusionRequest).where(
        ExclusionRequest.response_id.in_(ids), ExclusionRequest.status == PENDING))}


def integrity_by_unit(unit_ids, start: dt.datetime, end: dt.datetime) -> dict[int, UnitIntegrity]:
    """{unit id: UnitIntegrity} over the responses of these units submitted in
    [start, end): excluded responses, pending requests, typed (paper / phone)
    responses and all responses.  Two GROUP BY queries."""
    ids = list(unit_ids)
    if not ids:
        return {}
    cond = (Response.unit_id.in_(ids), Response.submitted_at >= start, Response.submitted_at < end)
    from .aggregates import unit_counts  # the counts the triggers keep (issue 14), when the span allows

    counts = unit_counts(ids, start, end)
    if counts is None:
        rows = db.session.execute(
            select(Response.unit_id, func.count(),
                   func.sum(case((Response.excluded.is_(True), 1), else_=0)),
                   func.sum(case((Response.channel.in_(TYPED_CHANNELS), 1), else_=0)))
            .where(*cond).group_by(Response.unit_id)).all()
    else:  # the typed ones through the partial index ix_responses_typed
        typed = dict(db.session.execute(select(Response.unit_id, func.count())
                                        .where(*cond, Response.channel.in_(TYPED_CHANNELS))
                                        .group_by(Response.unit_id)).all())
        rows = [(uid, n, x, typed.get(uid, 0)) for uid, (n, x) in counts.items()]
    pending = dict(db.session.execute(
        select(Response.unit_id, func.count()).join(ExclusionRequest, ExclusionRequest.response_id == Response.id)
        .where(*cond, ExclusionRequest.status == PENDING).group_by(Response.unit_id)).all())
    out = {}
    for uid, total, excluded, typed in rows:
        out[uid] = UnitIntegrity(excluded=int(excluded or 0), pending=int(pending.get(uid, 0)),
                                 typed=int(typed or 0), total=int(total or 0))
    return out


def integrity_total(unit_ids, start: dt.datetime, end: dt.datetime) -> UnitIntegrity:
    """The sums of `integrity_by_unit` over these units (a unit page: the unit and its subtree)."""
    parts = integrity_by_unit(unit_ids, start, end).values()
    return UnitIntegrity(excluded=sum(p.excluded for p in parts), pending=sum(p.pending for p in parts),
                         typed=sum(p.typed for p in parts), total=sum(p.total for p in parts))


def integrity_table(unit_ids, start: dt.datetime, end: dt.datetime) -> dict[str, dict[str, UnitIntegrity]]:
    """The annual report's per-unit integrity figures over [start, end):
    `{"unit": {code: a unit's own responses}, "subtree": {code: the unit and
    everything under it}, "root": {"": all of `unit_ids`}}` (`unit_ids` None =
    every unit).  One pass over the unit tree after `integrity_by_unit`."""
    from ..models import Unit

    tree = db.session.execute(select(Unit.id, Unit.code, Unit.parent_id)).all()
    ids = {i for i, _, _ in tree} if unit_ids is None else set(unit_ids)
    own = integrity_by_unit(ids, start, end)
    parent = {i: p for i, _, p in tree}
    sums: dict[int, list[int]] = {}
    for uid, part in own.items():
        seen, node = set(), uid
        while node is not None and node not in seen:  # up the parent links (a cycle cannot loop)
            seen.add(node)
            acc = sums.setdefault(node, [0, 0, 0, 0])
            for k, v in enumerate((part.excluded, part.pending, part.typed, part.total)):
                acc[k] += v
            node = parent.get(node)
    code = {i: c for i, c, _ in tree}
    return {"unit": {code[i]: v for i, v in own.items()},
            "subtree": {code[i]: UnitIntegrity(*v) for i, v in sums.items()},
            "root": {"": integrity_total(ids, start, end) if own else UnitIntegrity()}}


@dataclass(frozen=True)
class PaperBatch:
    """Typed questionnaires of one paper batch label, typist and counter in a period."""

    batch: str
    typist: str
    counter: str
    typed: int
    flagged: int
    first: dt.datetime
    last: dt.datetime


def paper_batches(unit_ids, start: dt.datetime, end: dt.datetime, limit: int = 200) -> list[PaperBatch]:
    """Who typed which paper batch, how many and how many were flagged (newest
    typing first), over the typed responses of these units submitted in [start, end)."""
    from ..models import Counter

    ids = list(unit_ids)
    if not ids:
        return []
    rows = db.session.execute(
        select(Response.paper_batch, User.username, Counter.code, func.count(),
               func.sum(case((Response.flags != "", 1), else_=0)), func.min(Response.received_at),
               func.max(Response.received_at))
        .join(User, User.id == Response.entered_by_user_id).outerjoin(Counter, Counter.id == Response.counter_id)
        .where(Response.unit_id.in_(ids), Response.submitted_at >= start, Response.submitted_at < end,
               Response.paper_batch.is_not(None))
        .group_by(Response.paper_batch, User.username, Counter.code)
        .order_by(func.max(Response.received_at).desc()).limit(limit)).all()
    return [PaperBatch(b, u, c or "", int(n), int(f or 0), lo, hi) for b, u, c, n, f, lo, hi in rows]
