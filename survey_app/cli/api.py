"""`flask api clients create|list|revoke|webhook`: the keys of API v1 clients and
their outbound webhooks; `flask api webhooks list|resend`: the deliveries."""
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


@clients_cli.command("webhook")
@click.argument("name")
@click.option("--url", default=None, help="Where to POST the events (https://; http:// only to localhost).")
@click.option("--events", default=None,
              help="Comma-separated event types: rating.dissatisfied,alert.created (default: all; "
                   "kept when changing only the URL).")
@click.option("--new-secret", is_flag=True, help="Make a new signing secret (printed once).")
@click.option("--off", is_flag=True, help="Remove the webhook (no more events; the delivery log stays).")
def clients_webhook(name, url, events, new_secret, off):
    """Set, change or remove a client's outbound webhook.  A new webhook's
    signing secret is printed once."""
    from ..models import ApiClient
    from ..services import webhooks

    client = db.session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None:
        fail(f"Không có khóa API tên {name}.")
    if off:
        if url or events or new_secret:
            fail("--off không đi cùng --url, --events hay --new-secret.", 2)
        done = webhooks.turn_off(client, actor="cli")
        click.echo(f"Đã tắt webhook của {name}." if done else f"{name} chưa có webhook.")
        return
    if not url:
        hook = webhooks.webhook_of(client)
        if hook is None:
            fail("Cần --url (địa chỉ nhận sự kiện) hoặc --off.", 2)
        url = hook.url
    try:
        names = webhooks.parse_events(events) if events is not None else None
        hook, secret = webhooks.configure(client, url, names, actor="cli", new_secret=new_secret)
    except ValueError as exc:
        fail(str(exc), 2)
    click.echo(f"Webhook của {name}: {hook.url} (sự kiện {hook.events}).", err=True)
    if secret:
        click.echo("Khóa ký (secret) chỉ hiện một lần, hãy lưu lại ngay:", err=True)
        click.echo(secret)


webhooks_cli = AppGroup("webhooks", help="Outbound webhook deliveries: the log, dead letters, re-sending.")
api_cli.add_command(webhooks_cli)


@webhooks_cli.command("list")
@click.option("--dead", is_flag=True, help="Only the dead letters (attempts used up).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
def webhooks_list(dead, limit):
    """The newest deliveries: id, time, client, event, unit, status, attempts, last answer."""
    from ..services import webhooks

    rows = webhooks.list_deliveries(dead=dead, limit=limit)
    if not rows:
        click.echo("Không có thư chết nào." if dead else "Chưa có lần gửi webhook nào.")
        return
    for d in rows:
        last = d.last_error or (f"HTTP {d.last_status}" if d.last_status else "")
        click.echo(f"{d.id}\t{d.created_at:%Y-%m-%d %H:%M:%S}Z\t{d.client.name}\t{d.event_type}\t{d.unit.code}\t"
                   f"{d.status}\t{d.attempts}\t{last}")


@webhooks_cli.command("resend")
@click.argument("delivery_id", type=int)
def webhooks_resend(delivery_id):
    """Queue a dead or delivered delivery again (same id and body; audited)."""
    from ..services import webhooks

    try:
        webhooks.resend(delivery_id, actor="cli")
    except LookupError:
        fail(f"Không có lần gửi số {delivery_id}.")
    except ValueError as exc:
        fail(str(exc))
    click.echo(f"Đã xếp lại lần gửi {delivery_id} vào hàng đợi.")
