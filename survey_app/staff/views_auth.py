"""Sign-in and sign-out."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..services.audit import record
from ..services.accounts import authenticate
from ..extensions import limiter
from .auth import db_user, end_session, start_session
from . import _safe_next, bp


def _login_rate():
    return current_app.config.get("STAFF_LOGIN_RATE", "30 per 5 minutes")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate, methods=["POST"], error_message="too many sign-in attempts")
def login():
    nxt = _safe_next(request.values.get("next", "/staff/"))
    if request.method != "POST":  # GET and HEAD: only POST signs in
        if current_user.is_authenticated:
            return redirect(nxt)
        return render_template("staff/login.html", next=nxt, username="")
    username = (request.form.get("username") or "").strip()[:80]
    password = request.form.get("password") or ""
    if not username or not password:
        flash(_("Enter your username and password."), "error")
        return render_template("staff/login.html", next=nxt, username=username), 400
    res = authenticate(username, password)
    if res.user is None:
        if res.error == "locked":
            minutes = max(1, (res.retry_after + 59) // 60)
            flash(_("Too many wrong passwords: this account is locked for %(m)s minutes. "
                    "Try again later or ask an administrator to unlock it.", m=minutes), "error")
            status = 429
        else:
            flash(_("Wrong username or password."), "error")
            status = 401
        return render_template("staff/login.html", next=nxt, username=username), status
    start_session(res.user)
    record(actor=res.user.username, user_id=res.user.id, action="login", target_type="user",
           target_id=res.user.username)
    from ..extensions import db

    db.session.commit()
    return redirect(nxt)


@bp.post("/logout")
def logout():
    user = db_user()
    if user is not None:
        record(actor=user.username, user_id=user.id, action="logout", target_type="user", target_id=user.username)
    end_session(user)
    flash(_("You have signed out."), "info")
    return redirect(url_for("staff.login"))
