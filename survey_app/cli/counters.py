"""`flask counters list`: the counters and their links."""
from __future__ import annotations

import csv
import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..extensions import db
from ..models import Counter, Unit

counters_cli = AppGroup("counters", help="Service counters (QR points).")


@counters_cli.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include inactive counters.")
def counters_list(show_all):
    """CSV code,name,unit_code,url of every active counter."""
    from ..services.tokens import counter_url

    q = select(Counter, Unit.code).join(Unit, Counter.unit_id == Unit.id).order_by(Counter.code)
    if not show_all:
        q = q.where(Counter.active.is_(True))
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["code", "name", "unit_code", "url"])
    for counter, unit_code in db.session.execute(q):
        w.writerow([counter.code, counter.name_vi, unit_code, counter_url(counter)])
