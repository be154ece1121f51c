"""`flask users create`: staff accounts."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import ROLES, Unit, User
from .common import fail

users_cli = AppGroup("users", help="Staff accounts.")


@users_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--unit", "unit_code", default=None, help="Unit code of the user's scope (required but for admin).")
def users_create(username, password, role, unit_code):
    """Create a staff user scoped to a unit subtree."""
    from ..services.accounts import hash_password, password_problem
    from ..services.audit import record

    if password_problem(password):
        fail(password_problem(password), 2)
    unit = None
    if role != "admin" and not unit_code:
        fail(f"Vai trò {role} cần --unit (phạm vi đơn vị).", 2)
    if unit_code:
        unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
        if unit is None:
            fail(f"Không tìm thấy đơn vị {unit_code}.")
    if db.session.scalar(select(User.id).where(User.username == username)):
        fail(f"Tên đăng nhập {username} đã tồn tại.")
    user = User(username=username, password_hash=hash_password(password), role=role,
                unit_id=unit.id if unit else None)
    db.session.add(user)
    record(actor="cli", action="user_create", target_type="user", target_id=username,
           details={"role": role, "unit": unit_code})
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        fail(f"Tên đăng nhập {username} đã tồn tại.")
    click.echo(f"Đã tạo người dùng {username} ({role}{', ' + unit_code if unit_code else ''}).")


@users_cli.command("email")
@click.argument("username")
@click.argument("address", required=False, default="")
def users_email(username, address):
    """Set (or, without ADDRESS, clear) where a user's case alerts are e-mailed (services/cases.py)."""
    from ..services.audit import record
    from ..services.cases import valid_email

    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        fail(f"Không tìm thấy người dùng {username}.")
    address = address.strip()
    if address and not valid_email(address):
        fail(f"Địa chỉ e-mail không hợp lệ: {address[:80]}", 2)
    user.email = address or None
    record(actor="cli", action="user_email", target_type="user", target_id=username,
           details={"email": "set" if address else "cleared"})
    db.session.commit()
    click.echo(f"Đã đặt e-mail nhận cảnh báo của {username}: {address}." if address
               else f"Đã xoá e-mail nhận cảnh báo của {username}.")
