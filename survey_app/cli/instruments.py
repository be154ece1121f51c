"""`flask instruments load`: the questionnaires."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from ..extensions import db
from .common import fail

instruments_cli = AppGroup("instruments", help="Questionnaires.")


@instruments_cli.command("load")
def instruments_load():
    """Load survey_app/questionnaires/*.json into the database (idempotent)."""
    from ..services.instruments import InstrumentVersionError, sync_instruments

    try:
        result = sync_instruments(db.session)
        db.session.commit()
    except InstrumentVersionError as exc:
        db.session.rollback()
        fail(str(exc))
    for key, version, status in result:
        click.echo(f"{key}@{version}: {'đã tạo' if status == 'created' else 'không đổi'}")
