"""`flask index compute`: the index on the database."""
from __future__ import annotations

import click
from flask.cli import AppGroup

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
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Output: .csv, .xlsx, .json or '-' (CSV on stdout).")
def index_compute(period, level, ci, adequacy, rollup, as_of, map_successors, unit_code, out):
    """Compute the index for a period from the database (aggregated in SQL)."""
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
                                     adequacy=adequacy, map_successors=map_successors)
    except InputError as exc:
        fail(f"Dữ liệu không hợp lệ: {exc}")
    try:
        write_table(result.table, result.meta, out)
    except (ValueError, OSError) as exc:
        fail(f"Không ghi được {out}: {exc}", 2)
    click.echo(f"{len(result.table)} dòng, n = {result.meta.get('n_used')} phiếu, kỳ {p.label}", err=True)
