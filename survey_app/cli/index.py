"""`flask index compute`: the index on the database."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from analysis.schema import RANK_AMONG

from .common import fail, period_or_fail, subtree_or_fail

index_cli = AppGroup("index", help="Satisfaction indices computed on the database.")


@index_cli.command("compute")
@click.option("--period", required=True, help="Report period: 2025, 2025-Q1, 2025-H1, cal:2025, 2025-03, A..B.")
@click.option("--level", type=click.Choice(["unit", "parent", "root"]), default=None, help="Only these rows.")
@click.option("--ci", type=click.Choice(["wilson", "beta", "logit"]), default="wilson", show_default=True)
@click.option("--adequacy", type=click.Choice(["yamane", "cochran", "quota"]), default="yamane", show_default=True)
@click.option("--rollup", type=click.Choice(["pooled", "mean_of_units"]), default="pooled", show_default=True)
@click.option("--as-of", "as_of", default=None, help="Date of the unit tree (default: the period's last day).")
@click.option("--map-successors", is_flag=True, help="Count responses of retired units in their successors.")
@click.option("--unit", "unit_code", default=None, help="Only this unit's subtree.")
@click.option("--no-cap-n-eff", "cap_n_eff", is_flag=True, flag_value=False, default=True,
              help="R-exact uncapped intervals (method version ...-uncapped) instead of the capped default.")
@click.option("--rank", is_flag=True, help="Add ranks with 95% rank intervals, within level and kind of unit.")
@click.option("--rank-among", type=click.Choice(RANK_AMONG), default=RANK_AMONG[0], show_default=True,
              help="With --rank: rank only units with an adequate sample, or every unit.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Output: .csv, .xlsx, .json or '-' (CSV on stdout).")
def index_compute(period, level, ci, adequacy, rollup, as_of, map_successors, unit_code, cap_n_eff, rank, rank_among,
                  out):
    """Compute the index for a period from the database (aggregated in SQL).

    The output names the method version (`method` column, meta
    `method_version`) and, with --rank, the ranking rule (meta `ranking`: XLSX
    sheet `method`, JSON `meta`, CSV `<out>.meta.json`); both are also printed
    on stderr."""
    import datetime as dt

    from analysis import InputError
    from analysis.output import write_table

    from ..services import stats

    p = period_or_fail(period)
    try:
        as_of_date = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        fail(f"Ngày không hợp lệ cho --as-of: {as_of!r} (YYYY-MM-DD)", 2)
    unit_ids = subtree_or_fail(unit_code)
    try:
        result = stats.compute_index(p, unit_ids=unit_ids, level=level, ci=ci, as_of=as_of_date, rollup=rollup,
                                     adequacy=adequacy, map_successors=map_successors, cap_n_eff=cap_n_eff)
    except InputError as exc:
        fail(f"Dữ liệu không hợp lệ: {exc}")
    table, meta = result.table, dict(result.meta)
    if rank:
        from ..services.reports import rank_report_units, ranking_meta

        group = ["level", "kind"]
        table = rank_report_units(table, rank_among=rank_among, group=group)
        meta["ranking"] = ranking_meta(rank_among, group, table)
    from ..services.reports import UNKNOWN_WHEN_EMPTY, not_known

    table = table.copy()
    for c in UNKNOWN_WHEN_EMPTY:  # poster-only units: no offered count (METHODOLOGY §7)
        if c in table.columns:
            counts = c != "link_response_rate"
            table[c] = [not_known() if v != v else (int(v) if counts else v) for v in table[c]]
    try:
        write_table(table, meta, out)
    except (ValueError, OSError) as exc:
        fail(f"Không ghi được {out}: {exc}", 2)
    click.echo(f"{len(table)} dòng, n = {meta.get('n_used')} phiếu, kỳ {p.label}; "
               f"phương pháp {meta.get('method_version')}", err=True)
    if rank:
        click.echo(f"Xếp hạng: {meta['ranking']['rule_vi']}", err=True)
    if meta.get("m766"):
        click.echo(f"QĐ 766 ({meta['m766']['version']}): {meta['m766']['note']}", err=True)
