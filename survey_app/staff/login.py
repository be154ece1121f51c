"""The sign-in page and signing out."""
from __future__ import annotations

from flask import abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db, limiter
from ..public.routes import key_ip
from ..security import safe_local_url
from ..services.accounts import authenticate
from ..services.audit import record
from . import bp
from .auth import db_user, end_session, start_session
from .forms import ActionForm, LoginForm, first_errors


def _login_rate():
    return current_app.config["STAFF_LOGIN_RATE"]


def _global_rate():
    return current_app.config["STAFF_LOGIN_GLOBAL_RATE"]


def _safe_next(target) -> str:
    return safe_local_url(target, "/staff/")


def _page(form, status=200):
    return render_template("staff/login.html", form=form, next=_safe_next(form.next.data or "/staff/")), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate, key_func=key_ip, methods=["POST"], scope="staff-login-client",
               error_message="too many sign-in attempts")
@limiter.limit(_global_rate, key_func=lambda: "all", methods=["POST"], scope="staff-login-global",
               error_message="too many sign-in attempts")
def login():
    """Sign-in.  Throttled three ways, none keeping a raw address: per client
    (its hashed address, STAFF_LOGIN_RATE), for everyone together
    (STAFF_LOGIN_GLOBAL_RATE), and per username x client (the lock in
    `services.accounts`); the same answers whether the username exists or not."""
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
    res = authenticate(form.username.data, form.password.data, client=key_ip())
    if res.user is None:
        if res.error == "locked":
            minutes = max(1, (res.retry_after + 59) // 60)
            flash(_("Too many sign-in attempts for this username from this device: please wait %(m)s minutes, "
                    "then try again.", m=minutes), "error")
            resp = make_response(*_page(form, 429))
            resp.headers["Retry-After"] = str(res.retry_after)
            return resp
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
