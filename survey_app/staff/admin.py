"""Administration: the unit tree (merges and retirement) and its counters,
users and roles, targets and the reporting calendar, the audit log.
Every change is audited; every list is paged by `db.paginate`."""
from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import ROLES, UNIT_KINDS, AuditLog, Counter, ReportingCalendar, Target, Unit, User
from ..services import publishing
from ..services.accounts import MIN_PASSWORD_LENGTH, hash_password, revoke_sessions
from ..services.audit import record
from . import bp
from .auth import require
from .forms import (
    ActionForm,
    CalendarForm,
    CounterForm,
    TargetForm,
    UnitForm,
    UserForm,
    first_errors,
    int_arg,
    unit_by_code,
)

UNITS_PER_PAGE = 100
USERS_PER_PAGE = 100
AUDIT_PER_PAGE = 50
LIKE_ESCAPE = "\\"


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with `%`, `_` and the escape
    character taken literally (use with `escape=LIKE_ESCAPE`)."""
    for ch in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(ch, LIKE_ESCAPE + ch)
    return f"%{text}%"


def _flash_errors(form) -> None:
    for message in first_errors(form):
        flash(message, "error")


@bp.get("/admin/")
def admin_home():
    require("admin")
    counts = {name: db.session.scalar(select(func.count()).select_from(model))
              for name, model in (("units", Unit), ("counters", Counter), ("users", User), ("targets", Target))}
    return render_template("staff/admin_home.html", counts=counts)


# ---------------------------------------------------------------- units and counters

@bp.get("/admin/units")
def admin_units():
    require("admin")
    q = (request.args.get("q") or "").strip()[:80]
    stmt = select(Unit).order_by(Unit.code)
    if q:
        like = contains_pattern(q)
        stmt = stmt.where(or_(Unit.code.ilike(like, escape=LIKE_ESCAPE), Unit.name_vi.ilike(like, escape=LIKE_ESCAPE),
                              Unit.name_en.ilike(like, escape=LIKE_ESCAPE)))
    page = db.paginate(stmt, page=int_arg("page", 1), per_page=UNITS_PER_PAGE, error_out=False)
    return render_template("staff/admin_units.html", page=page, q=q, kinds=UNIT_KINDS)


def _existing_unit(code):
    if code is None:
        return None
    unit = unit_by_code(code)
    if unit is None:
        abort(404)
    return unit


def _unit_page(unit, form, status=200):
    counters = db.session.scalars(select(Counter).where(Counter.unit_id == unit.id)).all() if unit else []
    return render_template("staff/admin_unit.html", unit=unit, kinds=UNIT_KINDS, form=form,
                           errors=first_errors(form), counter_form=CounterForm(formdata=None),
                           counters=counters), status


@bp.get("/admin/units/<code>")
@bp.get("/admin/units/new", defaults={"code": None})
def admin_unit(code):
    require("admin")
    unit = _existing_unit(code)
    form = UnitForm(unit, formdata=None, obj=unit)
    if unit is not None:
        form.parent_code.data = unit.parent.code if unit.parent else ""
        form.successor_code.data = unit.successor.code if unit.successor else ""
    return _unit_page(unit, form)


def _unit_state(unit) -> dict:
    return {"name_vi": unit.name_vi, "kind": unit.kind, "parent": unit.parent.code if unit.parent else None,
            "valid_from": str(unit.valid_from or ""), "valid_to": str(unit.valid_to or ""),
            "successor": unit.successor.code if unit.successor else None}


@bp.post("/admin/units/<code>")
@bp.post("/admin/units/new", defaults={"code": None})
def admin_unit_save(code):
    user = require("admin")
    unit = _existing_unit(code)
    form = UnitForm(unit)
    if not form.validate_on_submit():
        return _unit_page(unit, form, 400)
    creating = unit is None
    if creating:
        unit = Unit(code=form.code.data)
        db.session.add(unit)
    before = {} if creating else _unit_state(unit)
    unit.name_vi, unit.name_en, unit.kind = form.name_vi.data, form.name_en.data or "", form.kind.data
    unit.parent, unit.successor = form.parent, form.successor
    unit.valid_from, unit.valid_to = form.valid_from.data, form.valid_to.data
    record(actor=user.username, user_id=user.id, action="unit_create" if creating else "unit_update",
           target_type="unit", target_id=unit.code, details={"before": before, "after": _unit_state(unit)})
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        form.code.errors = list(form.code.errors) + [
            _("The change was refused by the database (duplicate code or invalid dates).")]
        return _unit_page(None if creating else _existing_unit(code), form, 400)
    flash(_("Unit %(c)s saved.", c=unit.code), "info")
    return redirect(url_for("staff.admin_unit", code=unit.code))


@bp.post("/admin/units/<code>/counters")
def admin_add_counter(code):
    user = require("admin")
    unit = _existing_unit(code)
    form = CounterForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return _unit_page(unit, UnitForm(unit, formdata=None, obj=unit), 400)
    db.session.add(Counter(code=form.code.data, unit_id=unit.id, name_vi=form.name_vi.data,
                           name_en=form.name_en.data or "", token_version=1, active=True))
    record(actor=user.username, user_id=user.id, action="counter_create", target_type="counter",
           target_id=form.code.data, details={"unit": unit.code})
    db.session.commit()
    flash(_("Counter %(c)s added.", c=form.code.data), "info")
    return redirect(url_for("staff.admin_unit", code=code))


# ---------------------------------------------------------------- users

def _users_page(status=200, new_form=None):
    users = db.paginate(select(User).order_by(User.username), page=int_arg("page", 1), per_page=USERS_PER_PAGE,
                        error_out=False)
    return render_template("staff/admin_users.html", users=users, roles=ROLES, new_form=new_form or UserForm(
        creating=True, formdata=None), action_form=ActionForm(), password_min_length=MIN_PASSWORD_LENGTH,
        now=dt.datetime.now(dt.timezone.utc)), status


@bp.get("/admin/users")
def admin_users():
    require("admin")
    return _users_page()


@bp.post("/admin/users")
def admin_user_create():
    me = require("admin")
    form = UserForm(creating=True)
    if not form.validate_on_submit():
        _flash_errors(form)
        return _users_page(400, form)
    unit = form.scope_unit
    db.session.add(User(username=form.username.data, password_hash=hash_password(form.password.data),
                        role=form.role.data, unit_id=unit.id if unit else None))
    record(actor=me.username, user_id=me.id, action="user_create", target_type="user",
           target_id=form.username.data, details={"role": form.role.data, "unit": unit.code if unit else None})
    db.session.commit()
    flash(_("User %(u)s created.", u=form.username.data), "info")
    return redirect(url_for("staff.admin_users"))


def _user_or_404(uid) -> User:
    u = db.session.get(User, uid)
    if u is None:
        abort(404)
    return u


@bp.post("/admin/users/<int:uid>")
def admin_user_update(uid):
    me = require("admin")
    u = _user_or_404(uid)
    form = UserForm(user=u, me=me)
    if not form.validate_on_submit():
        _flash_errors(form)
        return _users_page(400)
    unit = form.scope_unit
    before = {"role": u.role, "unit": u.unit.code if u.unit else None, "active": u.active}
    u.role, u.unit_id, u.active = form.role.data, unit.id if unit else None, bool(form.active.data)
    if form.password.data:
        u.password_hash = hash_password(form.password.data)
    revoke_sessions(u)
    record(actor=me.username, user_id=me.id, action="user_update", target_type="user", target_id=u.username,
           details={"before": before, "after": {"role": u.role, "unit": unit.code if unit else None,
                                                "active": u.active}, "password_changed": bool(form.password.data)})
    db.session.commit()
    flash(_("User %(u)s updated.", u=u.username), "info")
    return redirect(url_for("staff.admin_users"))


def _user_action(uid, change, action):
    """Apply `change(user)` to a user (a button of the users page), audited."""
    me = require("admin")
    u = _user_or_404(uid)
    if not ActionForm().validate_on_submit():
        abort(400)
    change(u)
    record(actor=me.username, user_id=me.id, action=action, target_type="user", target_id=u.username)
    db.session.commit()
    flash(_("User %(u)s updated.", u=u.username), "info")
    return redirect(url_for("staff.admin_users"))


def _unlock(u: User) -> None:
    u.locked_until, u.failed_logins = None, 0


@bp.post("/admin/users/<int:uid>/unlock")
def admin_user_unlock(uid):
    return _user_action(uid, _unlock, "user_unlock")


@bp.post("/admin/users/<int:uid>/revoke")
def admin_user_revoke(uid):
    return _user_action(uid, revoke_sessions, "user_revoke_sessions")


# ---------------------------------------------------------------- targets and the reporting calendar

def _calendar():
    return db.session.scalar(select(ReportingCalendar).where(ReportingCalendar.key == "default"))


def _targets_page(status=200, target_form=None, calendar_form=None):
    targets = db.session.scalars(select(Target).order_by(Target.year.desc(), Target.unit_kind)).all()
    cal = _calendar()
    units = {u.id: u.code for u in db.session.scalars(
        select(Unit).where(Unit.id.in_([t.unit_id for t in targets if t.unit_id])))}
    return render_template("staff/admin_targets.html", targets=targets, kinds=UNIT_KINDS, cal=cal, units=units,
                           target_form=target_form or TargetForm(formdata=None),
                           calendar_form=calendar_form or CalendarForm(formdata=None),
                           action_form=ActionForm()), status


@bp.get("/admin/targets")
def admin_targets():
    require("admin")
    return _targets_page()


@bp.post("/admin/targets")
def admin_target_set():
    user = require("admin")
    form = TargetForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return _targets_page(400, target_form=form)
    year, kind, unit, value = form.year.data, form.unit_kind.data, form.unit, form.fraction
    if why := publishing.refusal("target", unit.id if unit else None, year=year):  # a closed period (issue 15)
        return flash(why, "error") or _targets_page(409, target_form=form)
    existing = db.session.scalar(select(Target).where(
        Target.year == year, Target.unit_kind.is_(None) if kind is None else Target.unit_kind == kind,
        Target.unit_id.is_(None) if unit is None else Target.unit_id == unit.id))
    if existing is not None:
        existing.target = value
    else:
        db.session.add(Target(year=year, unit_kind=kind, unit_id=unit.id if unit else None, target=value))
    record(actor=user.username, user_id=user.id, action="target_set", target_type="target",
           target_id=f"{year}:{unit.code if unit else kind or '*'}",
           details={"year": year, "kind": kind, "unit": unit.code if unit else None, "target": value})
    db.session.commit()
    flash(_("Target saved."), "info")
    return redirect(url_for("staff.admin_targets"))


@bp.post("/admin/targets/<int:tid>/delete")
def admin_target_delete(tid):
    user = require("admin")
    t = db.session.get(Target, tid)
    if t is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    if why := publishing.refusal("target", t.unit_id, year=t.year):  # a closed period (issue 15)
        return flash(why, "error") or _targets_page(409)
    record(actor=user.username, user_id=user.id, action="target_delete", target_type="target",
           target_id=t.id, details={"year": t.year, "kind": t.unit_kind, "target": t.target})
    db.session.delete(t)
    db.session.commit()
    flash(_("Target deleted."), "info")
    return redirect(url_for("staff.admin_targets"))


@bp.post("/admin/calendar")
def admin_calendar_save():
    user = require("admin")
    form = CalendarForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return _targets_page(400, calendar_form=form)
    month, day = form.cutoff_month.data, form.cutoff_day.data
    cal = _calendar()
    if cal is None:
        cal = ReportingCalendar(key="default")
        db.session.add(cal)
    before = (cal.cutoff_month, cal.cutoff_day)
    cal.cutoff_month, cal.cutoff_day = month, day
    record(actor=user.username, user_id=user.id, action="calendar_update", target_type="calendar",
           target_id="default", details={"before": before, "after": (month, day)})
    db.session.commit()
    flash(_("Reporting calendar saved."), "info")
    return redirect(url_for("staff.admin_targets"))


# ---------------------------------------------------------------- audit log

@bp.get("/admin/audit")
def admin_audit():
    require("admin")
    action = (request.args.get("action") or "").strip()[:60]
    actor = (request.args.get("actor") or "").strip()[:80]
    stmt = select(AuditLog).order_by(AuditLog.id.desc())
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if actor:
        stmt = stmt.where(AuditLog.actor == actor)
    page = db.paginate(stmt, page=int_arg("page", 1), per_page=AUDIT_PER_PAGE, error_out=False)
    actions = [a for (a,) in db.session.execute(select(AuditLog.action).distinct().order_by(AuditLog.action))]
    return render_template("staff/admin_audit.html", page=page, action=action, actor=actor, actions=actions)
