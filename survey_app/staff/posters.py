"""QR posters of a unit's counters (PNG, SVG, PDF) and issuing a new QR code."""
from __future__ import annotations

from flask import Response as FlaskResponse
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import Counter, Unit
from ..services.tokens import counter_url
from ..services.units import counters_under, subtree_ids
from . import bp
from .auth import require, unit_in_scope_or_404
from .forms import ActionForm

POSTER_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


@bp.get("/units/<code>/posters")
def posters(code):
    user = require("posters")
    unit = unit_in_scope_or_404(user, code)
    counters = counters_under(unit.id, include_inactive=True)
    links = {c.id: counter_url(c) for c in counters}
    return render_template("staff/posters.html", unit=unit, counters=counters, links=links, form=ActionForm())


def _counter_in_scope(user, code, ccode) -> tuple[Unit, Counter]:
    unit = unit_in_scope_or_404(user, code)
    c = db.session.scalar(select(Counter).where(Counter.code == ccode))
    if c is None or c.unit_id not in subtree_ids(unit.id):
        abort(404)
    return unit, c


@bp.get("/units/<code>/counters/<ccode>/poster.<fmt>")
def poster_download(code, ccode, fmt):
    """An A5 poster of the counter (`services.posters`), as PNG, SVG or PDF."""
    user = require("posters")
    unit, c = _counter_in_scope(user, code, ccode)
    if fmt not in POSTER_TYPES:
        abort(404)
    from ..services import posters as mod

    kiosk = request.args.get("kiosk") == "1"
    data = {"png": mod.render_png, "svg": mod.render_svg, "pdf": mod.render_pdf}[fmt](c, kiosk)
    name = f"poster_{c.code}{'-kiosk' if kiosk else ''}.{fmt}"
    return FlaskResponse(data, mimetype=POSTER_TYPES[fmt],
                         headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/units/<code>/counters/<ccode>/rotate")
def rotate_token(code, ccode):
    user = require("rotate_token")
    unit, c = _counter_in_scope(user, code, ccode)
    if not ActionForm().validate_on_submit():
        abort(400)
    from ..services import posters as mod

    mod.rotate_token(c, actor=user.username, user_id=user.id)
    db.session.commit()
    flash(_("New QR code for %(c)s: the old posters no longer work. Print the new one.", c=c.code), "info")
    return redirect(url_for("staff.posters", code=code))
