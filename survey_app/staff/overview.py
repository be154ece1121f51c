"""The overview: every unit of the user's scope with its index, interval,
adequacy, target and trend; sortable, filterable, paged."""
from __future__ import annotations

import math

from flask import current_app, render_template, request

from analysis.schema import ROOT_LEVEL, UNIT_LEVEL

from ..services.periods import local_today
from ..services.units import scope_unit_ids
from . import bp
from .auth import require
from .figures import records, safe_index, trended, unit_codes, unit_row
from .forms import chosen_period, int_arg, period_choices

SORTS = {"name": "name_sort", "code": "unit_code", "kind": "kind", "n": "n", "rate": "response_rate",
         "index": "index", "moe": "moe", "adequacy": "need_more", "target": "target_status",
         "trend": "trend_change"}
TEXT_SORTS = ("name", "code", "kind")


class FramePage:
    """One page of rows of a table already in memory (SQL lists use `db.paginate`)."""

    def __init__(self, items, total: int, page: int, per_page: int):
        self.items, self.total, self.page, self.per_page = items, total, page, per_page
        self.pages = max(1, math.ceil(total / per_page)) if per_page else 1

    @property
    def has_prev(self):
        return self.page > 1

    @property
    def has_next(self):
        return self.page < self.pages


@bp.get("/")
def index():
    user = require("view")
    period = chosen_period()
    scope = scope_unit_ids(user)
    codes = None if scope is None else set(unit_codes(scope).values())
    today = request.args.get("units") == "today"
    opts = {"map_successors": True, "as_of": local_today()} if today else {}
    res = safe_index(period, scope, **opts)
    t = trended(res, period, scope, **opts)
    if codes is not None:
        t = t[t["unit_code"].isin(codes)]
    view = request.args.get("view", "unit")
    view = view if view in ("unit", "rollup") else "unit"
    t = t[t["level"] == UNIT_LEVEL] if view == "unit" else t[~t["level"].isin([UNIT_LEVEL, ROOT_LEVEL])]
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
    order = request.args.get("dir", "asc" if sort in TEXT_SORTS else "desc")
    order = order if order in ("asc", "desc") else "desc"
    if len(t):
        t = t.sort_values([SORTS[sort], "unit_code"], ascending=[order == "asc", True], na_position="last",
                          kind="mergesort")
    per = int(current_app.config["STAFF_PAGE_SIZE"])
    total = len(t)
    page_no = min(int_arg("page", 1), max(1, -(-total // per)))
    rows = records(t.iloc[(page_no - 1) * per: page_no * per])
    summary = None
    if res is not None and codes is None:
        root = res.table[res.table["level"] == ROOT_LEVEL]
        summary = root.iloc[0].to_dict() if len(root) else None
    elif res is not None and user.unit is not None:
        summary = unit_row(res.table, user.unit.code)
    return render_template("staff/overview.html", period=period, periods=period_choices(period.year),
                           page=FramePage(rows, total, page_no, per), sort=sort, order=order, kinds=kinds,
                           kind=kind, view=view, q=q, summary=summary, today=today, meta=res.meta if res else {},
                           method_version=res.meta.get("method_version") if res else None)
