"""Helpers of the reliability tests: database fingerprints and a standalone app."""
from __future__ import annotations

from contextlib import contextmanager


def fingerprint(app) -> dict:
    """(rows, SHA-256) of every application table: equal = same content."""
    from survey_app.services.backup import database_digest
    from survey_app.extensions import db

    with app.app_context():
        db.session.remove()
        return database_digest(db.engine)


def count(app, model) -> int:
    from sqlalchemy import func, select

    from survey_app.extensions import db

    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model))
        db.session.remove()
        return n


TEST_SECRET = "test-secret-key-not-for-production"


def standalone_app(url: str, *, schema: str = "create_all", instruments: bool = True, **overrides):
    """An app on its own database `url`: schema made by `create_all` or by the
    migrations (`schema="migrate"`), instruments loaded unless told not to."""
    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.services.instruments import sync_instruments

    cfg = {"TESTING": True, "SECRET_KEY": TEST_SECRET, "SQLALCHEMY_DATABASE_URI": url,
           "PUBLIC_BASE_URL": "http://sipas.test", "RATELIMIT_STORAGE_URI": "memory://",
           "RATELIMIT_ENABLED": False}
    cfg.update(overrides)
    app = create_app(cfg)
    with app.app_context():
        if schema == "migrate":
            from flask_migrate import upgrade

            upgrade()
        else:
            db.create_all()
        if instruments:
            sync_instruments(db.session)
            db.session.commit()
        db.session.remove()
    return app


def create_pg_database(server_url: str) -> str:
    """A new empty database on the PostgreSQL server of `server_url`; its URL."""
    import uuid

    import sqlalchemy as sa

    name = f"sipas_rel_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        eng.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    import sqlalchemy as sa

    server, name = url.rsplit("/", 1)
    eng = sa.create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:  # noqa: BLE001 - best effort at teardown
        pass
    finally:
        eng.dispose()


@contextmanager
def disposing(*apps):
    try:
        yield
    finally:
        from survey_app.extensions import db

        for a in apps:
            with a.app_context():
                db.session.remove()
                db.engine.dispose()


def form_fields(html: str) -> dict:
    """What a browser would send on pressing the first POST form's button:
    hidden and text inputs, checked radios / checkboxes (first value kept),
    textareas.  Empty when the page has no POST form."""
    from html.parser import HTMLParser

    class P(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.fields: dict = {}
            self.in_form = self.done = False
            self.textarea = None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if self.done:
                return
            if tag == "form" and (a.get("method") or "").lower() == "post":
                self.in_form = True
            if not self.in_form:
                return
            if tag == "input" and a.get("name"):
                kind = (a.get("type") or "text").lower()
                if kind in ("radio", "checkbox"):
                    if "checked" in a:
                        self.fields.setdefault(a["name"], a.get("value") or "on")
                elif kind not in ("submit", "button", "image", "file", "reset"):
                    self.fields.setdefault(a["name"], a.get("value") or "")
            elif tag == "textarea" and a.get("name"):
                self.textarea = a["name"]
                self.fields.setdefault(self.textarea, "")

        def handle_data(self, data):
            if self.textarea:
                self.fields[self.textarea] += data

        def handle_endtag(self, tag):
            if tag == "textarea":
                self.textarea = None
            elif tag == "form" and self.in_form:
                self.in_form, self.done = False, True

    p = P()
    p.feed(html)
    return p.fields
