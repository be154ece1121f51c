"""`flask api clients create|list|revoke`: the keys of API v1 clients."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..extensions import db
from ..models import Unit
from .common import fail

api_cli = AppGroup("api", help="API v1: the clients (one-stop systems, counter devices) and their keys.")
clients_cli = AppGroup("clients", help="API clients: create (prints the key once), list, revoke.")
api_cli.add_command(clients_cli)


@clients_cli.command("create")
@click.option("--name", required=True, help="A name for the client (unique), e.g. igate-tinh.")
@click.option("--unit", "unit_code", required=True, help="Unit code: the client sees only this unit's subtree.")
@click.option("--rights", default="", help="Comma-separated: events,volumes,links,results (default: all).")
def clients_create(name, unit_code, rights):
    """Create a client and print its key once (only its hash is stored)."""
    from ..services import integration

    try:
        names = integration.parse_rights(rights)
    except ValueError as exc:
        fail(f"Quyền không hợp lệ: {exc}. Chọn trong: {', '.join(integration.RIGHTS)}.", 2)
    unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        fail(f"Không tìm thấy đơn vị {unit_code}.")
    try:
        client, key = integration.create_client(name, unit, names, actor="cli")
    except ValueError as exc:
        fail(str(exc))
    click.echo(f"Đã tạo khóa API cho {client.name} (đơn vị {unit.code}, quyền {client.rights}).", err=True)
    click.echo("Khóa chỉ hiện một lần, hãy lưu lại ngay:", err=True)
    click.echo(key)


@clients_cli.command("list")
def clients_list():
    """The clients with their unit, rights and state (never the keys)."""
    from ..services import integration

    clients = integration.list_clients()
    if not clients:
        click.echo("Chưa có khóa API nào.")
        return
    for c in clients:
        state = "đang dùng" if c.active else f"đã thu hồi {c.revoked_at:%Y-%m-%d}"
        click.echo(f"{c.name}\t{c.unit.code}\t{c.rights}\t{c.key_prefix}…\t{state}")


@clients_cli.command("revoke")
@click.argument("name")
def clients_revoke(name):
    """Revoke a client's key (its calls are refused from now on)."""
    from ..services import integration

    try:
        integration.revoke_client(name, actor="cli")
    except LookupError:
        fail(f"Không có khóa API tên {name}.")
    click.echo(f"Đã thu hồi khóa API {name}.")
