"""Passwords, the login manager's user loader, and unit scope.

Sessions carry the user id and its `session_version`; logging out (or a
password change) increments the version, so a replayed old cookie is refused.
"""
from __future__ import annotations

from typing import Optional

from flask import session
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
