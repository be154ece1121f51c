"""The staff session: Flask-Login's user loader, sign-in/out, time-outs and
the per-request role and scope checks (passwords, permissions and sign-in
counting are in `services.accounts`, unit scope in `services.units`).

Sessions carry the user id and its `session_version`; logging out (or a
password change) increments the version, so a replayed old cookie is refused.
"""
from __future__ import annotations

import time as _time
from typing import Optional

from flask import abort, current_app
from flask_login import UserMixin, current_user, login_user, logout_user
from sqlalchemy import select

from ..extensions import db, login_manager
from ..models import Unit, User
from ..services.accounts import has_permission
from ..services.units import scope_unit_ids


class SessionUser(UserMixin):
    """The logged-in user as Flask-Login sees it."""

    def __init__(self, user: User):
        self.user = user
        self.id = f"{user.id}:{user.session_version}"

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"


@login_manager.user_loader
def _load_user(token: str) -> Optional[SessionUser]:
    try:
        uid, version = (int(x) for x in token.split(":"))
    except ValueError:
        return None
    user = db.session.get(User, uid)
    if user is None or not user.active or user.session_version != version:
        return None
    return SessionUser(user)


# ---------------------------------------------------------------- sign-in, time-outs, scope
#
# Settings (config keys, all overridable):
#   STAFF_IDLE_TIMEOUT      seconds without a request before a session ends (default 30 min)
#   STAFF_ABSOLUTE_TIMEOUT  seconds after sign-in when a session ends whatever happens (default 12 h)
#   STAFF_LOGIN_RATE        Flask-Limiter limit on POST /staff/login per client (default "30 per 5 minutes")
#   STAFF_LOGIN_GLOBAL_RATE the same for all clients together (default "300 per minute")
#   STAFF_MAX_FAILED_LOGINS / STAFF_LOCK_SECONDS  the per username x client lock (services.accounts)


def _cfg(key: str):
    return current_app.config[key]


def start_session(user: User) -> None:
    """Log `user` in (no remember-me cookie) and stamp the session times."""
    from flask import session

    session.clear()
    login_user(SessionUser(user), remember=False)
    t = int(_time.time())
    session["login_at"] = t
    session["seen_at"] = t
    session.permanent = False


def end_session(user: Optional[User]) -> None:
    """Log out and revoke every session of `user` on the server side: bumping
    `session_version` makes any copy of the old cookie useless."""
    from flask import session

    if user is not None:
        db.session.execute(
            User.__table__.update().where(User.id == user.id)
            .values(session_version=User.__table__.c.session_version + 1))
        db.session.commit()
    logout_user()
    session.clear()


def session_expired() -> Optional[str]:
    """'idle' or 'absolute' when the current session has timed out, else None;
    refreshes the idle clock otherwise."""
    from flask import session

    now = int(_time.time())
    login_at, seen_at = session.get("login_at"), session.get("seen_at")
    if not isinstance(login_at, int) or not isinstance(seen_at, int):
        return "absolute"
    if now - login_at > int(_cfg("STAFF_ABSOLUTE_TIMEOUT")):
        return "absolute"
    if now - seen_at > int(_cfg("STAFF_IDLE_TIMEOUT")):
        return "idle"
    if now - seen_at >= 15:  # avoid rewriting the cookie on every request
        session["seen_at"] = now
    return None


def db_user() -> Optional[User]:
    """The logged-in `User` row, or None."""
    if not current_user or not current_user.is_authenticated:
        return None
    return current_user.user


def can(action: str, user: Optional[User] = None) -> bool:
    return has_permission(user or db_user(), action)


def require(action: str) -> User:
    """The current user if their role may do `action`, else 403."""
    user = db_user()
    if user is None:
        abort(401)
    if not has_permission(user, action):
        abort(403)
    return user


def in_scope(user: User, unit_id: Optional[int]) -> bool:
    if unit_id is None:
        return False
    scope = scope_unit_ids(user)
    return scope is None or unit_id in scope


def unit_in_scope_or_404(user: User, code: str) -> Unit:
    """The unit with `code` when the user may see it; 404 otherwise (a unit
    outside the scope is indistinguishable from one that does not exist)."""
    if not code or len(code) > 40:
        abort(404)
    unit = db.session.scalar(select(Unit).where(Unit.code == code))
    if unit is None or not in_scope(user, unit.id):
        abort(404)
    return unit
