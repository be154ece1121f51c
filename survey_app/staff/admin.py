"""Data and administration pages: imports, QR posters and token rotation,
the unit tree (merges and retirement), users and roles, targets and the
reporting calendar, the audit log.  Every change is audited."""
from __future__ import annotations

import csv
import datetime as dt
import io

from flask import Response as FlaskResponse
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from ..services.audit import record
from ..services.accounts import hash_password, revoke_sessions
from ..services.units import counters_under, scope_unit_ids, subtree_ids
from ..services.csv_import import ImportRejected, RowError, import_responses, import_units, import_volumes
from ..extensions import db
from ..models import ROLES, UNIT_KINDS, AuditLog, Counter, ReportingCalendar, Target, Unit, User
from ..services.tokens import counter_url
from .auth import require, unit_in_scope_or_404
from . import bp
from .common import Page, int_arg

MAX_UPLOAD = 50 * 1024 * 1024


# ---------------------------------------------------------------- imports

def _out_of_scope_rows(data: bytes, filename: str, scope: set[int], column: str) -> list[RowError]:
    """Row errors for unit codes outside the user's scope (checked before the import)."""
    codes = {c: i for i, c in db.session.execute(select(Unit.id, Unit.code))}
    ctr_units = {c: u for c, u in db.session.execute(select(Counter.code, Counter.unit_id))}
    errors = []
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        for row in reader:
            code = (row.get(column) or "").strip()
            uid = codes.get(code)
            if uid is None and row.get("counter_code"):
                uid = ctr_units.get(row["counter_code"].strip())
            if uid is not None and uid not in scope:
                errors.append(RowError(reader.line_num, column, _("unit %(c)s is outside your scope", c=code)))
    except (UnicodeDecodeError, csv.Error):
        return []  # the importer reports the file-level problem
    return errors


@bp.route("/data/import", methods=["GET", "POST"])
def data_import():
    user = require("import")
    kinds = ["volumes", "responses"] + (["units"] if user.role == "admin" else [])
    result = rejected = None
    if request.method == "POST":
        kind = request.form.get("kind", "")
        f = request.files.get("file")
        if kind not in kinds:
            flash(_("Choose what the file contains."), "error")
        elif f is None or not f.filename:
            flash(_("Choose a CSV file to import."), "error")
        else:
            data = f.read(MAX_UPLOAD + 1)
            name = f.filename[-200:]
            try:
                if len(data) > MAX_UPLOAD:
                    raise ImportRejected(name, summary=_("The file is too large (at most 50 MB)."))
                scope = scope_unit_ids(user)
                if scope is not None:
                    errs = _out_of_scope_rows(data, name, scope, "unit_code")
                    if errs:
                        raise ImportRejected(name, errs)
                fn = {"volumes": import_volumes, "responses": import_responses, "units": import_units}[kind]
                result = fn(data, name, actor=user.username)
                flash(_("Imported %(n)s rows (%(c)s new, %(u)s updated).", n=result.rows, c=result.created,
                        u=result.updated), "info")
            except ImportRejected as exc:
                db.session.rollback()
                rejected = exc
    return render_template("staff/import.html", kinds=kinds, result=result, rejected=rejected,
                           url_rules={r.endpoint for r in current_app.url_map.iter_rules()})


# ---------------------------------------------------------------- posters and tokens

@bp.get("/units/<code>/posters")
def posters(code):
    user = require("posters")
    unit = unit_in_scope_or_404(user, code)
    counters = counters_under(unit.id, include_inactive=True)
    links = {c.id: counter_url(c) for c in counters}
    return render_template("staff/posters.html", unit=unit, counters=counters, links=links)


def _counter_in_scope(user, code, ccode) -> tuple[Unit, Counter]:
    unit = unit_in_scope_or_404(user, code)
    c = db.session.scalar(select(Counter).where(Counter.code == ccode))
    if c is None or c.unit_id not in subtree_ids(unit.id):
        abort(404)
    return unit, c


POSTER_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


@bp.get("/units/<code>/counters/<ccode>/poster.<fmt>")
def poster_download(code, ccode, fmt):
    """An A5 poster of the counter (survey_app.posters), as PNG, SVG or PDF."""
    user = require("posters")
    unit, c = _counter_in_scope(user, code, ccode)
    if fmt not in POSTER_TYPES:
        abort(404)
    from ..services import posters as mod

    kiosk = request.args.get("kiosk") == "1"
    data = {"png": mod.render_png, "svg": mod.render_svg, "pdf": mod.render_pdf}[fmt](c, kiosk)
    name = f"poster_{c.code}{'-kiosk' if kiosk else ''}.{fmt}"
    return FlaskResponse(data, mimetype=POSTER_TYPES[fmt],
                         headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/units/<code>/counters/<ccode>/rotate")
def rotate_token(code, ccode):
    user = require("rotate_token")
    unit, c = _counter_in_scope(user, code, ccode)
    from ..services import posters as mod

    mod.rotate_token(c, actor=user.username, user_id=user.id)
    db.session.commit()
    flash(_("New QR code for %(c)s: the old posters no longer work. Print the new one.", c=c.code), "info")
    return redirect(url_for("staff.posters", code=code))


# ---------------------------------------------------------------- administration

@bp.get("/admin/")
def admin_home():
    require("admin")
    counts = {
        "units": db.session.scalar(select(func.count()).select_from(Unit)),
        "counters": db.session.scalar(select(func.count()).select_from(Counter)),
        "users": db.session.scalar(select(func.count()).select_from(User)),
        "targets": db.session.scalar(select(func.count()).select_from(Target)),
    }
    return render_template("staff/admin_home.html", counts=counts)


def _date(value: str):
    value = (value or "").strip()
    if not value:
        return None
    return dt.date.fromisoformat(value)


def _unit_by_code(code: str):
    code = (code or "").strip()
    if not code:
        return None
    return db.session.scalar(select(Unit).where(Unit.code == code))


@bp.get("/admin/units")
def admin_units():
    require("admin")
    q = (request.args.get("q") or "").strip()[:80]
    stmt = select(Unit).order_by(Unit.code)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Unit.code.ilike(like), Unit.name_vi.ilike(like), Unit.name_en.ilike(like)))
    page = int_arg("page", 1)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = db.session.scalars(stmt.limit(100).offset((page - 1) * 100)).all()
    return render_template("staff/admin_units.html", page=Page(items, total, page, 100), q=q, kinds=UNIT_KINDS)


@bp.route("/admin/units/<code>", methods=["GET", "POST"])
@bp.route("/admin/units/new", methods=["GET", "POST"], defaults={"code": None})
def admin_unit(code):
    user = require("admin")
    unit = None
    if code is not None:
        unit = _unit_by_code(code)
        if unit is None:
            abort(404)
    errors = []
    if request.method == "POST":
        f = request.form
        new_code = (f.get("code") or "").strip()
        if unit is None:
            if not new_code or len(new_code) > 40:
                errors.append(_("Enter a code of at most 40 characters."))
            elif _unit_by_code(new_code) is not None:
                errors.append(_("A unit with code %(c)s already exists.", c=new_code))
        name_vi = (f.get("name_vi") or "").strip()[:200]
        if not name_vi:
            errors.append(_("Enter the Vietnamese name."))
        kind = f.get("kind", "")
        if kind not in UNIT_KINDS:
            errors.append(_("Choose a kind."))
        try:
            vf, vt = _date(f.get("valid_from")), _date(f.get("valid_to"))
            if vf and vt and vt <= vf:
                errors.append(_("The end date must be after the start date."))
        except ValueError:
            errors.append(_("Dates are written YYYY-MM-DD."))
            vf = vt = None
        parent = _unit_by_code(f.get("parent_code"))
        if f.get("parent_code") and parent is None:
            errors.append(_("Parent unit %(c)s not found.", c=f.get("parent_code")))
        successor = _unit_by_code(f.get("successor_code"))
        if f.get("successor_code") and successor is None:
            errors.append(_("Successor unit %(c)s not found.", c=f.get("successor_code")))
        if unit is not None and parent is not None and parent.id in subtree_ids(unit.id):
            errors.append(_("A unit cannot be placed under itself or one of its own units."))
        if unit is not None and successor is not None and successor.id == unit.id:
            errors.append(_("A unit cannot be its own successor."))
        if successor is not None and vt is None:
            errors.append(_("A merged unit needs the date it ends (valid to)."))
        if not errors:
            creating = unit is None
            if creating:
                unit = Unit(code=new_code)
                db.session.add(unit)
            before = {} if creating else {"name_vi": unit.name_vi, "kind": unit.kind,
                                          "parent": unit.parent.code if unit.parent else None,
                                          "valid_from": str(unit.valid_from or ""), "valid_to": str(unit.valid_to or ""),
                                          "successor": unit.successor.code if unit.successor else None}
            unit.name_vi, unit.name_en, unit.kind = name_vi, (f.get("name_en") or "").strip()[:200], kind
            unit.parent, unit.successor, unit.valid_from, unit.valid_to = parent, successor, vf, vt
            after = {"name_vi": unit.name_vi, "kind": unit.kind, "parent": parent.code if parent else None,
                     "valid_from": str(vf or ""), "valid_to": str(vt or ""),
                     "successor": successor.code if successor else None}
            record(actor=user.username, user_id=user.id, action="unit_create" if creating else "unit_update",
                   target_type="unit", target_id=unit.code, details={"before": before, "after": after})
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                errors.append(_("The change was refused by the database (duplicate code or invalid dates)."))
            else:
                flash(_("Unit %(c)s saved.", c=unit.code), "info")
                return redirect(url_for("staff.admin_unit", code=unit.code))
    counters = db.session.scalars(select(Counter).where(Counter.unit_id == unit.id)).all() if unit else []
    return render_template("staff/admin_unit.html", unit=unit, kinds=UNIT_KINDS, errors=errors, form=request.form,
                           counters=counters), (400 if errors else 200)


@bp.post("/admin/units/<code>/counters")
def admin_add_counter(code):
    user = require("admin")
    unit = _unit_by_code(code)
    if unit is None:
        abort(404)
    ccode = (request.form.get("code") or "").strip()[:40]
    name = (request.form.get("name_vi") or "").strip()[:200]
    if not ccode or not name:
        flash(_("Enter the counter's code and name."), "error")
    elif db.session.scalar(select(Counter.id).where(Counter.code == ccode)):
        flash(_("A counter with code %(c)s already exists.", c=ccode), "error")
    else:
        db.session.add(Counter(code=ccode, unit_id=unit.id, name_vi=name, name_en=(request.form.get("name_en") or "")[:200],
                               token_version=1, active=True))
        record(actor=user.username, user_id=user.id, action="counter_create", target_type="counter",
               target_id=ccode, details={"unit": unit.code})
        db.session.commit()
        flash(_("Counter %(c)s added.", c=ccode), "info")
    return redirect(url_for("staff.admin_unit", code=code))


@bp.get("/admin/users")
def admin_users():
    require("admin")
    users = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template("staff/admin_users.html", users=users, roles=ROLES, now=dt.datetime.now(dt.timezone.utc))


def _check_user_form(f, creating: bool):
    errors = []
    role = f.get("role", "")
    if role not in ROLES:
        errors.append(_("Choose a role."))
    unit = _unit_by_code(f.get("unit_code"))
    if f.get("unit_code") and unit is None:
        errors.append(_("Unit %(c)s not found.", c=f.get("unit_code")))
    if role and role != "admin" and unit is None:
        errors.append(_("Every role but administrator needs a unit (its scope)."))
    pw = f.get("password") or ""
    if (creating or pw) and len(pw) < 10:
        errors.append(_("The password needs at least 10 characters."))
    return errors, role, unit, pw


@bp.post("/admin/users")
def admin_user_create():
    user = require("admin")
    f = request.form
    username = (f.get("username") or "").strip()[:80]
    errors, role, unit, pw = _check_user_form(f, True)
    if not username:
        errors.append(_("Enter a username."))
    elif db.session.scalar(select(User.id).where(User.username == username)):
        errors.append(_("Username %(u)s is taken.", u=username))
    if errors:
        for e in errors:
            flash(e, "error")
        return redirect(url_for("staff.admin_users"))
    db.session.add(User(username=username, password_hash=hash_password(pw), role=role,
                        unit_id=unit.id if unit else None))
    record(actor=user.username, user_id=user.id, action="user_create", target_type="user", target_id=username,
           details={"role": role, "unit": unit.code if unit else None})
    db.session.commit()
    flash(_("User %(u)s created.", u=username), "info")
    return redirect(url_for("staff.admin_users"))


@bp.post("/admin/users/<int:uid>")
def admin_user_update(uid):
    me = require("admin")
    u = db.session.get(User, uid)
    if u is None:
        abort(404)
    f = request.form
    action = f.get("action", "save")
    if action == "unlock":
        u.locked_until, u.failed_logins = None, 0
        record(actor=me.username, user_id=me.id, action="user_unlock", target_type="user", target_id=u.username)
    elif action == "revoke":
        revoke_sessions(u)
        record(actor=me.username, user_id=me.id, action="user_revoke_sessions", target_type="user",
               target_id=u.username)
    else:
        errors, role, unit, pw = _check_user_form(f, False)
        active = f.get("active") == "1"
        if u.id == me.id and (role != "admin" or not active):
            errors.append(_("You cannot remove your own administrator rights or deactivate yourself."))
        if errors:
            for e in errors:
                flash(e, "error")
            return redirect(url_for("staff.admin_users"))
        before = {"role": u.role, "unit": u.unit.code if u.unit else None, "active": u.active}
        u.role, u.unit_id, u.active = role, unit.id if unit else None, active
        if pw:
            u.password_hash = hash_password(pw)
        revoke_sessions(u)
        record(actor=me.username, user_id=me.id, action="user_update", target_type="user", target_id=u.username,
               details={"before": before, "after": {"role": role, "unit": unit.code if unit else None,
                                                    "active": active}, "password_changed": bool(pw)})
    db.session.commit()
    flash(_("User %(u)s updated.", u=u.username), "info")
    return redirect(url_for("staff.admin_users"))


@bp.route("/admin/targets", methods=["GET", "POST"])
def admin_targets():
    user = require("admin")
    if request.method == "POST":
        f = request.form
        action = f.get("action", "add")
        if action == "delete":
            t = db.session.get(Target, int_from(f.get("id")))
            if t is None:
                abort(404)
            record(actor=user.username, user_id=user.id, action="target_delete", target_type="target",
                   target_id=t.id, details={"year": t.year, "kind": t.unit_kind, "target": t.target})
            db.session.delete(t)
            db.session.commit()
            flash(_("Target deleted."), "info")
        elif action == "calendar":
            try:
                month, day = int(f.get("cutoff_month", "")), int(f.get("cutoff_day", ""))
                dt.date(2001, month, day)
            except ValueError:
                flash(_("Enter a valid cut-off day and month."), "error")
                return redirect(url_for("staff.admin_targets"))
            cal = db.session.scalar(select(ReportingCalendar).where(ReportingCalendar.key == "default"))
            if cal is None:
                cal = ReportingCalendar(key="default")
                db.session.add(cal)
            before = (cal.cutoff_month, cal.cutoff_day)
            cal.cutoff_month, cal.cutoff_day = month, day
            record(actor=user.username, user_id=user.id, action="calendar_update", target_type="calendar",
                   target_id="default", details={"before": before, "after": (month, day)})
            db.session.commit()
            flash(_("Reporting calendar saved."), "info")
        else:
            try:
                year = int(f.get("year", ""))
                value = float((f.get("target") or "").replace(",", ".")) / 100.0
                if not (2000 <= year <= 2100 and 0 < value <= 1):
                    raise ValueError
            except ValueError:
                flash(_("Enter a year and a target between 1 and 100%."), "error")
                return redirect(url_for("staff.admin_targets"))
            kind = f.get("unit_kind") or None
            if kind is not None and kind not in UNIT_KINDS:
                kind = None
            unit = _unit_by_code(f.get("unit_code"))
            if f.get("unit_code") and unit is None:
                flash(_("Unit %(c)s not found.", c=f.get("unit_code")), "error")
                return redirect(url_for("staff.admin_targets"))
            existing = db.session.scalar(select(Target).where(
                Target.year == year, Target.unit_kind.is_(None) if kind is None else Target.unit_kind == kind,
                Target.unit_id.is_(None) if unit is None else Target.unit_id == unit.id))
            if existing is not None:
                existing.target = value
            else:
                db.session.add(Target(year=year, unit_kind=kind, unit_id=unit.id if unit else None, target=value))
            record(actor=user.username, user_id=user.id, action="target_set", target_type="target",
                   target_id=f"{year}:{kind or unit.code if unit else kind or '*'}",
                   details={"year": year, "kind": kind, "unit": unit.code if unit else None, "target": value})
            db.session.commit()
            flash(_("Target saved."), "info")
        return redirect(url_for("staff.admin_targets"))
    targets = db.session.scalars(select(Target).order_by(Target.year.desc(), Target.unit_kind)).all()
    cal = db.session.scalar(select(ReportingCalendar).where(ReportingCalendar.key == "default"))
    return render_template("staff/admin_targets.html", targets=targets, kinds=UNIT_KINDS, cal=cal,
                           units={u.id: u.code for u in db.session.scalars(select(Unit).where(
                               Unit.id.in_([t.unit_id for t in targets if t.unit_id])))})


def int_from(v) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        abort(404)


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
    page = int_arg("page", 1)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = db.session.scalars(stmt.limit(50).offset((page - 1) * 50)).all()
    actions = [a for (a,) in db.session.execute(select(AuditLog.action).distinct().order_by(AuditLog.action))]
    return render_template("staff/admin_audit.html", page=Page(items, total, page, 50), action=action,
                           actor=actor, actions=actions)
