"""Fixtures of the reliability tests (backup/restore, faults, fuzzing, concurrency).

Helpers shared with the collection tests come from tests/public/public_helpers.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "public"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def backend(request) -> str:
    return request.config.getoption("--db")


@pytest.fixture
def open_app(make_app):
    """An app on the clean test database with the instruments loaded and the
    public rate limits out of the way (fuzzing and concurrency post a lot from
    one client); extra config as keyword arguments."""
    from survey_app.extensions import db
    from survey_app.services.instruments import sync_instruments

    def make(**overrides):
        cfg = dict(RATELIMIT_ENABLED=False)
        cfg.update(overrides)
        app = make_app(**cfg)
        with app.app_context():
            sync_instruments(db.session)
            db.session.commit()
        return app

    return make
