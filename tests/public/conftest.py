"""Fixtures of the collection tests (helpers live in public_helpers.py)."""
import pytest
from public_helpers import Place, make_place


@pytest.fixture
def place(app) -> Place:
    with app.app_context():
        return make_place()
