"""Passwords, the login manager's user loader, and unit scope.

Sessions carry the user id and its `session_version`; logging out (or a
password change) increments the version, so a replayed old cookie is refused.
"""
from __future__ import annotations

from typing import Optional

from flask_login import UserMixin
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db, login_manager
from .models import Unit, User


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(pw_hash: str, password: str) -> bool:
    return check_password_hash(pw_hash, password)


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


# ---------------------------------------------------------------- sign-in, time-outs, throttling, scope
#
# Settings (config keys, all overridable):
#   STAFF_IDLE_TIMEOUT      seconds without a request before a session ends (default 30 min)
#   STAFF_ABSOLUTE_TIMEOUT  seconds after sign-in when a session ends whatever happens (default 12 h)
#   STAFF_MAX_FAILED_LOGINS failed passwords in a row before the account is locked (default 5)
#   STAFF_LOCK_SECONDS      how long the lock lasts (default 15 min)
#   STAFF_LOGIN_RATE        Flask-Limiter limit on POST /staff/login per client (default "30 per 5 minutes")

import datetime as _dt  # noqa: E402
import time as _time  # noqa: E402

from flask import abort, current_app  # noqa: E402
from flask_login import current_user, login_user, logout_user  # noqa: E402

# Role -> what it may do.  Viewing results is for every role, inside its scope.
PERMISSIONS = {
    "view": {"counter_staff", "unit_leader", "analyst", "admin"},
    "report": {"unit_leader", "analyst", "admin"},
    "export": {"unit_leader", "analyst", "admin"},
    "exclude": {"unit_leader", "analyst", "admin"},
    "posters": {"counter_staff", "unit_leader", "analyst", "admin"},
    "rotate_token": {"unit_leader", "analyst", "admin"},
    "import": {"analyst", "admin"},
    "admin": {"admin"},
}

# A valid scrypt hash of a random string: checking it when the username is
# unknown makes a wrong username cost the same time as a wrong password.
_DUMMY_HASH = None


def _cfg(key: str, default):
    return current_app.config.get(key, default)


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _aware(ts: Optional[_dt.datetime]) -> Optional[_dt.datetime]:
    if ts is not None and ts.tzinfo is None:  # SQLite returns naive UTC
        ts = ts.replace(tzinfo=_dt.timezone.utc)
    return ts


class LoginResult:
    """Outcome of `authenticate`: `user` on success, else `error` in
    ('invalid', 'locked', 'inactive') and, when locked, `retry_after` seconds."""

    def __init__(self, user: Optional[User] = None, error: Optional[str] = None, retry_after: int = 0):
        self.user, self.error, self.retry_after = user, error, retry_after


def authenticate(username: str, password: str) -> LoginResult:
    """Check a username and password, counting failures and locking the
    account after STAFF_MAX_FAILED_LOGINS in a row (for STAFF_LOCK_SECONDS).
    Commits the counters.  The same answer for an unknown user and a wrong
    password, so a login form reveals nothing about who has an account."""
    global _DUMMY_HASH
    username = (username or "").strip()[:80]
    user = db.session.scalar(select(User).where(User.username == username)) if username else None
    now = _utcnow()
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password("not-a-real-password")
        verify_password(_DUMMY_HASH, password or "")
        return LoginResult(error="invalid")
    locked = _aware(user.locked_until)
    if locked is not None and locked > now:
        return LoginResult(error="locked", retry_after=int((locked - now).total_seconds()) + 1)
    if not verify_password(user.password_hash, password or ""):
        user.failed_logins = (user.failed_logins or 0) + 1
        result = LoginResult(error="invalid")
        if user.failed_logins >= int(_cfg("STAFF_MAX_FAILED_LOGINS", 5)):
            lock = int(_cfg("STAFF_LOCK_SECONDS", 15 * 60))
            user.locked_until = now + _dt.timedelta(seconds=lock)
            user.failed_logins = 0
            from .audit import record

            record(actor=user.username, user_id=user.id, action="login_locked", target_type="user",
                   target_id=user.username, details={"seconds": lock})
            result = LoginResult(error="locked", retry_after=lock)
        db.session.commit()
        return result
    if not user.active:
        return LoginResult(error="inactive")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.commit()
    return LoginResult(user=user)


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


def revoke_sessions(user: User) -> None:
    """Bump `session_version` (password change, role change, deactivation)."""
    user.session_version = (user.session_version or 1) + 1


def session_expired() -> Optional[str]:
    """'idle' or 'absolute' when the current session has timed out, else None;
    refreshes the idle clock otherwise."""
    from flask import session

    now = int(_time.time())
    login_at, seen_at = session.get("login_at"), session.get("seen_at")
    if not isinstance(login_at, int) or not isinstance(seen_at, int):
        return "absolute"
    if now - login_at > int(_cfg("STAFF_ABSOLUTE_TIMEOUT", 12 * 3600)):
        return "absolute"
    if now - seen_at > int(_cfg("STAFF_IDLE_TIMEOUT", 30 * 60)):
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
    user = user or db_user()
    return user is not None and user.role in PERMISSIONS.get(action, ())


def require(action: str) -> User:
    """The current user if their role may do `action`, else 403."""
    user = db_user()
    if user is None:
        abort(401)
    if user.role not in PERMISSIONS.get(action, ()):
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
