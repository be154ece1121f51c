"""The public results pages: server-rendered, cached, light, usable without
JavaScript at 320 px; sortable by query arguments (`?sort=index&order=desc`).

Only published figures appear (`services.publishing.public_rows`): per unit
its newest published version, the version named on the page and in every
download; a unit with fewer than PUBLIC_MIN_N responses is shown as
"chưa đủ mẫu" with no figure and no count.  No comments, no officer data.
"""
from __future__ import annotations

import json

from flask import Response as FlaskResponse
from flask import abort, current_app, make_response, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _

from ..errors import inline_css
from ..extensions import cache
from ..services import publishing
from . import bp

MAX_CODE = 40


def _cached(name: str, fn, *key):
    """`fn()` kept PUBLIC_CACHE_SECONDS, keyed by the database, what is published and `key`."""
    ttl = int(current_app.config["PUBLIC_CACHE_SECONDS"])
    if ttl <= 0:
        return fn()
    k = "sipas:public:" + repr((current_app.config["SQLALCHEMY_DATABASE_URI"], publishing.publication_stamp(),
                                name) + key)
    hit = cache.get(k)
    if hit is not None:
        return hit[0]
    value = fn()
    cache.set(k, (value,), timeout=ttl)
    return value


def _public(resp):
    resp.headers["Cache-Control"] = f"public, max-age={int(current_app.config['PUBLIC_CACHE_SECONDS'])}"
    resp.headers["Vary"] = "Cookie"
    return resp


def _sort_args() -> tuple[str, bool]:
    sort = request.args.get("sort", "name")
    if sort not in publishing.PUBLIC_SORTS:
        sort = "name"
    order = request.args.get("order", "desc" if sort in ("index", "n", "interval", "trend") else "asc")
    return sort, order == "desc"


def method_note() -> str:
    return _("The satisfaction index is the average over the five elements of the service (access, procedure, "
             "civil servant, result, handling of feedback) of the share of answers that are satisfied (4 or 5 "
             "of 5), weighted by the number of transactions: it is an index, not a count of people. Each figure "
             "comes from a sample of the people served, so it is given with a 95%% confidence interval: the "
             "true index lies between its two ends with 95%% confidence. "
             "Two units whose intervals overlap cannot be said to differ. A target is met when even the low end "
             "of the interval reaches it. Units with fewer than %(n)s responses are shown without a figure.",
             n=current_app.config["PUBLIC_MIN_N"])


def _data(code: str, year: int):
    if not code or len(code) > MAX_CODE or not (2000 <= year <= 2999):
        abort(404)
    sort, desc = _sort_args()

    def load():
        unit, rows, about = publishing.public_rows(code, year, sort=sort, descending=desc)
        if unit is None:
            return None
        return {"code": unit.code, "name_vi": unit.name_vi, "name_en": unit.name_en}, rows, about

    data = _cached("rows", load, code, year, sort, desc)
    if data is None or not data[1]:
        abort(404)
    return data, sort, desc


@bp.get("/")
def index():
    entries = _cached("years", lambda: [{"year": e["year"], "code": e["unit"].code, "name_vi": e["unit"].name_vi,
                                          "name_en": e["unit"].name_en, "units": e["units"]}
                                         for e in publishing.published_years()])
    return _public(make_response(render_template("results/index.html", entries=entries)))


@bp.get("/<code>/<int:year>")
def unit_year(code, year):
    (unit, rows, about), sort, desc = _data(code, year)
    inline_css()  # the page's stylesheet and its CSP hash
    return _public(make_response(render_template(
        "results/unit.html", unit=unit, rows=rows, about=about, year=year, sort=sort, desc=desc,
        note=method_note(), locale=str(get_locale() or "vi"))))


@bp.get("/<code>/<int:year>.csv")
def unit_year_csv(code, year):
    (unit, rows, about), _sort, _desc = _data(code, year)
    body = "\ufeff" + publishing.public_csv(rows, about)
    return _public(FlaskResponse(body, mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'inline; filename="sipas_{unit["code"]}_{year}.csv"'}))


@bp.get("/<code>/<int:year>.json")
def unit_year_json(code, year):
    (unit, rows, about), _sort, _desc = _data(code, year)
    doc = publishing.public_json(unit, rows, about, method_note())
    return _public(FlaskResponse(json.dumps(doc, ensure_ascii=False, indent=1), mimetype="application/json"))
