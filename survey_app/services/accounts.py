"""Staff accounts: passwords, roles and their permissions, sign-in counting.

Settings (config.py): STAFF_MAX_FAILED_LOGINS sign-in attempts for one
username from one client within STAFF_LOCK_SECONDS lock that username *for
that client* until the window ends (see "the sign-in lock" below); the staff
login view adds a per-client rate (STAFF_LOGIN_RATE) and a global one
(STAFF_LOGIN_GLOBAL_RATE).
"""
from __future__ import annotations

import datetime as _dt
from typing import Optional

from flask import current_app
from sqlalchemy import func, select, update
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


class LoginResult:
    """Outcome of `authenticate`: `user` on success, else `error` in
    ('invalid', 'locked') and, when locked, `retry_after` seconds.  An
    inactive account answers 'invalid', as an unknown one does."""

    def __init__(self, user: Optional[User] = None, error: Optional[str] = None, retry_after: int = 0):
        self.user, self.error, self.retry_after = user, error, retry_after


# ---------------------------------------------------------------- the sign-in lock
#
# STAFF_MAX_FAILED_LOGINS attempts per (username, client) within STAFF_LOCK_SECONDS:
# the next attempt from that client for that username is refused until the
# window ends.  The lock lives in the rate-limit storage (memory, or Redis shared
# by every worker), keyed by a keyed hash of the username and the client's
# hashed address: no raw address or username is kept there.  An attempt is
# counted *before* its password is checked (one atomic increment), so parallel
# attempts cannot pass the limit; a successful sign-in clears the count.
# Strangers elsewhere cannot lock an account: their attempts count only
# against their own client.  Unknown usernames are counted and locked exactly
# like real ones, so the lock reveals nothing about who has an account.

_LOCK_SCOPE = "staff-login-lock"
_fallback_limiter = None


def _lock_item():
    from limits import RateLimitItemPerSecond

    cfg = current_app.config
    return RateLimitItemPerSecond(int(cfg["STAFF_MAX_FAILED_LOGINS"]), int(cfg["STAFF_LOCK_SECONDS"]))


def _lock_limiter():
    """The rate-limit strategy of the app's limiter (None when rate limiting is
    off); a per-process memory one when its storage fails."""
    from ..extensions import limiter

    if not limiter.enabled or not limiter.initialized:
        return None
    return limiter.limiter


def _lock_call(method: str, *args):
    global _fallback_limiter
    strategy = _lock_limiter()
    if strategy is None:
        return None
    try:
        return getattr(strategy, method)(*args)
    except Exception:  # noqa: BLE001 - storage down: count in this process instead
        from limits.storage import MemoryStorage
        from limits.strategies import FixedWindowRateLimiter

        if _fallback_limiter is None:
            _fallback_limiter = FixedWindowRateLimiter(MemoryStorage())
        return getattr(_fallback_limiter, method)(*args)


def lock_key(username: str, client: str) -> str:
    """The storage key of the (username, client) sign-in lock: a keyed hash."""
    from .privacy import keyed_hash

    return keyed_hash(current_app.config["SECRET_KEY"], f"{username.casefold()}\n{client}", "login-lock")[:32]


def _retry_after(key: str) -> int:
    import time

    stats = _lock_call("get_window_stats", _lock_item(), _LOCK_SCOPE, key)
    return max(1, int(stats.reset_time - time.time()) + 1) if stats else 1


def _count_failure(username: str) -> None:
    """Count a failed password on the account, atomically (one UPDATE in the
    database, so parallel failures are never lost); no row for an unknown
    username, by the same statement.  The count is the account's failures
    since its last sign-in (for administrators); it locks nothing."""
    db.session.execute(
        update(User).where(User.username == username)
        .values(failed_logins=func.coalesce(User.failed_logins, 0) + 1)
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)).scalar()
    db.session.commit()


def authenticate(username: str, password: str, client: str = "") -> LoginResult:
    """Check a username and password for a client (its hashed address).

    The same answers, by the same steps, for an unknown user, an inactive one
    and a wrong password: a scrypt check, one counting UPDATE, 'invalid'; and
    'locked' for any username after STAFF_MAX_FAILED_LOGINS attempts from one
    client within STAFF_LOCK_SECONDS (see above).  Commits."""
    global _DUMMY_HASH
    username = (username or "").strip()[:80]
    key = lock_key(username, client)
    if _lock_call("hit", _lock_item(), _LOCK_SCOPE, key) is False:
        return LoginResult(error="locked", retry_after=_retry_after(key))
    row = db.session.execute(select(User.id, User.password_hash, User.active)
                             .where(User.username == username)).first() if username else None
    db.session.commit()  # no transaction stays open across the slow password check
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password("not-a-real-password")
    ok = verify_password(row.password_hash if row else _DUMMY_HASH, password or "") and row is not None
    if not ok or not row.active:
        _count_failure(username)
        stats = _lock_call("get_window_stats", _lock_item(), _LOCK_SCOPE, key)
        if stats is not None and stats.remaining <= 0:
            from .audit import record

            record(actor="anonymous", user_id=row.id if row else None, action="login_locked",
                   target_type="user", target_id=username if row else None,  # never a typed unknown name
                   details={"seconds": _retry_after(key), "client": client[-12:], "known_user": bool(row)})
            db.session.commit()
            return LoginResult(error="locked", retry_after=_retry_after(key))
        return LoginResult(error="invalid")
    _lock_call("clear", _lock_item(), _LOCK_SCOPE, key)
    user = db.session.get(User, row.id)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = _utcnow()
    db.session.commit()
    return LoginResult(user=user)


def revoke_sessions(user: User) -> None:
    """Bump `session_version` (password change, role change, deactivation)."""
    user.session_version = (user.session_version or 1) + 1


def has_permission(user: Optional[User], action: str) -> bool:
    """Whether `user`'s role may do `action`."""
    return user is not None and user.role in PERMISSIONS.get(action, ())
