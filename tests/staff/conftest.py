"""Fixtures of the staff-page tests (helpers in staffkit.py)."""
from __future__ import annotations

import pytest

from staffkit import login, seed_world


@pytest.fixture
def sapp(make_loaded_app):
    return make_loaded_app(WTF_CSRF_ENABLED=False, STAFF_LOGIN_RATE="1000 per minute")


@pytest.fixture
def world(sapp):
    return seed_world(sapp)


@pytest.fixture
def as_role(sapp, world):
    """as_role(role) -> a test client signed in with that role."""
    def make(role):
        c = sapp.test_client()
        r = login(c, world["users"][role])
        assert r.status_code == 302, r.data[:500]
        return c
    return make
