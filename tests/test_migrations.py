"""Migrations: upgrade / downgrade base / upgrade on an empty database of the
chosen backend, and the models agree with the migrations (autogenerate finds
no difference)."""
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from survey_app import create_app
from survey_app.extensions import db

APP_TABLES = {"units", "counters", "instruments", "instrument_items", "responses", "answers", "volumes",
              "reporting_calendars", "targets", "users", "audit_log", "import_batches"}


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade_roundtrip(fresh_database):
    url = fresh_database()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "TESTING": True})
    with app.app_context():
        assert _tables(db.engine) == set()
        upgrade()
        assert _tables(db.engine) == APP_TABLES
        downgrade(revision="base")
        assert _tables(db.engine) == set()
        upgrade()
        assert _tables(db.engine) == APP_TABLES
        db.engine.dispose()


def test_models_match_migrations(fresh_database):
    url = fresh_database()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "TESTING": True})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            mc = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
            diff = compare_metadata(mc, db.metadata)
        db.engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
