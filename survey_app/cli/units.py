"""`flask units merge`: a merge of units as one action (`services.units.merge_units`)."""
from __future__ import annotations

import datetime as dt

import click

from .common import fail
from .data import units_cli


@units_cli.command("merge")
@click.argument("codes", nargs=-1, required=True)
@click.option("--into", "into", required=True, help="Code of the successor (an existing unit, or a new one).")
@click.option("--date", "day", required=True, help="First day the merged units no longer exist (YYYY-MM-DD).")
@click.option("--name", "name_vi", default="", help="Vietnamese name of the successor (required when it is new).")
@click.option("--name-en", default="", help="English name of the successor.")
@click.option("--kind", default="", help="Kind of a new successor (default: the predecessors' kind).")
@click.option("--parent", "parent_code", default="",
              help="Parent of a new successor (default: the predecessors' common parent).")
@click.option("--move-counters", is_flag=True, help="Move the predecessors' counters to the successor "
                                                    "(their QR codes keep working and record the successor).")
def merge_command(codes, into, day, name_vi, name_en, kind, parent_code, move_counters):
    """Merge units CODES... into the successor --into from --date: one transaction, one audit entry."""
    from ..extensions import db
    from ..services.units import MergeRefused, merge_units

    try:
        when = dt.date.fromisoformat(day)
    except ValueError:
        fail(f"Ngày không hợp lệ cho --date: {day!r} (YYYY-MM-DD)", 2)
    try:
        res = merge_units(codes, into=into, day=when, name_vi=name_vi, name_en=name_en, kind=kind,
                          parent_code=parent_code, move_counters=move_counters, actor_name="cli")
    except MergeRefused as exc:
        db.session.rollback()
        fail(f"Không sáp nhập được: {exc}")
    made = "tạo mới" if res.created else "đã có"
    click.echo(f"Đã sáp nhập {', '.join(res.predecessors)} vào {res.successor.code} ({res.successor.name_vi}, "
               f"{made}) từ ngày {res.day.strftime('%d/%m/%Y')}; "
               + (f"chuyển {len(res.counters_moved)} quầy: {', '.join(res.counters_moved)}."
                  if res.counters_moved else "không chuyển quầy."))
