"""Migrations: upgrade / downgrade base / upgrade on an empty database of the
chosen backend, and the models agree with the migrations (autogenerate finds
no difference)."""
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from survey_app import (
    create_app,
    models,  # noqa: F401  (every table on the metadata)
)
from survey_app.extensions import db

#: Every table of the models: the migrations must create them all (and, below,
#: autogenerate must find no difference between the two).
APP_TABLES = set(db.metadata.tables)


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


def test_instrument_items_downgrade_refills_from_the_definitions(fresh_database):
    url = fresh_database()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "TESTING": True})
    with app.app_context():
        from survey_app.services.instruments import load_definitions, sync_instruments

        upgrade()
        sync_instruments(db.session)
        db.session.commit()
        db.session.remove()
        downgrade(revision="0002_response_pattern")
        n = sum(len(d["items"]) for d in load_definitions())
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM instrument_items")).scalar() == n
        upgrade()
        assert "instrument_items" not in _tables(db.engine)
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


def test_pattern_backfilled_by_migration(fresh_database):
    """0002 packs the answers of responses stored before it into `pattern`."""
    import datetime as dt
    import uuid

    from survey_app.models import answer_pattern

    url = fresh_database()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "TESTING": True})
    with app.app_context():
        upgrade(revision="0001_initial")
        rid = uuid.uuid4()
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO units (code, name_vi, name_en, kind) VALUES ('U', 'U', 'U', 'commune')"))
            conn.execute(sa.text(
                "INSERT INTO instruments (key, version, title_vi, title_en, element_index, checksum, definition, "
                "created_at) VALUES ('q', 1, 'q', 'q', 'direct', 'x', '{}', :t)"), {"t": dt.datetime(2025, 1, 1)})
            conn.execute(sa.text(
                "INSERT INTO responses (id, unit_id, instrument_id, channel, submitted_at, received_at, stratum, flags,"
                " excluded) VALUES (:id, 1, 1, 'qr', :t, :t, '_all', '', :f)"),
                {"id": rid.hex if db.engine.dialect.name == "sqlite" else rid, "t": dt.datetime(2025, 1, 1),
                 "f": False})
            for key, value in (("overall", 4), ("staff", 2), ("feedback", 5), ("access_c1", 1)):
                conn.execute(sa.text("INSERT INTO answers (response_id, item_key, value) VALUES (:r, :k, :v)"),
                             {"r": rid.hex if db.engine.dialect.name == "sqlite" else rid, "k": key, "v": value})
        upgrade()
        with db.engine.connect() as conn:
            pattern = conn.execute(sa.text("SELECT pattern FROM responses")).scalar_one()
        db.engine.dispose()
    assert pattern == answer_pattern({"overall": 4, "staff": 2, "feedback": 5}) == 4 + 2 * 6 ** 3 + 5 * 6 ** 5


def test_integrity_downgrade_keeps_responses(fresh_database):
    """0004 down and up again on a database with a typed response and an
    exclusion request: the response survives, the request table goes."""
    import datetime as dt
    import uuid

    url = fresh_database()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "TESTING": True})
    with app.app_context():
        upgrade()
        rid = uuid.uuid4()
        key = rid.hex if db.engine.dialect.name == "sqlite" else rid
        t = dt.datetime(2025, 1, 1)
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO units (code, name_vi, name_en, kind) VALUES ('U', 'U', 'U', 'commune')"))
            conn.execute(sa.text(
                "INSERT INTO users (username, password_hash, role, active, session_version, failed_logins,"
                " created_at) VALUES ('clerk', 'x', 'counter_staff', :a, 1, 0, :t)"), {"a": True, "t": t})
            conn.execute(sa.text(
                "INSERT INTO instruments (key, version, title_vi, title_en, element_index, checksum, definition, "
                "created_at) VALUES ('q', 1, 'q', 'q', 'direct', 'x', '{}', :t)"), {"t": t})
            conn.execute(sa.text(
                "INSERT INTO responses (id, unit_id, instrument_id, channel, submitted_at, received_at, stratum,"
                " flags, excluded, pattern, entered_by_user_id, paper_batch)"
                " VALUES (:id, 1, 1, 'paper', :t, :t, '_all', '', :f, 0, 1, 'B-01')"),
                {"id": key, "t": t, "f": False})
            conn.execute(sa.text(
                "INSERT INTO exclusion_requests (response_id, action, status, reason, requested_by_id,"
                " requested_at) VALUES (:id, 'exclude', 'pending', 'r', 1, :t)"), {"id": key, "t": t})
        downgrade(revision="0003_drop_instrument_items")
        assert "exclusion_requests" not in _tables(db.engine)
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM responses")).scalar() == 1
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT paper_batch FROM responses")).scalar() is None
        db.engine.dispose()
