"""Administration of the API v1 clients (issue 12): the same as
`flask api clients create|list|revoke`, through `services.integration`.
The key is shown once, on the page that answers the creation."""
from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import ApiClient
from ..services import integration
from . import bp
from .auth import require
from .forms import unit_by_code


def _page(status=200, key=None, created=None, name="", unit_code="", rights=None):
    resp = make_response(render_template(
        "staff/admin_api.html", clients=integration.list_clients(), all_rights=integration.RIGHTS, key=key,
        created=created, name=name, unit_code=unit_code, rights=rights if rights is not None else integration.RIGHTS),
        status)
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
