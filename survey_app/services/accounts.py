"""Staff accounts: passwords, roles and their permissions, sign-in counting.

Settings (config.py): STAFF_MAX_FAILED_LOGINS failed passwords in a row lock
the account for STAFF_LOCK_SECONDS.
"""
from __future__ import annotations

import datetime as _dt
from typing import Optional

from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import User


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(pw_hash: str, password: str) -> bool:
    return check_password_hash(pw_hash, password)


# Role -> what it may do.  Viewing results is for every role, inside its scope.
PERMISSIONS = {
    "view": {"counter_staff", "unit_leader", "analyst", "admin"},
    "report": {"unit_leader", "analyst", "admin"},
    "export": {"unit_leader", "analyst", "admin"},
    "exclude": {"unit_leader", "analyst", "admin"},
    # Deciding exclusion requests (four eyes; the rest of the rule: services.exclusions).
    "approve_exclusions": {"analyst", "admin"},
    "posters": {"counter_staff", "unit_leader", "analyst", "admin"},
    "rotate_token": {"unit_leader", "analyst", "admin"},
    "import": {"analyst", "admin"},
    "admin": {"admin"},
}

# A valid scrypt hash of a random string: checking it when the username is
# unknown makes a wrong username cost the same time as a wrong password.
_DUMMY_HASH = None


#: One password policy for the CLI and the staff pages.
MIN_PASSWORD_LENGTH = 10


def password_ok(password: str) -> bool:
    """Whether `password` meets the policy (at least MIN_PASSWORD_LENGTH characters)."""
    return len(password or "") >= MIN_PASSWORD_LENGTH


def password_problem(password: str) -> Optional[str]:
    """Why `password` may not be used (a translated sentence: the page's
    language, or the default language in a command), or None when it may."""
    from contextlib import nullcontext

    from flask import has_request_context
    from flask_babel import force_locale
    from flask_babel import gettext as _

    if password_ok(password):
        return None
    language = nullcontext() if has_request_context() else force_locale(current_app.config["BABEL_DEFAULT_LOCALE"])
    with language:
        return _("The password needs at least %(n)s characters.", n=MIN_PASSWORD_LENGTH)


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
        if user.failed_logins >= int(current_app.config["STAFF_MAX_FAILED_LOGINS"]):
            lock = int(current_app.config["STAFF_LOCK_SECONDS"])
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


def revoke_sessions(user: User) -> None:
    """Bump `session_version` (password change, role change, deactivation)."""
    user.session_version = (user.session_version or 1) + 1


def has_permission(user: Optional[User], action: str) -> bool:
    """Whether `user`'s role may do `action`."""
    return user is not None and user.role in PERMISSIONS.get(action, ())
