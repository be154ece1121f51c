"""The unit page: its index and elements, trend, answers, drivers, counters,
comments and flagged responses; the charts beside each table; asking to
exclude or re-include a response (four eyes: `services.exclusions`); the
unit's exclusions and typed share; the unit's responses as CSV."""
from __future__ import annotations

from flask import Response as FlaskResponse
from flask import abort, current_app, flash, redirect, render_template, request, stream_with_context, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import Answer, Counter
from ..services import exclusions, publishing
from ..services.audit import record
from ..services.csv_export import export_chunks, export_plan
from ..services.units import subtree_ids
from ..ui.format import isnum, pct
from ..ui.labels import ELEMENT_LABELS, SCALE_LABELS, element_keys
from . import bp, figures
from .auth import can, require, unit_in_scope_or_404
from .figures import (
    cached,
    comments_query,
    counters_table,
    distribution,
    drivers_table,
    elements_of,
    flagged_query,
    records,
    rows_by_code,
    safe_index,
    table_of,
    trend_series,
    trended,
    unit_row,
)
from .forms import ExclusionForm, chosen_period, first_errors, int_arg, period_choices

SCALE = ("1", "2", "3", "4", "5")
COMMENTS_PER_PAGE = 20
FLAGGED_PER_PAGE = 50
CHARTS = ("elements", "trend", "distribution", "drivers", "counters")


def _unit_context(code, action="view"):
    user = require(action)
    unit = unit_in_scope_or_404(user, code)
    return user, unit, chosen_period(), subtree_ids(unit.id)


def _trend_by() -> str:
    return "quarter" if request.args.get("trend") == "quarter" else "year"


@bp.get("/units/<code>")
def unit_page(code):
    user, unit, period, ids = _unit_context(code)
    res = safe_index(period, ids)
    table = trended(res, period, ids)
    child_codes = sorted(u.code for u in unit.children)
    rows = rows_by_code(table, child_codes + [unit.code])
    row = rows.get(unit.code)
    trend_by = _trend_by()
    drv = drivers_table(unit, period, ids, res)
    element = request.args.get("element", "")
    rating = request.args.get("rating", "")
    comments = db.paginate(comments_query(ids, period, element, rating), page=int_arg("cpage", 1, hi=100000),
                           per_page=COMMENTS_PER_PAGE, error_out=False)
    flagged = db.paginate(flagged_query(ids, period), page=int_arg("fpage", 1, hi=100000),
                          per_page=FLAGGED_PER_PAGE, error_out=False)
    counters = db.session.scalars(select_counters(unit)).all()
    answers = answers_of([r.id for r in flagged.items] + [r.id for r in comments.items])
    integrity = figures.integrity_total(ids, period.start, period.end)  # stored (issue 14)
    from ..services.integration import m766_note, volume_source  # issue 12: where N comes from, QĐ 766

    return render_template(
        "staff/unit.html", unit=unit, period=period, periods=period_choices(period.year), row=row,
        elements=elements_of(row), trend=trend_series(unit, period, ids, trend_by), trend_by=trend_by,
        dist=distribution(ids, period), drivers=None if drv is None else records(drv),
        counters_cmp=records(counters_table(unit, period, ids)),
        children=[rows[c] for c in child_codes if c in rows], comments=comments, element=element, rating=rating,
        flagged=flagged, counters=counters, meta=res.meta if res else {},
        method_version=res.meta.get("method_version") if res else None, scale=SCALE,
        can_exclude=can("exclude"), can_export=can("export"), exclusion_form=ExclusionForm(),
        integrity=integrity, batches=exclusions.paper_batches(ids, period.start, period.end),
        pending=exclusions.pending_ids([r.id for r in flagged.items]), answers=answers,
        counter_codes=counter_codes([r.counter_id for r in flagged.items]),
        own_staff=user.role in exclusions.OWN_STAFF_ROLES, reason_min=exclusions.REASON_MIN,
        reason_max=exclusions.REASON_MAX,
        n_source=volume_source(unit.id, period), m766_note=m766_note(),
        version_note=publishing.version_note(period.label))


def answers_of(response_ids) -> dict:
    """{response id: {item key: answer}} of the responses shown (one query for the page's rows)."""
    out: dict = {rid: {} for rid in response_ids}
    if response_ids:
        for rid, key, value in db.session.execute(
                select(Answer.response_id, Answer.item_key, Answer.value)
                .where(Answer.response_id.in_(list(out)))):
            out[rid][key] = value
    return out


def counter_codes(counter_ids) -> dict:
    """{counter id: code} of the counters of the rows shown (one query)."""
    ids = {i for i in counter_ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(Counter.id, Counter.code).where(Counter.id.in_(ids))).all())


def select_counters(unit):
    return select(Counter).where(Counter.unit_id == unit.id).order_by(Counter.code)


# ---------------------------------------------------------------- charts

@bp.get("/units/<code>/charts/<name>.svg")
def unit_chart(code, name):
    user, unit, period, ids = _unit_context(code)
    if name not in CHARTS:
        abort(404)
    trend_by = _trend_by()
    phone = request.args.get("size") == "phone"  # the phone layout (charts.PHONE), served below 700 px
    data = cached("chart", lambda: _chart(unit, period, ids, name, trend_by, phone), name, unit.code, period,
                  sorted(ids), trend_by, str(get_locale()), phone, deps=ids)
    if data is None:
        abort(404)
    return FlaskResponse(data, mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})


def _target_of(row):
    target = row.get("target") if row else None
    return (target, _("target %(t)s", t=pct(target, 0))) if isnum(target) else (None, "")


def _chart(unit, period, ids, name, trend_by, phone=False):
    """SVG bytes of one chart of the unit page (None when there is nothing to draw)."""
    from . import charts  # matplotlib: loaded by the first chart, not by the app

    if name == "elements":
        row = unit_row(table_of(safe_index(period, ids)), unit.code)
        el = elements_of(row)
        target, target_label = _target_of(row)
        return charts.interval_chart(
            [str(ELEMENT_LABELS[e["key"]]) for e in el], [e["rate"] for e in el], [e["low"] for e in el],
            [e["high"] for e in el], target=target, title=_("Satisfied (%) per element, with 95% band"),
            target_label=target_label, xlabel=_("Satisfied (%)"), phone=phone)
    if name == "trend":
        tr = trend_series(unit, period, ids, trend_by)
        target, target_label = _target_of(unit_row(table_of(safe_index(period, ids)), unit.code))
        return charts.trend_chart(
            [p["label"] for p in tr], [p["index"] for p in tr], [p["low"] for p in tr], [p["high"] for p in tr],
            target=target, title=_("Satisfaction index over time, with 95% band"), ylabel=_("Satisfied (%)"),
            target_label=target_label, phone=phone)
    if name == "distribution":
        d = distribution(ids, period)
        keys = element_keys()
        return charts.distribution_chart(
            [str(ELEMENT_LABELS[k]) for k in keys], [d[k] for k in keys], [str(s) for s in SCALE_LABELS],
            title=_("Share of answers per element (%)"), xlabel=_("Share of answers (%)"), phone=phone)
    if name == "drivers":
        d = drivers_table(unit, period, ids, safe_index(period, ids))
        if d is None:
            return None
        d = d[d["status"] == "ok"]
        return charts.drivers_chart(
            [str(ELEMENT_LABELS.get(e, e)) for e in d["element"]], list(d["importance"]), list(d["performance"]),
            float(d["importance"].median()), float(d["performance"].median()),
            title=_("What matters most, and how well it is done"), xlabel=_("Performance (satisfied, %)"),
            ylabel=_("Importance (influence, %)"), quadrant_labels=[_("improve first"), _("keep up")], phone=phone)
    if name == "counters":
        ctr = counters_table(unit, period, ids)
        if ctr.empty:
            return None
        return charts.interval_chart(
            [str(c) for c in ctr["unit_code"]], list(ctr["index"]), list(ctr["index_ci_low"]),
            list(ctr["index_ci_high"]), title=_("Satisfaction index per counter, with 95% band"),
            xlabel=_("Satisfied (%)"), phone=phone)
    return None


# ---------------------------------------------------------------- exclusions

def _ask(code, rid, action: str):
    """Ask to exclude / count again a response (services.exclusions: pending
    until an analyst outside the unit approves it)."""
    from ..errors import error_page

    user = require("exclude")
    unit = unit_in_scope_or_404(user, code)
    form = ExclusionForm()
    back = url_for("staff.unit_page", code=code, period=form.period.data or None) + "#flagged"
    if not form.validate_on_submit():
        return error_page(400, message=" ".join(first_errors(form)), back_url=back)
    try:
        resp = exclusions.get_response(user, rid)
        if resp.unit_id not in subtree_ids(unit.id):
            abort(404)
        exclusions.request_change(user, resp, action, form.reason.data)
    except exclusions.Refused as refused:
        return error_page(refused.status, message=str(refused), back_url=back)
    flash(_("Your request was recorded. It waits for an analyst outside the unit to approve it; "
            "the figures do not change until then."), "info")
    return redirect(back)


@bp.post("/units/<code>/responses/<rid>/exclusion")
def exclude_response(code, rid):
    """Ask to leave a response out of every figure (with a reason; audited; four eyes)."""
    return _ask(code, rid, "exclude")


@bp.post("/units/<code>/responses/<rid>/inclusion")
def include_response(code, rid):
    """Ask to count an excluded response again (with a reason; audited; four eyes)."""
    return _ask(code, rid, "include")


# ---------------------------------------------------------------- export

@bp.get("/units/<code>/responses.csv")
def export_responses(code):
    user, unit, period, ids = _unit_context(code, "export")
    plan = export_plan(db.session, start=period.start, end=period.end, unit_ids=ids)
    if plan.rows > int(current_app.config["EXPORT_ASYNC_ROWS"]):  # too large to wait for: a background job
        from .data import exports_page

        return exports_page(queue={"unit": unit, "period": period, "rows": plan.rows})
    record(actor=user.username, user_id=user.id, action="export_responses", target_type="unit",
           target_id=unit.code, details={"period": period.label})
    db.session.commit()
    start, end, id_list = period.start, period.end, sorted(ids)

    def generate():
        yield "\ufeff"
        yield from export_chunks(db.session, start=start, end=end, unit_ids=id_list, plan=plan)

    fname = f"responses_{unit.code}_{period.label.replace(':', '-')}.csv"
    return FlaskResponse(stream_with_context(generate()), mimetype="text/csv; charset=utf-8",
                         headers={"Content-Disposition": f'attachment; filename="{fname}"'})
