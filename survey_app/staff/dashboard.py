"""Overview, unit page, its charts, comments, flagged responses and exports."""
from __future__ import annotations

import uuid

from flask import Response as FlaskResponse
from flask import abort, current_app, flash, redirect, render_template, request, stream_with_context, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import func, select

from .. import charts
from ..services.audit import record
from ..services.periods import local_today
from ..services.units import scope_unit_ids, subtree_ids
from ..services.csv_export import iter_response_rows
from ..extensions import db
from ..models import Counter, Response
from .auth import can, require, unit_in_scope_or_404
from . import bp
from .common import (ELEMENT_LABELS, ELEMENTS, Page, cached, chosen_period, records, int_arg, isnum, pct,
                     period_choices, unit_codes)
from .unitdata import (comments_query, counters_table, distribution, drivers_table, elements_of,
                       flagged_query, rows_by_code, safe_index, table_of, trend_series, trended, unit_row)

SORTS = {"name": "name_sort", "code": "unit_code", "kind": "kind", "n": "n", "rate": "response_rate",
         "index": "index", "moe": "moe", "adequacy": "need_more", "target": "target_status",
         "trend": "trend_change"}
SCALE = ("1", "2", "3", "4", "5")


def _scope_codes(user):
    scope = scope_unit_ids(user)
    return scope, (None if scope is None else set(unit_codes(scope).values()))


@bp.get("/")
def index():
    user = require("view")
    period = chosen_period()
    scope, codes = _scope_codes(user)
    today = request.args.get("units") == "today"
    opts = {"map_successors": True, "as_of": local_today()} if today else {}
    res = safe_index(period, scope, **opts)
    t = trended(res, period, scope, **opts)
    if codes is not None:
        t = t[t["unit_code"].isin(codes)]
    view = request.args.get("view", "unit")
    view = view if view in ("unit", "rollup") else "unit"
    t = t[t["level"] == "unit"] if view == "unit" else t[~t["level"].isin(["unit", "root"])]
    kinds = sorted(set(t["kind"])) if len(t) else []
    kind = request.args.get("kind", "")
    if kind in kinds:
        t = t[t["kind"] == kind]
    q = (request.args.get("q") or "").strip()[:80]
    if q:
        ql = q.lower()
        t = t[t["unit_code"].str.lower().str.contains(ql, regex=False)
              | t["name_vi"].str.lower().str.contains(ql, regex=False)
              | t["name_en"].str.lower().str.contains(ql, regex=False)]
    t = t.assign(name_sort=t["name_vi"].str.lower() if len(t) else [],
                 need_more=(t["required_n"] - t["n"]).clip(lower=0) if len(t) else [])
    sort = request.args.get("sort", "index")
    sort = sort if sort in SORTS else "index"
    order = request.args.get("dir", "asc" if sort in ("name", "code", "kind") else "desc")
    order = order if order in ("asc", "desc") else "desc"
    if len(t):
        t = t.sort_values([SORTS[sort], "unit_code"], ascending=[order == "asc", True], na_position="last",
                          kind="mergesort")
    per = int(current_app.config.get("STAFF_PAGE_SIZE", 50))
    page_no = int_arg("page", 1)
    total = len(t)
    pages = max(1, -(-total // per))
    page_no = min(page_no, pages)
    rows = records(t.iloc[(page_no - 1) * per: page_no * per])
    summary = None
    if res is not None and codes is None:
        root = res.table[res.table["level"] == "root"]
        summary = root.iloc[0].to_dict() if len(root) else None
    elif res is not None and user.unit is not None:
        summary = unit_row(res.table, user.unit.code)
    return render_template("staff/overview.html", period=period, periods=period_choices(period.year),
                           page=Page(rows, total, page_no, per), sort=sort, order=order, kinds=kinds, kind=kind,
                           view=view, q=q, summary=summary, today=today, meta=res.meta if res else {},
                           method_version=res.meta.get("method_version") if res else None)


def _unit_context(code):
    user = require("view")
    unit = unit_in_scope_or_404(user, code)
    period = chosen_period()
    ids = subtree_ids(unit.id)
    return user, unit, period, ids


@bp.get("/units/<code>")
def unit_page(code):
    user, unit, period, ids = _unit_context(code)
    res = safe_index(period, ids)
    table = trended(res, period, ids)
    child_codes = sorted(u.code for u in unit.children)
    rows = rows_by_code(table, child_codes + [unit.code])
    row = rows.get(unit.code)
    elements = elements_of(row)
    trend_by = "quarter" if request.args.get("trend") == "quarter" else "year"
    trend = trend_series(unit, period, ids, trend_by)
    dist = distribution(ids, period)
    drv = drivers_table(unit, period, ids, res)
    ctr = counters_table(unit, period, ids)
    children = [rows[c] for c in child_codes if c in rows]
    # comments
    element = request.args.get("element", "")
    rating = request.args.get("rating", "")
    cq = comments_query(ids, period, element, rating)
    cpage = int_arg("cpage", 1, hi=100000)
    id_key = sorted(ids)
    ctotal = cached("comments_count", lambda: db.session.scalar(
        select(func.count()).select_from(cq.order_by(None).subquery())) or 0, period, id_key, element, rating)
    comments = db.session.execute(cq.limit(20).offset((cpage - 1) * 20)).all()
    fq = flagged_query(ids, period)
    ftotal, flagged_ids = cached("flagged", lambda: (
        db.session.scalar(select(func.count()).select_from(fq.order_by(None).subquery())) or 0,
        [r.id for r in db.session.scalars(fq.limit(50))]), period, id_key)
    flagged = db.session.scalars(select(Response).where(Response.id.in_(flagged_ids))
                                 .order_by(Response.submitted_at.desc(), Response.id)).all() if flagged_ids else []
    counters = db.session.scalars(select(Counter).where(Counter.unit_id == unit.id).order_by(Counter.code)).all()
    return render_template(
        "staff/unit.html", unit=unit, period=period, periods=period_choices(period.year), row=row,
        elements=elements, trend=trend, trend_by=trend_by, dist=dist,
        drivers=None if drv is None else records(drv), counters_cmp=records(ctr), children=children,
        comments=comments, comment_page=Page(comments, ctotal, cpage, 20), element=element, rating=rating,
        flagged=flagged, flagged_total=ftotal, counters=counters, meta=res.meta if res else {},
        method_version=res.meta.get("method_version") if res else None, scale=SCALE,
        can_exclude=can("exclude"), can_export=can("export"))


def _svg(data: bytes):
    return FlaskResponse(data, mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})


@bp.get("/units/<code>/charts/<name>.svg")
def unit_chart(code, name):
    user, unit, period, ids = _unit_context(code)
    if name not in CHARTS:
        abort(404)
    trend_by = "quarter" if request.args.get("trend") == "quarter" else "year"
    data = cached("chart", lambda: _chart(unit, period, ids, name, trend_by), name, unit.code, period,
                  sorted(ids), trend_by, str(get_locale()))
    if data is None:
        abort(404)
    return _svg(data)


CHARTS = ("elements", "trend", "distribution", "drivers", "counters")


def _chart(unit, period, ids, name, trend_by):
    """SVG bytes of one chart of the unit page (None when there is nothing to draw)."""
    if name == "elements":
        res = safe_index(period, ids)
        row = unit_row(table_of(res), unit.code)
        el = elements_of(row)
        target = row.get("target") if row else None
        return (charts.interval_chart(
            [str(ELEMENT_LABELS[e["key"]]) for e in el], [e["rate"] for e in el], [e["low"] for e in el],
            [e["high"] for e in el], target=target if isnum(target) else None,
            title=_("Satisfied (%) per element, with 95% band"),
            target_label=_("target %(t)s", t=pct(target, 0)) if isnum(target) else "",
            xlabel=_("Satisfied (%)")))
    if name == "trend":
        tr = trend_series(unit, period, ids, trend_by)
        res = safe_index(period, ids)
        row = unit_row(table_of(res), unit.code)
        target = row.get("target") if row else None
        return (charts.trend_chart(
            [p["label"] for p in tr], [p["index"] for p in tr], [p["low"] for p in tr], [p["high"] for p in tr],
            target=target if isnum(target) else None, title=_("Satisfaction index over time, with 95% band"),
            ylabel=_("Satisfied (%)"), target_label=_("target %(t)s", t=pct(target, 0)) if isnum(target) else ""))
    if name == "distribution":
        d = distribution(ids, period)
        keys = list(ELEMENTS) + ["overall"]
        return (charts.distribution_chart(
            [str(ELEMENT_LABELS[k]) for k in keys], [d[k] for k in keys],
            [_("1 Very dissatisfied"), _("2 Dissatisfied"), _("3 Neutral"), _("4 Satisfied"), _("5 Very satisfied")],
            title=_("Share of answers per element (%)"), xlabel=_("Share of answers (%)")))
    if name == "drivers":
        res = safe_index(period, ids)
        d = drivers_table(unit, period, ids, res)
        if d is None:
            return None
        d = d[d["status"] == "ok"]
        return (charts.drivers_chart(
            [str(ELEMENT_LABELS.get(e, e)) for e in d["element"]], list(d["importance"]), list(d["performance"]),
            float(d["importance"].median()), float(d["performance"].median()),
            title=_("What matters most, and how well it is done"), xlabel=_("Performance (satisfied, %)"),
            ylabel=_("Importance (influence, %)"),
            quadrant_labels=[_("improve first"), _("keep up")]))
    if name == "counters":
        ctr = counters_table(unit, period, ids)
        if ctr.empty:
            return None
        return (charts.interval_chart(
            [str(c) for c in ctr["unit_code"]], list(ctr["index"]), list(ctr["index_ci_low"]),
            list(ctr["index_ci_high"]), title=_("Satisfaction index per counter, with 95% band"),
            xlabel=_("Satisfied (%)")))
    return None


@bp.post("/units/<code>/responses/<rid>/exclusion")
def set_exclusion(code, rid):
    user = require("exclude")
    unit = unit_in_scope_or_404(user, code)
    try:
        rid_u = uuid.UUID(rid)
    except ValueError:
        abort(404)
    resp = db.session.get(Response, rid_u)
    if resp is None or resp.unit_id not in subtree_ids(unit.id):
        abort(404)
    action = request.form.get("action", "")
    reason = (request.form.get("reason") or "").strip()[:500]
    if action not in ("exclude", "include"):
        abort(400)
    if action == "exclude" and not reason:
        reason = resp.flags or _("excluded by staff")
    before = resp.excluded
    resp.excluded = action == "exclude"
    resp.excluded_reason = reason if action == "exclude" else None
    record(actor=user.username, user_id=user.id, action=f"response_{action}", target_type="response",
           target_id=str(resp.id), details={"unit": unit.code, "reason": reason, "was_excluded": before,
                                            "flags": resp.flags})
    db.session.commit()
    flash(_("The response was excluded from the figures.") if action == "exclude"
          else _("The response is counted in the figures again."), "info")
    return redirect(url_for("staff.unit_page", code=code, period=request.form.get("period") or None)
                    + "#flagged")


@bp.get("/units/<code>/responses.csv")
def export_responses(code):
    user = require("export")
    unit = unit_in_scope_or_404(user, code)
    period = chosen_period()
    ids = sorted(subtree_ids(unit.id))
    record(actor=user.username, user_id=user.id, action="export_responses", target_type="unit",
           target_id=unit.code, details={"period": period.label})
    db.session.commit()
    start, end = period.start, period.end

    def generate():
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        yield "\ufeff"
        n = 0
        for row in iter_response_rows(db.session, start=start, end=end, unit_ids=ids, batch=5000):
            w.writerow(row)
            n += 1
            if n % 500 == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    fname = f"responses_{unit.code}_{period.label.replace(':', '-')}.csv"
    return FlaskResponse(stream_with_context(generate()), mimetype="text/csv; charset=utf-8",
                         headers={"Content-Disposition": f'attachment; filename="{fname}"'})
