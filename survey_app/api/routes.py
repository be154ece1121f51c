"""The API v1 endpoints (see `survey_app.api` and README "API v1")."""
from __future__ import annotations

import math

from flask import current_app, g, jsonify, request
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from ..extensions import db, limiter
from ..models import Unit
from ..services import integration
from . import PREFIX, bp, json_error, status_error

PUBLIC_PATHS = frozenset({PREFIX + "openapi.json"})


# ------------------------------------------------------------------ auth and limits

def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _client():
    """The authenticated client of this request (looked up once, cached on g)."""
    if "api_client" not in g:
        g.api_client = integration.authenticate(_bearer())
    return g.api_client


def _limit_key() -> str:
    client = _client()
    if client is not None:
        return f"api-client:{client.id}"
    from ..public.routes import key_ip

    return f"api-anon:{key_ip()}"


def _rate() -> str:
    return current_app.config["API_RATE_LIMIT"]


limiter.limit(_rate, key_func=_limit_key, scope="api-client")(bp)


@bp.before_request
def _authenticate():
    request.max_content_length = int(current_app.config["API_MAX_BODY_BYTES"])
    if request.path in PUBLIC_PATHS:
        return None
    if _client() is None:
        return status_error(401, headers={"WWW-Authenticate": 'Bearer realm="sipas-api"'})
    g.api_scope = integration.client_scope(g.api_client)
    return None


def _need(right: str):
    if right not in g.api_client.right_set:
        return status_error(403)
    return None


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    headers = {k: v for k, v in exc.get_headers() if k.lower() in ("retry-after", "allow", "www-authenticate")}
    return status_error(exc.code or 500, headers=headers)


@bp.errorhandler(OperationalError)
def _db_down(exc):
    db.session.rollback()
    current_app.logger.error("database unreachable on an API call: %s", type(exc).__name__)
    return status_error(503, headers={"Retry-After": "30"})


def _json_body(key: str, limit: int):
    """(list, None) of `key` in a JSON object body, else (None, error response)."""
    if not request.is_json:
        return None, status_error(415)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return None, json_error(400, "invalid_json", _("The body must be a JSON object."))
    items = body.get(key)
    if not isinstance(items, list):
        return None, json_error(400, "invalid_body", _("The body must carry a list %(key)s.", key=key), field=key)
    if not items:
        return None, json_error(400, "empty_batch", _("The list %(key)s is empty.", key=key), field=key)
    if len(items) > limit:
        return None, json_error(413, "batch_too_large",
                                _("At most %(n)d items per request.", n=limit), field=key)
    return items, None


# ------------------------------------------------------------------ endpoints

@bp.post("/dossier-events")
def dossier_events():
    err = _need("events")
    if err is not None:
        return err
    events, err = _json_body("events", integration.MAX_BATCH)
    if err is not None:
        return err
    return jsonify(integration.ingest_events(g.api_client, events, scope=g.api_scope))


@bp.get("/dossiers/<code>/link")
def dossier_link(code):
    err = _need("links")
    if err is not None:
        return err
    try:
        link = integration.dossier_link(code, g.api_scope, actor=f"api:{g.api_client.name}")
    except integration.NotInScope:
        return status_error(404)
    except integration.NoCounter:
        return json_error(409, "no_counter", _("The dossier's unit has no active counter to rate through. "
                                               "Add a counter to the unit first."))
    resp = jsonify(url=link["url"], qr_svg=link["qr_svg"],
                   offered_at=link["offered_at"].isoformat(timespec="seconds"))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/volumes")
def volumes():
    err = _need("volumes")
    if err is not None:
        return err
    rows, err = _json_body("rows", 5000)
    if err is not None:
        return err
    out = integration.store_volumes(g.api_client, rows, g.api_scope)
    if "errors" in out:
        first = out["errors"][0]
        return json_error(409 if first["code"] == "mixed_sources" else 400, first["code"], first["message"],
                          field=first.get("field"), errors=out["errors"])
    return jsonify(out)


def _num(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _int(v):
    f = _num(v)
    return None if f is None else int(round(f))


def _text(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


@bp.get("/results")
def results():
    err = _need("results")
    if err is not None:
        return err
    from analysis import InputError

    from ..services import stats
    from ..services.periods import resolve_period
    from ..services.units import subtree_ids

    label = request.args.get("period", "")
    try:
        if not label or len(label) > 40:
            raise ValueError(label)
        period = resolve_period(label)
    except ValueError:
        return json_error(400, "invalid_period", _("Give a period: 2025, 2025-Q1, 2025-H1, cal:2025, 2025-03 or "
                                                   "A..B (dates YYYY-MM-DD)."), field="period")
    code = request.args.get("unit") or None
    if code is None:
        unit_id = g.api_client.unit_id
    else:
        code = integration.plain_code(code, 40)
        unit_id = db.session.scalar(select(Unit.id).where(Unit.code == code)) if code else None
        if unit_id is None or unit_id not in g.api_scope:
            return status_error(404)
    try:
        res = stats.compute(period, unit_ids=subtree_ids(unit_id))
    except InputError as exc:
        return json_error(409, "invalid_data", str(exc))
    rows = []
    for rec in res.table.to_dict("records"):
        rows.append({
            "unit_code": _text(rec.get("unit_code")), "name": _text(rec.get("name_vi")),
            "level": _text(rec.get("level")), "kind": _text(rec.get("kind")),
            "index": _num(rec.get("index")), "index_ci_low": _num(rec.get("index_ci_low")),
            "index_ci_high": _num(rec.get("index_ci_high")), "n": _int(rec.get("n")), "N": _num(rec.get("N")),
            "offered": _int(rec.get("offered")), "link_responses": _int(rec.get("link_responses")),
            "link_response_rate": _num(rec.get("link_response_rate")),
            "adequacy": _text(rec.get("adequacy")), "target": _num(rec.get("target")),
            "target_status": _text(rec.get("target_status")),
            "m766": {"handled": _int(rec.get("m766_handled")), "rate": _num(rec.get("m766_rate")),
                     "points": _num(rec.get("m766_points"))},
        })
    from ..services.publishing import version_note, version_tag

    return jsonify(period=period.label, method_version=res.meta.get("method_version"),
                   m766_version=integration.M766_VERSION, m766_note=integration.m766_note(),
                   closed_version=version_tag(period.label) or None, version_note=version_note(period.label),
                   units=rows)


@bp.get("/openapi.json")
@limiter.exempt
def openapi():
    from .openapi import document

    return jsonify(document())
