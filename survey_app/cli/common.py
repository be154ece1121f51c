"""What every command group shares: failing with a message, reading a
period or a unit's subtree."""
from __future__ import annotations

import sys

import click
from sqlalchemy import select

from ..extensions import db
from ..models import Unit


def fail(message: str, code: int = 1):
    click.echo(message, err=True)
    sys.exit(code)


def period_or_fail(label):
    """The Period for a label, None for no label; exit 2 with a message if invalid."""
    if not label:
        return None
    from ..services.periods import resolve_period

    try:
        return resolve_period(label)
    except ValueError as exc:
        fail(f"Kỳ không hợp lệ {label!r}: {exc}", 2)


def subtree_or_fail(unit_code):
    """Ids of a unit's subtree (None for no unit); exit 1 if the unit is unknown."""
    if not unit_code:
        return None
    from ..services.units import subtree_ids

    unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        fail(f"Không tìm thấy đơn vị {unit_code}.")
    return sorted(subtree_ids(unit.id))

