"""Administration of the API v1 clients (issue 12): the same as
`flask api clients create|list|revoke|webhook` and `flask api webhooks
list|resend`, through `services.integration` and `services.webhooks`.
The key and a webhook's signing secret are shown once, on the page that
answers their creation."""
from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import ApiClient, Webhook
from ..services import integration, webhooks
from . import bp
from .auth import require
from .forms import unit_by_code

#: Rows of the delivery log and of the dead letters shown on the page.
LOG_ROWS = 50


def _page(status=200, key=None, created=None, name="", unit_code="", rights=None, secret=None, secret_client=None):
    clients = integration.list_clients()
    hooks = {h.client_id: h for h in db.session.scalars(select(Webhook))}
    resp = make_response(render_template(
        "staff/admin_api.html", clients=clients, all_rights=integration.RIGHTS, key=key,
        created=created, name=name, unit_code=unit_code, rights=rights if rights is not None else integration.RIGHTS,
        hooks=hooks, event_types=webhooks.EVENT_TYPES, secret=secret, secret_client=secret_client,
        deliveries=webhooks.list_deliveries(limit=LOG_ROWS), dead=webhooks.list_deliveries(dead=True, limit=LOG_ROWS),
        next_attempt_at=webhooks.next_attempt_at), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/admin/api")
def admin_api_clients():
    require("admin")
    return _page()


@bp.post("/admin/api")
def admin_api_client_create():
    user = require("admin")
    name = (request.form.get("name") or "").strip()
    unit_code = (request.form.get("unit_code") or "").strip()
    rights = [r for r in integration.RIGHTS if request.form.get(f"right_{r}")]
    unit = unit_by_code(unit_code) if unit_code else None
    if unit is None:
        flash(_("Unit %(code)s not found.", code=unit_code[:40]), "error")
        return _page(400, name=name, unit_code=unit_code, rights=rights)
    if not rights:
        flash(_("Choose at least one right."), "error")
        return _page(400, name=name, unit_code=unit_code, rights=rights)
    try:
        client, key = integration.create_client(name, unit, rights, actor=user.username, user_id=user.id)
    except ValueError as exc:
        flash(str(exc), "error")
        return _page(400, name=name, unit_code=unit_code, rights=rights)
    return _page(key=key, created=client)


@bp.post("/admin/api/<int:cid>/revoke")
def admin_api_client_revoke(cid):
    user = require("admin")
    client = db.session.scalar(select(ApiClient).where(ApiClient.id == cid))
    if client is None:
        flash(_("No such API client."), "error")
        return redirect(url_for("staff.admin_api_clients"))
    integration.revoke_client(client.name, actor=user.username, user_id=user.id)
    flash(_("API key %(name)s revoked.", name=client.name), "info")
    return redirect(url_for("staff.admin_api_clients"))


# ------------------------------------------------------------------ outbound webhooks (issue 12.6)

def _client_or_none(cid):
    return db.session.scalar(select(ApiClient).where(ApiClient.id == cid))


@bp.post("/admin/api/<int:cid>/webhook")
def admin_api_webhook_set(cid):
    user = require("admin")
    client = _client_or_none(cid)
    if client is None:
        flash(_("No such API client."), "error")
        return redirect(url_for("staff.admin_api_clients"))
    events = [e for e in webhooks.EVENT_TYPES if request.form.get(f"event_{e}")]
    if not events:
        flash(_("Choose at least one event type."), "error")
        return _page(400)
    try:
        hook, secret = webhooks.configure(client, request.form.get("url"), events, actor=user.username,
                                          user_id=user.id, new_secret=bool(request.form.get("new_secret")))
    except ValueError as exc:
        flash(str(exc), "error")
        return _page(400)
    if secret:
        return _page(secret=secret, secret_client=client)
    flash(_("Webhook of %(name)s saved.", name=client.name), "info")
    return redirect(url_for("staff.admin_api_clients"))


@bp.post("/admin/api/<int:cid>/webhook/off")
def admin_api_webhook_off(cid):
    user = require("admin")
    client = _client_or_none(cid)
    if client is None:
        flash(_("No such API client."), "error")
    elif webhooks.turn_off(client, actor=user.username, user_id=user.id):
        flash(_("Webhook of %(name)s turned off.", name=client.name), "info")
    return redirect(url_for("staff.admin_api_clients"))


@bp.post("/admin/api/deliveries/<int:did>/resend")
def admin_api_delivery_resend(did):
    user = require("admin")
    try:
        webhooks.resend(did, actor=user.username, user_id=user.id)
    except LookupError:
        flash(_("No such delivery."), "error")
        return redirect(url_for("staff.admin_api_clients"))
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.admin_api_clients"))
    flash(_("Delivery %(id)s queued to be sent again.", id=did), "info")
    return redirect(url_for("staff.admin_api_clients") + "#deliveries")
