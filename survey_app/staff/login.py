"""The sign-in page and signing out."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db, limiter
from ..services.accounts import authenticate
from ..services.audit import record
from . import _safe_next, bp
from .auth import db_user, end_session, start_session
from .forms import ActionForm, LoginForm, first_errors


def _login_rate():
    return current_app.config["STAFF_LOGIN_RATE"]


def _page(form, status=200):
    return render_template("staff/login.html", form=form, next=_safe_next(form.next.data or "/staff/")), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate, methods=["POST"], error_message="too many sign-in attempts")
def login():
    form = LoginForm()
    if not form.next.data:
        form.next.data = request.args.get("next", "/staff/")
    if request.method != "POST":  # GET and HEAD: only POST signs in
        if current_user.is_authenticated:
            return redirect(_safe_next(form.next.data))
        return _page(form)
    if not form.validate_on_submit():
        for message in first_errors(form):
            flash(message, "error")
        return _page(form, 400)
    res = authenticate(form.username.data, form.password.data)
    if res.user is None:
        if res.error == "locked":
            minutes = max(1, (res.retry_after + 59) // 60)
            flash(_("Too many wrong passwords: this account is locked for %(m)s minutes. "
                    "Try again later or ask an administrator to unlock it.", m=minutes), "error")
            return _page(form, 429)
        flash(_("Wrong username or password."), "error")
        return _page(form, 401)
    start_session(res.user)
    record(actor=res.user.username, user_id=res.user.id, action="login", target_type="user",
           target_id=res.user.username)
    db.session.commit()
    return redirect(_safe_next(form.next.data))


@bp.post("/logout")
def logout():
    if not ActionForm().validate_on_submit():
        abort(400)
    user = db_user()
    if user is not None:
        record(actor=user.username, user_id=user.id, action="logout", target_type="user", target_id=user.username)
    end_session(user)
    flash(_("You have signed out."), "info")
    return redirect(url_for("staff.login"))
